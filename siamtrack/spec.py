"""TrackerSpec: the choices a SiamFCTracker is built from, in one small value.

The command line makes one from its options; evaluation, the speed benchmark and the tools build
their trackers from it, so that every way in builds a tracker the same way. It is frozen and
picklable: evaluation's worker processes each build their own tracker from it. It is a pure
description: building changes nothing process-wide (siamtrack.threads sets CPU threads).
"""
from __future__ import annotations

from dataclasses import dataclass

from .engines import DEFAULT_BACKEND
from .tracker import SiamFCTracker


@dataclass(frozen=True)
class TrackerSpec:
    config: str | None = None  # a shipped config name or YAML path; None: the default, or the weights' own
    weights: str | None = None  # a checkpoint path; None: the weights the config names
    overrides: tuple[str, ...] = ()  # `section.key=value`
    device: str = "auto"
    backend: str = DEFAULT_BACKEND

    def build(self, name: str = "SiamFC", quiet: bool = False) -> SiamFCTracker:
        """The tracker; on a terminal a status line says so while it builds, unless `quiet`."""
        return SiamFCTracker(self.config, self.weights, device=self.device, name=name, backend=self.backend,
                             overrides=self.overrides, quiet=quiet)
