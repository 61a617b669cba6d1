"""One target's tracking state as JSON-safe values, and back: its box and scale, its exemplar kernels, its
lost history and its DSST filter, all a tracker over the same model needs to go on tracking it, in this
process or another (an annotation tool's tracking function keeps it between frames).

Every field of Targets is kept, encoded by its kind, so that a field added to Targets travels too (one of a
kind with no encoding here fails the export, and the tests). The numbers come back to the bit: arrays as
base64 of their bytes (NaN included), recent scores as JSON numbers (which Python writes and reads exactly). A
target tracked frame by frame through exports and imports gets the boxes it gets tracked in one go.
"""
from __future__ import annotations

import base64
import binascii
from collections import deque
from dataclasses import fields

import numpy as np
import torch

from ..config import Config
from ..errors import TargetError
from .dsst import ScaleFilter
from .targets import Targets

FORMAT = 1  # raised when the layout changes: an old state is refused, not misread


def export_state(target: Targets, frame_size: np.ndarray, model_name: str) -> dict:
    """One target's state (`target` holds exactly one): every field of Targets, encoded by its kind."""
    return {"format": FORMAT, "model": model_name, "frame_size": frame_size.tolist(),
            "target": {field.name: _encode(getattr(target, field.name)) for field in fields(target)}}


def import_state(state: dict, model_name: str, cfg: Config, kernel_rows: int,
                 device: torch.device) -> tuple[Targets, np.ndarray]:
    """The target a state describes, on `device`, and the frame size its boxes are in; a state of another
    model or layout (each level of kernels `kernel_rows` rows), or a damaged one, is a TargetError."""
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise TargetError(f"not a siamtrack target state of format {FORMAT} (export_target makes them)")
    if state.get("model") != model_name:
        raise TargetError(f"a target state of the model {state.get('model')!r} cannot go on in {model_name!r}")
    try:
        encoded = state["target"]
        target = Targets(**{field.name: _decode(encoded[field.name], cfg, device) for field in fields(Targets)})
        frame_size = np.array(state["frame_size"], dtype=np.float64).reshape(2)
    except (KeyError, TypeError, ValueError, AttributeError, binascii.Error) as exc:
        raise TargetError(f"a damaged target state ({type(exc).__name__}: {exc})") from None
    if len(target) != 1 or any(len(level) != kernel_rows for level in target.kernels):
        raise TargetError(f"the state's exemplar kernels do not fit {model_name!r} as configured here")
    return target, frame_size


def _encode(value):
    """A Targets field: an array, a tuple of tensors (a level each), or a list of one item a target."""
    if isinstance(value, np.ndarray):
        return _array(value)
    if isinstance(value, tuple):
        return {"levels": [_array(level.cpu().numpy()) for level in value]}
    if isinstance(value, list):
        return {"items": [_encode_item(item) for item in value]}
    raise TypeError(f"no JSON encoding for a Targets field of type {type(value).__name__}")


def _encode_item(item):
    if item is None:
        return None
    if isinstance(item, deque):
        return {"deque": [float(v) for v in item], "maxlen": item.maxlen}
    if isinstance(item, ScaleFilter):
        return {"dsst": {key: _array(value) if isinstance(value, np.ndarray) else value
                         for key, value in item.state().items()}}
    raise TypeError(f"no JSON encoding for a target's {type(item).__name__}")


def _decode(encoded, cfg: Config, device: torch.device):
    if "levels" in encoded:
        return tuple(torch.from_numpy(_unarray(level)).to(device) for level in encoded["levels"])
    if "items" in encoded:
        return [_decode_item(item, cfg) for item in encoded["items"]]
    return _unarray(encoded)


def _decode_item(item, cfg: Config):
    if item is None:
        return None
    if "deque" in item:
        return deque(map(float, item["deque"]), maxlen=item["maxlen"])
    return ScaleFilter.from_state(cfg.track.dsst, {key: _unarray(value) if isinstance(value, dict) else value
                                                   for key, value in item["dsst"].items()})


def _array(values: np.ndarray) -> dict:
    values = np.ascontiguousarray(values)
    return {"dtype": values.dtype.str, "shape": list(values.shape), "data": base64.b64encode(values.data).decode()}


def _unarray(encoded: dict) -> np.ndarray:
    data = base64.b64decode(encoded["data"], validate=True)
    return np.frombuffer(data, dtype=np.dtype(encoded["dtype"])).reshape(encoded["shape"]).copy()
