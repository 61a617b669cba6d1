"""The tracker names evaluation accepts, and how each is built: siamtrack models and OpenCV's baselines.

    trackers = resolve_trackers(["siamtrack", "siamfc_lite0_fast", "csrt"], TrackerSpec(weights=...))
    model = build_model(trackers["siamtrack"])                    # once per process
    tracker = build_tracker("siamtrack", trackers["siamtrack"], model)   # per job

`siamtrack` is the model the given TrackerSpec describes; a shipped config name or a YAML path is a
siamtrack model with the weights its config names (the spec's device and backend, no overrides),
labelled by the file's stem; `csrt`, `kcf` and `mil` are OpenCV's trackers.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Iterable

from ..baselines import MISSING_TRACKERS, OPENCV_TRACKERS, OpenCVTracker
from ..config import Config, resolve_config_path
from ..core.backends import BACKENDS
from ..core.checkpoint import build_net
from ..core.model import Model
from ..core.tracker import SiamFCTracker
from ..errors import ConfigError, EvaluationError
from ..spec import TrackerSpec

TRACKERS = ("siamtrack",) + tuple(OPENCV_TRACKERS)  # the names besides config names and paths


def resolve_trackers(names: Iterable[str], siamtrack: TrackerSpec = TrackerSpec()) -> dict[str, TrackerSpec | None]:
    """Each tracker's label and how to build it: a TrackerSpec for a siamtrack model, None for a baseline."""
    trackers: dict[str, TrackerSpec | None] = {}
    for name in names:
        label, spec = _resolve(name, siamtrack)
        if label in trackers:
            raise EvaluationError(f"a tracker is named twice in {','.join(names)}")
        trackers[label] = spec
    if not trackers:
        raise EvaluationError(f"no trackers given (choose from {', '.join(TRACKERS)})")
    return trackers


def _resolve(name: str, siamtrack: TrackerSpec) -> tuple[str, TrackerSpec | None]:
    if name == "siamtrack":
        return name, siamtrack
    if name in OPENCV_TRACKERS:
        return name, None
    if name in MISSING_TRACKERS:
        raise EvaluationError(f"OpenCV's {name.upper()} tracker is not in this OpenCV build "
                              "(install opencv-contrib-python instead of opencv-python)")
    try:
        path = resolve_config_path(name)
    except ConfigError as exc:
        if name.endswith((".yaml", ".yml")):
            raise EvaluationError(str(exc)) from None
        raise EvaluationError(f"unknown tracker '{name}' (choose from {', '.join(TRACKERS)}, "
                              "a shipped config name or a YAML path)") from None
    return path.stem, replace(siamtrack, config=name, weights=None, overrides=())


def check_model(spec: TrackerSpec) -> Config:
    """A siamtrack model's config, its config and weights read and checked without building it (where the
    jobs run elsewhere, this machine needs neither its device nor its extras)."""
    if spec.backend not in BACKENDS:
        raise ConfigError(f"unknown backend '{spec.backend}' (known: {', '.join(BACKENDS)})")
    cfg, _, _ = build_net(spec.config, spec.weights, spec.overrides)
    return cfg


def build_model(spec: TrackerSpec | None) -> Model | None:
    """The model of a siamtrack tracker `resolve_trackers` described, built; None for an OpenCV baseline."""
    return spec.model(quiet=True) if spec is not None else None


def build_tracker(label: str, spec: TrackerSpec | None, model: Model | None = None):
    """The tracker `resolve_trackers` described under `label`: over `model` (built from `spec` when not given)
    for a siamtrack model, else the OpenCV tracker."""
    if spec is None:
        return OpenCVTracker(label)
    return SiamFCTracker(model or build_model(spec), name=label)
