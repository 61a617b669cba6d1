"""TrackerSpec: the choices a model and its trackers are built from, in one small value.

The command line makes one from its options; evaluation, the speed benchmark, the server and the tools
build from it, so that every way in builds the same way. It is frozen and picklable: evaluation's worker
processes each build their own model from it, once. It is a pure description, and building from it changes
nothing process-wide (siamtrack.process is where the entry points set threads, seeds and the like).
"""
from __future__ import annotations

from dataclasses import dataclass

from .core.backends import DEFAULT_BACKEND
from .core.model import Model
from .core.tracker import SiamFCTracker


@dataclass(frozen=True)
class TrackerSpec:
    config: str | None = None  # a shipped config name or YAML path; None: the default, or the weights' own
    weights: str | None = None  # a checkpoint path; None: the weights the config names
    overrides: tuple[str, ...] = ()  # `section.key=value`
    device: str = "auto"
    backend: str = DEFAULT_BACKEND

    def model(self, quiet: bool = False) -> Model:
        """The model, built (seconds); on a terminal a status line says so while it builds, unless `quiet`."""
        return Model.load(self.config, self.weights, device=self.device, backend=self.backend,
                          overrides=self.overrides, quiet=quiet)

    def build(self, name: str = "SiamFC", quiet: bool = False) -> SiamFCTracker:
        """A tracker over a model of its own; build trackers over one `model()` to share it."""
        return SiamFCTracker(self.model(quiet), name=name)
