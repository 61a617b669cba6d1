"""Drawing boxes and labels on frames for the annotated output video and the live window."""
from __future__ import annotations

import cv2
import numpy as np

GREEN = (0, 220, 0)
RED = (0, 0, 255)  # BGR: drawing happens on the BGR frames OpenCV writes


def draw_box(frame_bgr: np.ndarray, box, color: tuple[int, int, int], label: str = "") -> None:
    x, y, w, h = (int(round(v)) for v in box)
    cv2.rectangle(frame_bgr, (x, y), (x + w, y + h), color, 2)
    if label:
        cv2.putText(frame_bgr, label, (x, max(12, y - 5)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1, cv2.LINE_AA)


def draw_caption(frame_bgr: np.ndarray, text: str) -> None:
    cv2.putText(frame_bgr, text, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2, cv2.LINE_AA)
    cv2.putText(frame_bgr, text, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
