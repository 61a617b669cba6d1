"""One target's tracking state as JSON-safe values, and back: its box and scale, its exemplar kernels, its
lost history and its DSST filter, all a tracker over the same model needs to go on tracking it, in this
process or another (an annotation tool's tracking function keeps it between frames).

The numbers come back to the bit: arrays as base64 of their bytes, floats as JSON numbers (which Python
writes and reads exactly), NaN as null. A target tracked frame by frame through exports and imports gets
the boxes it gets tracked in one go.
"""
from __future__ import annotations

import base64
import binascii
import math
from collections import deque

import numpy as np
import torch

from ..config import Config
from ..errors import TargetError
from .dsst import ScaleFilter
from .targets import Targets

FORMAT = 1  # raised when the layout changes: an old state is refused, not misread


def export_state(target: Targets, frame_size: np.ndarray, model_name: str) -> dict:
    """One target's state (`target` holds exactly one)."""
    scale_filter = target.scale_filter[0]
    return {
        "format": FORMAT, "model": model_name, "frame_size": frame_size.tolist(), "id": int(target.ids[0]),
        "center": target.center[0].tolist(), "base_size": target.base_size[0].tolist(),
        "base_search": float(target.base_search[0]), "scale": float(target.scale[0]),
        "border": target.border[0].tolist(), "reference_score": _number(target.reference_score[0]),
        "score": _number(target.score[0]), "lost": bool(target.lost[0]),
        "recent_scores": [float(v) for v in target.recent_scores[0]],
        "kernels": [_array(level.cpu().numpy()) for level in target.kernels],
        "scale_filter": None if scale_filter is None else {
            key: _array(value) if isinstance(value, np.ndarray) else value
            for key, value in scale_filter.state().items()},
    }


def import_state(state: dict, model_name: str, cfg: Config, levels: int, kernels_per_target: int,
                 device: torch.device) -> tuple[Targets, np.ndarray]:
    """The target a state describes, on `device`, and the frame size its boxes are in; a state of another
    model or layout, or a damaged one, is a TargetError."""
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise TargetError(f"not a siamtrack target state of format {FORMAT} (export_target makes them)")
    if state.get("model") != model_name:
        raise TargetError(f"a target state of the model {state.get('model')!r} cannot go on in {model_name!r}")
    try:
        kernels = tuple(torch.from_numpy(_unarray(level)).to(device) for level in state["kernels"])
        if len(kernels) != levels or any(len(level) != kernels_per_target for level in kernels):
            raise TargetError(f"the state's exemplar kernels do not fit {model_name!r} as configured here")
        scale_filter = state["scale_filter"]
        if scale_filter is not None:
            scale_filter = ScaleFilter.from_state(cfg.track.dsst, {
                key: _unarray(value) if isinstance(value, dict) else value for key, value in scale_filter.items()})
        target = Targets(
            ids=np.array([int(state["id"])], dtype=np.int64), center=np.array([state["center"]], dtype=np.float64),
            base_size=np.array([state["base_size"]], dtype=np.float64),
            base_search=np.array([state["base_search"]], dtype=np.float64),
            scale=np.array([state["scale"]], dtype=np.float64), border=np.array([state["border"]], dtype=np.float64),
            reference_score=np.array([_float(state["reference_score"])]), score=np.array([_float(state["score"])]),
            lost=np.array([bool(state["lost"])]),
            recent_scores=[deque(map(float, state["recent_scores"]), maxlen=cfg.track.lost_window)],
            kernels=kernels, scale_filter=[scale_filter])
        frame_size = np.array(state["frame_size"], dtype=np.float64).reshape(2)
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise TargetError(f"a damaged target state ({type(exc).__name__}: {exc})") from None
    return target, frame_size


def _array(values: np.ndarray) -> dict:
    values = np.ascontiguousarray(values)
    return {"dtype": values.dtype.str, "shape": list(values.shape), "data": base64.b64encode(values.data).decode()}


def _unarray(encoded: dict) -> np.ndarray:
    data = base64.b64decode(encoded["data"], validate=True)
    return np.frombuffer(data, dtype=np.dtype(encoded["dtype"])).reshape(encoded["shape"]).copy()


def _number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _float(value: float | None) -> float:
    return math.nan if value is None else float(value)
