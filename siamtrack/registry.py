"""The tracker names evaluation accepts, and how each is built: siamtrack models and OpenCV's baselines.

    trackers = resolve_trackers(["siamtrack", "siamfc_lite0_fast", "csrt"], TrackerSpec(weights=...))
    tracker = build_tracker("csrt", trackers["csrt"])

`siamtrack` is the model the given TrackerSpec describes; a shipped config name or a YAML path is a
siamtrack model with the weights its config names (the spec's device and backend, no overrides),
labelled by the file's stem; `csrt`, `kcf` and `mil` are OpenCV's trackers.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Iterable

from .baselines import MISSING_TRACKERS, OPENCV_TRACKERS, OpenCVTracker
from .config import resolve_config_path
from .errors import ConfigError, EvaluationError
from .spec import TrackerSpec

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


def build_tracker(label: str, spec: TrackerSpec | None):
    """The tracker `resolve_trackers` described under `label`."""
    return spec.build(name=label) if spec is not None else OpenCVTracker(label)
