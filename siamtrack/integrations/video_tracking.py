"""Targets that start on different frames of one video, tracked through it as one batch: each from the frame
its box was drawn on (where the others are tracked too), every target's crops in the same network call."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np

from ..core.tracker import SiamFCTracker
from ..errors import BoxError
from ..inputs import check_boxes, clip_to_frame
from .errors import AnnotationError


@dataclass(frozen=True)
class Start:
    frame: int  # the 0-based position in the video of the frame the box was drawn on
    box: np.ndarray  # x, y, w, h in that frame's pixels


@dataclass(frozen=True)
class Tracked:
    """One frame's answers for the targets started before it, in the order of `ids` (their starts' indices)."""
    frame: int  # 0-based position in the video
    ids: np.ndarray
    boxes: np.ndarray  # N x 4
    lost: np.ndarray  # N bool


class Cancelled(Exception):
    """The caller gave up (Label Studio closed the request): tracking stops at the next frame."""


def track_starts(tracker: SiamFCTracker, frames: Iterable[tuple[int, np.ndarray]], starts: list[Start],
                 last_frame: float, cancelled: Callable[[], bool] = lambda: False) -> Iterator[Tracked]:
    """Track each start's box from its frame on, through the (position, RGB frame) pairs, up to position
    `last_frame`; target i is starts[i]. A target joins on its frame, after the others are tracked there. A
    box reaching past the frame is tracked by its part inside, as `siamtrack run` does."""
    waiting = set(range(len(starts)))
    position = -1
    for position, frame in frames:
        if cancelled():
            raise Cancelled
        started = len(waiting) < len(starts)
        if started:
            tracker.update(frame)
            answers = tracker.answers()
            yield Tracked(position, answers.ids, answers.boxes, answers.lost)
        joining = sorted(i for i in waiting if starts[i].frame <= position)  # <=: a start on an unreadable frame
        if joining:
            _join(tracker, frame, [starts[i].box for i in joining], joining, first=not started)
            waiting -= set(joining)
        if position >= last_frame:
            return
    if waiting:
        first = min(starts[i].frame for i in waiting)
        raise AnnotationError(f"a box starts on frame {first + 1}, but the video has {position + 1} frames")


def _join(tracker: SiamFCTracker, frame: np.ndarray, boxes: list[np.ndarray], ids: list[int], first: bool) -> None:
    height, width = frame.shape[:2]
    boxes = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    try:
        check_boxes(boxes, width, height, ids)
    except BoxError as exc:
        raise AnnotationError(f"{exc} (targets are numbered from 0 in the order of the task's regions)") from None
    boxes = clip_to_frame(boxes, width, height)
    if first:
        tracker.init(frame, boxes, ids=ids)
    else:
        for target_id, box in zip(ids, boxes):
            tracker.add(frame, box, target_id)
