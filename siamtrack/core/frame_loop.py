"""The one frame loop: init on the first frame, update on each after, each call timed. Every way siamtrack runs
a tracker over frames goes through it (a run, the demo, a benchmark's sequence, the speed benchmark, VOT's TraX
requests), with any tracker that has init(frame, box) and update(frame)."""
from __future__ import annotations

import time
from typing import Iterable, Iterator

import numpy as np


def track_step(tracker, frame: np.ndarray, box=None) -> tuple[np.ndarray, float]:
    """init on `frame` when a `box` is given (the answer: the box), else update (its answer); and the seconds
    the call took."""
    start = time.perf_counter()
    if box is not None:
        tracker.init(frame, box)
        result = np.asarray(box, dtype=np.float64)
    else:
        result = tracker.update(frame)
    return result, time.perf_counter() - start


def track_frames(tracker, frames: Iterable[np.ndarray], box) -> Iterator[tuple[int, np.ndarray, np.ndarray, float]]:
    """Init on the first frame with `box` (one box, or an N x 4 array), update on the rest: yields (index,
    frame, answer, seconds) after each call."""
    for index, frame in enumerate(frames):
        yield index, frame, *track_step(tracker, frame, box if index == 0 else None)


def fps(frames: int, seconds: float) -> float:
    """Frames a second over `seconds` (0 for no time measured yet)."""
    return frames / seconds if seconds > 0 else 0.0
