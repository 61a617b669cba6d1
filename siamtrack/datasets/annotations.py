"""Annotation files: boxes (rectangles or polygons), integer labels and 0/1 flags, one frame a line, and the
boxes' 0- or 1-based conventions."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import SourceError

_ONE_BASED_SHIFT = np.array([1.0, 1.0, 0.0, 0.0])  # added to 0-based x, y, w, h to make them 1-based
_SEPARATORS = re.compile(r"[,\s]+")


def to_zero_based(boxes, one_based: bool) -> np.ndarray:
    """x, y, w, h boxes of a file's convention as 0-based float64 boxes."""
    return np.asarray(boxes, dtype=np.float64) - (_ONE_BASED_SHIFT if one_based else 0)


def from_zero_based(boxes, one_based: bool) -> np.ndarray:
    """0-based x, y, w, h boxes in a file's convention, as float64."""
    return np.asarray(boxes, dtype=np.float64) + (_ONE_BASED_SHIFT if one_based else 0)


def data_lines(path: Path) -> list[str]:
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path}: cannot read ({exc.__class__.__name__})") from None
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def parse_boxes(path: Path) -> np.ndarray:
    """N x 4 axis-aligned boxes from 4-number rectangles or 8-number polygons, as written in the file."""
    rows = []
    for number, line in enumerate(data_lines(path), start=1):
        try:
            values = [float(v) for v in _SEPARATORS.split(line.strip(" ,\t"))]
        except ValueError:
            values = []
        if len(values) == 8:
            xs, ys = values[0::2], values[1::2]
            values = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
        if len(values) != 4:
            raise SourceError(f"{path}:{number}: expected 4 or 8 numbers, got {line.strip()[:60]!r}")
        rows.append(values)
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


def parse_labels(path: Path) -> np.ndarray:
    """One integer per line (GOT-10k absence.label, cover.label)."""
    labels = []
    for number, line in enumerate(data_lines(path), start=1):
        try:
            labels.append(int(line.strip()))
        except ValueError:
            raise SourceError(f"{path}:{number}: expected an integer, got {line.strip()[:60]!r}") from None
    return np.array(labels, dtype=np.int64)


def parse_flags(path: Path) -> np.ndarray:
    """0/1 values separated by commas, spaces or line breaks (LaSOT writes a frame's flags on one line)."""
    text = " ".join(data_lines(path))
    values = [v for v in _SEPARATORS.split(text) if v]
    if any(v not in ("0", "1") for v in values):
        bad = next(v for v in values if v not in ("0", "1"))
        raise SourceError(f"{path}: expected 0 or 1 values, got {bad[:20]!r}")
    return np.array([v == "1" for v in values], dtype=bool)
