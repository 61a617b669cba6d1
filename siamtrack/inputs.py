"""Checks of what callers hand siamtrack: frames, boxes, devices. Shared by the tracker, the baselines,
training and the command line, so that bad input fails in one place with one message."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from .errors import BoxError, ConfigError, FrameError, SourceError, TargetError


def as_rgb(frame) -> np.ndarray:
    """HxWx3 uint8 RGB from an RGB/RGBA/grayscale ndarray (8 or 16 bit) or a PIL image."""
    if hasattr(frame, "convert"):  # PIL image
        frame = np.asarray(frame.convert("RGB"))
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"a frame must be a numpy array or PIL image, got {type(frame).__name__}")
    if frame.dtype == np.uint16:
        frame = (frame >> 8).astype(np.uint8)
    elif frame.dtype != np.uint8:
        raise FrameError(f"frames must be uint8 or uint16, got {frame.dtype}")
    if frame.ndim == 2:
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    elif frame.ndim == 3 and frame.shape[2] == 4:
        frame = frame[:, :, :3]
    elif frame.ndim == 3 and frame.shape[2] == 1:
        frame = np.repeat(frame, 3, axis=2)
    if frame.ndim != 3 or frame.shape[2] != 3 or min(frame.shape[:2]) < 1:
        raise FrameError(f"a frame must be HxW, HxWx3 or HxWx4, got shape {frame.shape}")
    return frame


def read_rgb(path: str | Path) -> np.ndarray:
    """An image file as HxWx3 uint8 RGB."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SourceError(f"{path}: cannot read the image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def check_box(box, width: int, height: int) -> np.ndarray:
    """A finite x, y, w, h box of positive size that overlaps the frame, as float64."""
    try:
        box = np.asarray(box, dtype=np.float64).reshape(4)
    except (TypeError, ValueError):
        raise BoxError(f"a box must be 4 numbers x, y, w, h, got {box!r}") from None
    if not np.all(np.isfinite(box)):
        raise BoxError(f"box {box.tolist()} has a non-finite value")
    x, y, w, h = box
    if w <= 0 or h <= 0:
        raise BoxError(f"box {box.tolist()} must have positive width and height")
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        raise BoxError(f"box {box.tolist()} lies outside the {width}x{height} frame")
    return box


def reaches_past(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Which of N x 4 boxes reach past the width x height frame (a bool per box)."""
    x, y, w, h = boxes.T
    return (x < 0) | (y < 0) | (x + w > width) | (y + h > height)


def clip_to_frame(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """N x 4 boxes cut to the part of each inside the width x height frame (checked boxes overlap it); a box
    inside is returned as it was, to the last bit (x + w - x is not always w in floating point)."""
    corners = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)
    corners = np.clip(corners, 0, [width, height, width, height])
    cut = np.concatenate([corners[:, :2], corners[:, 2:] - corners[:, :2]], axis=1)
    return np.where(reaches_past(boxes, width, height)[:, None], cut, boxes)


def check_boxes(boxes: np.ndarray, width: int, height: int, ids=None) -> None:
    """check_box for each of an N x 4 array; given the targets' `ids`, an error names its target."""
    for index, box in enumerate(boxes):
        try:
            check_box(box, width, height)
        except BoxError as exc:
            raise BoxError(str(exc) if ids is None else f"target {ids[index]}: {exc}") from None


def resolve_device(device: str) -> torch.device:
    """`auto` (CUDA when there is one), `cpu`, `cuda` or `cuda:N`, checked against this machine."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        resolved = None
    if resolved is None or resolved.type not in ("cpu", "cuda"):
        raise ConfigError(f"unknown device '{device}' (use auto, cpu, cuda or cuda:N)")
    if resolved.type == "cuda" and (resolved.index or 0) >= torch.cuda.device_count():
        raise ConfigError(f"device '{device}' is not available here ({torch.cuda.device_count()} CUDA devices); "
                          "use auto or cpu")
    return resolved


def as_box_array(boxes) -> np.ndarray:
    """One x, y, w, h box or an N x 4 array of them, as an N x 4 float64 array (N >= 1)."""
    try:
        array = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError):
        raise BoxError(f"a box must be 4 numbers x, y, w, h, got {boxes!r}") from None
    if array.ndim == 1 and array.size == 4:
        array = array[None]
    if array.ndim != 2 or array.shape[1] != 4:
        raise BoxError(f"a box must be 4 numbers x, y, w, h and boxes an N x 4 array, got shape {array.shape}")
    if not len(array):
        raise BoxError("no boxes given: pass at least one x, y, w, h")
    return array


def check_unique(ids: list[int]) -> None:
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise TargetError(f"target id {repeated[0]} is given twice")
