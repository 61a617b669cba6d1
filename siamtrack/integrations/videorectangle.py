"""Label Studio's `videorectangle` regions: boxes in percent of the frame, on 1-based frames, as keyframes
that Label Studio interpolates between; a keyframe with `enabled: false` is the last frame its span shows.

A region's frame f is the video's f-th decoded frame, and its `time` is f / the Video tag's frame rate, as
Label Studio's own editor writes it (web/libs/editor/src/regions/VideoRegion.js, serialize).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import AnnotationError

REGION_TYPE = "videorectangle"
PERCENT = 100.0


def to_pixels(keyframe: dict, width: int, height: int) -> np.ndarray:
    """A keyframe's box as 0-based pixel x, y, w, h."""
    try:
        values = [float(keyframe[key]) for key in ("x", "y", "width", "height")]
    except (KeyError, TypeError, ValueError):
        raise AnnotationError(f"a keyframe must hold numbers x, y, width and height, got {keyframe!r}") from None
    return np.array(values) * np.array([width, height, width, height]) / PERCENT


def to_percent(box: np.ndarray, width: int, height: int) -> dict[str, float]:
    x, y, w, h = np.asarray(box, dtype=np.float64) * PERCENT / np.array([width, height, width, height])
    return {"x": float(x), "y": float(y), "width": float(w), "height": float(h)}


@dataclass(frozen=True)
class DrawnRegion:
    """A region the person drew, where its tracking starts: its last keyframe, the latest box they placed."""
    region: dict  # as Label Studio sent it
    keyframes: list[dict]  # the person's, in frame order, up to and including the start
    frame: int  # the start's frame, 1-based

    @property
    def start(self) -> dict:
        return self.keyframes[-1]


def drawn_region(region: dict) -> DrawnRegion | None:
    """The region's start, or None when its last keyframe ends its span (the person says the target is gone)."""
    sequence = (region.get("value") or {}).get("sequence")
    if not isinstance(sequence, list) or not sequence:
        raise AnnotationError(f"region {region.get('id')!r} has no keyframes (value.sequence)")
    try:
        keyframes = sorted(sequence, key=lambda keyframe: int(keyframe["frame"]))
    except (KeyError, TypeError, ValueError):
        raise AnnotationError(f"region {region.get('id')!r}: every keyframe needs a whole frame number") from None
    start = keyframes[-1]
    if float(start.get("rotation") or 0):
        raise AnnotationError(f"region {region.get('id')!r} is rotated ({start['rotation']} degrees) on frame "
                              f"{start['frame']}: siamtrack tracks upright boxes")
    if not start.get("enabled", True):
        return None
    return DrawnRegion(region, keyframes, int(start["frame"]))


class SequenceWriter:
    """One region's keyframes, written as its target is tracked frame after frame: every `stride`-th frame
    from the start, the last frame of each span (enabled false, so that the box stops showing after it: the
    target is judged lost on the next), the first frame it is found again, and the last frame tracked."""

    def __init__(self, drawn: DrawnRegion, stride: int, width: int, height: int, framerate: float):
        self.stride, self.size, self.framerate = stride, (width, height), framerate
        self.start_frame = drawn.frame
        self.keyframes = [dict(keyframe) for keyframe in drawn.keyframes]
        self._last = (drawn.frame, to_pixels(drawn.start, width, height), False)  # frame, box, lost
        self.tracked = self.found = 0

    def add(self, frame: int, box: np.ndarray, lost: bool) -> None:
        """The target's box on 1-based `frame`, the one after the last added, and whether it is judged lost there."""
        was_lost = self._last[2]
        if lost and not was_lost:
            self._end_span()
        elif not lost and (was_lost or (frame - self.start_frame) % self.stride == 0):
            self._keyframe(frame, box)
        self._last = (frame, np.asarray(box, dtype=np.float64), lost)
        self.tracked += 1
        self.found += not lost

    def finish(self, video_ended: bool) -> list[dict]:
        """The keyframes, the last frame tracked among them. Where tracking stopped before the video's end
        (--max-frames), the box stops there too, rather than claim frames nobody tracked."""
        frame, box, lost = self._last
        if not lost:
            if self.keyframes[-1]["frame"] != frame:
                self._keyframe(frame, box)
            if not video_ended:
                self.keyframes[-1]["enabled"] = False
        return self.keyframes

    @property
    def score(self) -> float:
        """The share of tracked frames on which the target was not judged lost (1 with none tracked)."""
        return self.found / self.tracked if self.tracked else 1.0

    def _end_span(self) -> None:
        frame, box, _ = self._last
        if self.keyframes[-1]["frame"] != frame:
            self._keyframe(frame, box)
        self.keyframes[-1] = {**self.keyframes[-1], "enabled": False}

    def _keyframe(self, frame: int, box: np.ndarray) -> None:
        self.keyframes.append({"frame": frame, "enabled": True, "rotation": 0, **to_percent(box, *self.size),
                               "time": frame / self.framerate})
