"""Frame sources: a video file, a folder of frames, a camera index or a stream URL, as RGB frames."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from .errors import SourceError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


@dataclass
class FrameSource:
    """An iterable of HxWx3 uint8 RGB frames with what is known about them up front."""

    description: str
    fps: float
    frame_count: int | None  # None for cameras and streams
    is_live: bool

    def __iter__(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class FolderSource(FrameSource):
    def __init__(self, folder: Path, fps: float):
        self.files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise SourceError(f"{folder}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
        super().__init__(str(folder), fps, len(self.files), is_live=False)

    def __iter__(self) -> Iterator[np.ndarray]:
        for path in self.files:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise SourceError(f"{path}: not a readable image")
            yield cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class CaptureSource(FrameSource):
    """cv2.VideoCapture over a file, a camera index or a stream URL."""

    def __init__(self, target: str | int, description: str, is_live: bool, default_fps: float):
        self.capture = cv2.VideoCapture(target)
        if not self.capture.isOpened():
            kind = "stream or camera" if is_live else "video"
            raise SourceError(f"{description}: cannot open as a {kind}")
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))
        super().__init__(description, fps if 0 < fps < 1000 else default_fps,
                         None if is_live or count <= 0 else count, is_live)

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            ok, frame = self.capture.read()
            if not ok:
                return
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        self.capture.release()


def open_source(spec: str, default_fps: float = 30.0) -> FrameSource:
    """SOURCE as given on the command line: a camera index, a URL, a folder or a video file."""
    if spec.isdigit():
        return CaptureSource(int(spec), f"camera {spec}", is_live=True, default_fps=default_fps)
    if "://" in spec:
        return CaptureSource(spec, spec, is_live=True, default_fps=default_fps)
    path = Path(spec)
    if path.is_dir():
        return FolderSource(path, default_fps)
    if not path.exists():
        raise SourceError(f"{spec}: no such file or folder")
    return CaptureSource(str(path), spec, is_live=False, default_fps=default_fps)
