"""Drawing boxes and labels on frames for the annotated output video and the live window.

Every text goes once onto a filled dark plate sized with cv2.getTextSize. An outline drawn as the same
text with a thicker stroke does not line up: OpenCV advances each glyph by more when the stroke is
thicker, so the outline drifts right along the line and "6.31" reads "6.331".
"""
from __future__ import annotations

from typing import Iterable

import cv2
import numpy as np

GREEN = (0, 220, 0)
RED = (0, 0, 255)  # BGR: drawing happens on the BGR frames OpenCV writes
# one colour per target id, in turn: green first (the one target of a single-target run), red left for
# lost targets
TARGET_COLOURS = (GREEN, (255, 160, 0), (0, 200, 255), (255, 0, 255), (255, 255, 0), (0, 140, 255),
                  (160, 80, 255), (120, 255, 120))
WHITE = (255, 255, 255)
PLATE = (0, 0, 0)
FONT = cv2.FONT_HERSHEY_SIMPLEX
LABEL_SCALE, CAPTION_SCALE = 0.5, 0.6
PAD = 2  # px of plate around the text
BOX_THICKNESS = 2
CAPTION_CORNER = (6, 4)  # top-left of the caption's plate

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1, end exclusive


def _text_rect(text: str, scale: float, corner: tuple[int, int]) -> Rect:
    """The plate that `text` at `scale` needs with its top-left at `corner`."""
    (width, height), baseline = cv2.getTextSize(text, FONT, scale, 1)
    x, y = corner
    return x, y, x + width + 2 * PAD, y + height + baseline + 2 * PAD


def _draw_text(frame_bgr: np.ndarray, text: str, scale: float, rect: Rect, color: tuple[int, int, int]) -> None:
    """`text` once, on a filled plate covering `rect` (from _text_rect)."""
    x0, y0, x1, y1 = rect
    cv2.rectangle(frame_bgr, (x0, y0), (x1 - 1, y1 - 1), PLATE, cv2.FILLED)
    height = cv2.getTextSize(text, FONT, scale, 1)[0][1]
    cv2.putText(frame_bgr, text, (x0 + PAD, y0 + PAD + height), FONT, scale, color, 1, cv2.LINE_AA)


def draw_caption(frame_bgr: np.ndarray, text: str) -> None:
    """White text on a dark plate at the top-left corner."""
    _draw_text(frame_bgr, text, CAPTION_SCALE, _text_rect(text, CAPTION_SCALE, CAPTION_CORNER), WHITE)


def draw_boxes(frame_bgr: np.ndarray, boxes: Iterable[tuple]) -> None:
    """(box, color, label) triples: every box, then every non-empty label where no other label is."""
    boxes = [(tuple(int(round(v)) for v in box), color, label) for box, color, label in boxes]
    for (x, y, w, h), color, _ in boxes:
        cv2.rectangle(frame_bgr, (x, y), (x + w, y + h), color, BOX_THICKNESS)
    placed: list[Rect] = []
    for box, color, label in boxes:
        if label:
            rect = _free_spot(label, box, placed, frame_bgr.shape)
            _draw_text(frame_bgr, label, LABEL_SCALE, rect, color)
            placed.append(rect)


def _free_spot(label: str, box: tuple[int, int, int, int], taken: list[Rect], shape: tuple) -> Rect:
    """The first spot inside the frame and clear of the `taken` plates, of: above the box, below it,
    then further up or down a plate at a time (the first spot if none is clear: a frame too small)."""
    x, y, w, h = box
    x0, _, x1, height = _text_rect(label, LABEL_SCALE, (x, 0))
    above, below = y - BOX_THICKNESS - height, y + h + BOX_THICKNESS
    # each taken plate blocks at most two of these spots on either side
    tops = [top for k in range(2 * len(taken) + 1) for top in (above - k * height, below + k * height)]
    spots = [_inside((x0, top, x1, top + height), shape) for top in tops]
    return next((r for r in spots if not any(_overlap(r, t) for t in taken)), spots[0])


def _inside(rect: Rect, shape: tuple) -> Rect:
    """`rect` moved into a frame of `shape` (as far as it fits)."""
    x0, y0, x1, y1 = rect
    dx = max(0, -x0) or min(0, shape[1] - x1)
    dy = max(0, -y0) or min(0, shape[0] - y1)
    return x0 + dx, y0 + dy, x1 + dx, y1 + dy


def _overlap(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def target_colour(target_id: int) -> tuple[int, int, int]:
    return TARGET_COLOURS[target_id % len(TARGET_COLOURS)]
