"""One-pass evaluation metrics for x, y, w, h boxes: success, precision and normalized precision curves.

Thresholds follow the OTB protocol as the got10k toolkit implements it, so the scores agree with its
reports: success is the fraction of frames whose overlap *exceeds* each of 21 thresholds in [0, 1] and
its AUC is their mean; precision is the fraction whose centre error is *at most* 0..50 px, scored at
20 px. Normalized precision (TrackingNet) divides the centre error by the ground-truth width and
height, so that it does not favour large targets; it is scored as the mean over 51 thresholds in [0, 0.5]
(TrackingNet's paper), or, as LaSOT's toolkit ranks it, at 0.2 (`norm_precision_20`).

LaSOT's toolkit (utils/calc_seq_err_robust.m, eval_tracker.m) scores a sequence over the frames where the
target is visible but divides by every frame, so frames of an absent target count as failures
(`sequence_curves(..., frames=)`), and replaces a tracked box that is NaN or of no size by the box before
(`hold_invalid`).

All metrics compare boxes of one convention (both 0-based or both 1-based): they are shift-invariant.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IOU_THRESHOLDS = np.linspace(0, 1, 21)
PIXEL_THRESHOLDS = np.arange(51)
PRECISION_PIXELS = 20
NORM_THRESHOLDS = np.linspace(0, 0.5, 51)
NORM_PRECISION_AT = 0.2  # LaSOT's toolkit ranks normalized precision at this threshold


def _as_boxes(boxes) -> np.ndarray:
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def overlaps(boxes, truth) -> np.ndarray:
    """Intersection over union per row; a box of negative size counts as empty."""
    a, b = _as_boxes(boxes).copy(), _as_boxes(truth).copy()
    a[:, 2:] = np.maximum(a[:, 2:], 0)
    b[:, 2:] = np.maximum(b[:, 2:], 0)
    low = np.maximum(a[:, :2], b[:, :2])
    high = np.minimum(a[:, :2] + a[:, 2:], b[:, :2] + b[:, 2:])
    inter = np.prod(np.maximum(high - low, 0), axis=1)
    union = np.prod(a[:, 2:], axis=1) + np.prod(b[:, 2:], axis=1) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _centre_offsets(boxes, truth) -> np.ndarray:
    a, b = _as_boxes(boxes), _as_boxes(truth)
    return (a[:, :2] + a[:, 2:] / 2) - (b[:, :2] + b[:, 2:] / 2)


def centre_errors(boxes, truth) -> np.ndarray:
    """Distance between box centres in pixels."""
    return np.hypot(*_centre_offsets(boxes, truth).T)


def normalized_centre_errors(boxes, truth) -> np.ndarray:
    """Centre distance with x measured in ground-truth widths and y in ground-truth heights."""
    return np.hypot(*(_centre_offsets(boxes, truth) / _as_boxes(truth)[:, 2:]).T)


@dataclass
class Curves:
    success: np.ndarray         # at IOU_THRESHOLDS
    precision: np.ndarray       # at PIXEL_THRESHOLDS
    norm_precision: np.ndarray  # at NORM_THRESHOLDS

    @property
    def success_auc(self) -> float:
        return float(self.success.mean())

    @property
    def precision_score(self) -> float:
        return float(self.precision[PIXEL_THRESHOLDS == PRECISION_PIXELS][0])

    @property
    def norm_precision_score(self) -> float:
        return float(self.norm_precision.mean())

    @property
    def norm_precision_20(self) -> float:
        return float(self.norm_precision[np.isclose(NORM_THRESHOLDS, NORM_PRECISION_AT)][0])


def _fraction_at(values: np.ndarray, thresholds: np.ndarray, passes, frames: int) -> np.ndarray:
    return passes(values[:, None], thresholds[None, :]).sum(axis=0) / frames


def sequence_curves(boxes, truth, frames: int | None = None) -> Curves:
    """Curves of one sequence; pass only the frames to score (ground truth of positive size). `frames`:
    what to divide by, when frames left out count as failures (LaSOT: every frame of the sequence)."""
    frames = len(_as_boxes(truth)) if frames is None else frames
    return Curves(_fraction_at(overlaps(boxes, truth), IOU_THRESHOLDS, np.greater, frames),
                  _fraction_at(centre_errors(boxes, truth), PIXEL_THRESHOLDS, np.less_equal, frames),
                  _fraction_at(normalized_centre_errors(boxes, truth), NORM_THRESHOLDS, np.less_equal, frames))


def hold_invalid(boxes: np.ndarray) -> np.ndarray:
    """The boxes with each NaN box or box of no size after the first replaced by the one before it."""
    held = np.array(boxes, dtype=np.float64)
    for i in range(1, len(held)):
        if not (np.isfinite(held[i]).all() and (held[i, 2:] > 0).all()):
            held[i] = held[i - 1]
    return held


def with_true_sizes(boxes: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The tracked centres with the true widths and heights: what a perfect size estimate would score."""
    centres = boxes[:, :2] + boxes[:, 2:] / 2
    return np.concatenate([centres - truth[:, 2:] / 2, truth[:, 2:]], axis=1)


def mean_curves(curves: list[Curves]) -> Curves:
    """The average over sequences (or repetitions), each weighted equally whatever its length."""
    return Curves(*(np.mean([getattr(c, field) for c in curves], axis=0)
                    for field in ("success", "precision", "norm_precision")))
