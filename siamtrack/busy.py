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
    machine: on a busy machine the cause is other processes (a load of at least the cores less half a one), on
    an idle one a slower or shared CPU (a virtual machine's), not the model."""
    reference = cfg.reference_fps
    if not reference or device != "cpu" or backend != DEFAULT_BACKEND or fps >= SLOW_SHARE * reference:
        return None
    load, cores = load_average() or 0.0, os.cpu_count() or 1
    why = ("the machine is busy" if load >= cores - 0.5 else
           "the machine is not busy, so its CPU is slower than the one measured or shared with other machines")
    return (f"note: {fps:.1f} fps is under a third of the {cfg.reference_fps:g} fps {Path(cfg.name).stem} makes "
            f"on an idle 2-core CPU: {why} (load average {load:.1f} on {cores} cores); see docs/running.md, "
            f"'Threads on a busy machine'")


def load_average() -> float | None:
    """The 1-minute load average (None where the system keeps none): how busy the machine was."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None
