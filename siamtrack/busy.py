"""The busy-machine note: one line when a CPU run is far slower than its model makes on an idle machine.

`run`, `demo`, `eval` and `bench` print it, so that a slow figure on a shared machine is read as the
machine's load and not as the model's speed.
"""
from __future__ import annotations

import os
from pathlib import Path

from .config import Config
from .core.backends import DEFAULT_BACKEND

SLOW_SHARE = 1 / 3  # a CPU run below this share of the model's reference fps says why


def slow_note(fps: float, cfg: Config, device: str, backend: str) -> str | None:
    """One line when a CPU run of the default backend is far below the fps its model makes on an idle
    machine: on a shared machine the cause is other processes, not the model."""
    reference = cfg.reference_fps
    if not reference or device != "cpu" or backend != DEFAULT_BACKEND or fps >= SLOW_SHARE * reference:
        return None
    return (f"note: {fps:.1f} fps is under a third of the {cfg.reference_fps:g} fps {Path(cfg.name).stem} makes "
            f"on an idle 2-core CPU: the machine is busy (load average {load_average() or 0:.1f} on "
            f"{os.cpu_count()} cores); see README, 'Threads on a busy machine'")


def load_average() -> float | None:
    """The 1-minute load average (None where the system keeps none): how busy the machine was."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None
