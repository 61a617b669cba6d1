"""OpenCV's classic trackers (CSRT, KCF, MIL) behind siamtrack's init/update API: baselines on the same frames."""
from __future__ import annotations

import cv2
import numpy as np

from .inputs import as_rgb, check_box

BASELINES = {"csrt": "TrackerCSRT", "kcf": "TrackerKCF", "mil": "TrackerMIL"}
# CSRT and KCF live in opencv-contrib; a plain OpenCV build (opencv-python-headless) lacks them
OPENCV_TRACKERS = {name: getattr(cv2, cls).create for name, cls in BASELINES.items() if hasattr(cv2, cls)}
MISSING_TRACKERS = tuple(name for name in BASELINES if name not in OPENCV_TRACKERS)
# MIL draws its training samples at random from an RNG that OpenCV lets no caller seed: runs differ.
NON_DETERMINISTIC = frozenset({"mil"})


def pixel_rect(box: np.ndarray) -> tuple[int, int, int, int]:
    """The integer x, y, w, h OpenCV takes, covering the pixels of a float box (at least 1x1)."""
    x0, y0 = np.round(box[:2]).astype(int)
    x1, y1 = np.round(box[:2] + box[2:]).astype(int)
    return int(x0), int(y0), max(1, int(x1 - x0)), max(1, int(y1 - y0))


def as_bgr(image) -> np.ndarray:
    return cv2.cvtColor(as_rgb(image), cv2.COLOR_RGB2BGR)


class OpenCVTracker:
    """One of OPENCV_TRACKERS behind siamtrack's init/update API, with 0-based float x, y, w, h boxes.

    OpenCV reports a lost target with ok=False and a meaningless box; the last box is kept then,
    as a tracker that stays put (the usual benchmark treatment of a tracker with no output), and `lost`
    is set (the long-term measures read it as siamtrack's).
    `frames_bgr`: the frames come as OpenCV's BGR uint8 arrays (as a video decodes them) and are used
    as they are; otherwise they are RGB (or PIL, or grayscale), as everywhere in siamtrack's API.
    """

    def __init__(self, kind: str, frames_bgr: bool = False):
        self.name = kind
        self.is_deterministic = kind not in NON_DETERMINISTIC
        self._create = OPENCV_TRACKERS[kind]
        self._as_bgr = np.asarray if frames_bgr else as_bgr
        self._tracker = None
        self._box = np.zeros(4)
        self.lost = False  # the last update's ok flag was False

    def init(self, image, box) -> None:
        frame = self._as_bgr(image)
        self._box = check_box(box, frame.shape[1], frame.shape[0])
        # a fresh instance each time: VOT re-initialises after a failure, and no state may carry over
        self._tracker = self._create()
        self._tracker.init(frame, pixel_rect(self._box))
        self.lost = False

    def update(self, image) -> np.ndarray:
        ok, rect = self._tracker.update(self._as_bgr(image))
        self.lost = not ok
        if ok:
            self._box = np.asarray(rect, dtype=np.float64)
        return self._box.copy()
