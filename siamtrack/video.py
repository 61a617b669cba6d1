"""The one video writer: frames to an mp4v file (the annotated run, the demo, the benchmark's clip)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

from .errors import SiamtrackError


class VideoOutput:
    """An mp4v video writer that keeps the size of the first frame."""

    def __init__(self, path: Path, fps: float, first_bgr: np.ndarray):
        self.size = (first_bgr.shape[1], first_bgr.shape[0])
        self.writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, self.size)
        if not self.writer.isOpened():
            raise SiamtrackError(f"{path}: cannot write a video there (is its folder there, and is the name a "
                                 ".mp4, .avi or .mov file?)")

    def write(self, frame_bgr: np.ndarray) -> None:
        if (frame_bgr.shape[1], frame_bgr.shape[0]) != self.size:
            frame_bgr = cv2.resize(frame_bgr, self.size)
        self.writer.write(frame_bgr)

    def close(self) -> None:
        self.writer.release()


def write_rgb_video(path: Path, frames_rgb: Iterable[np.ndarray], fps: float) -> Path:
    """RGB frames to an mp4v video at `path`."""
    video = None
    try:
        for frame in frames_rgb:
            bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
            video = video or VideoOutput(path, fps, bgr)
            video.write(bgr)
    finally:
        if video:
            video.close()
    return path
