"""Frame sources: a video file, a folder of frames, a camera index or a stream URL, as RGB frames."""
from __future__ import annotations

import threading
import time
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

    def __init__(self, target: str | int, description: str, is_live: bool, default_fps: float,
                 timeout: float = 10.0):
        if isinstance(target, str) and "://" in target:
            # a stream that never answers must fail after `timeout`, not hang
            ms = int(timeout * 1000)
            self.capture = cv2.VideoCapture(target, cv2.CAP_FFMPEG, [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
        else:
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


class LatestFrameSource(FrameSource):
    """A live source read on a background thread that always hands out the newest frame.

    A tracker slower than the camera then skips frames instead of falling further and further
    behind; the frames it never saw are counted in `dropped`. `captured_at` is the
    time.perf_counter() at which the frame last handed out arrived, for latency measurements, and
    `frame_index` its position in the stream.
    """

    def __init__(self, source: FrameSource):
        super().__init__(source.description, source.fps, None, is_live=True)
        self.source = source
        self.received = self.dropped = 0
        self.captured_at = 0.0
        self.frame_index = -1
        self._latest: tuple[np.ndarray, float, int] | None = None
        self._finished = self._stopping = False
        self._ready = threading.Condition()
        self._reader = threading.Thread(target=self._read, name="siamtrack-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for frame in self.source:
            with self._ready:
                if self._stopping:
                    break
                self.dropped += self._latest is not None  # replaced before anyone took it
                self.received += 1
                self._latest = (frame, time.perf_counter(), self.received - 1)
                self._ready.notify()
        with self._ready:
            self._finished = True
            self._ready.notify()

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            with self._ready:
                self._ready.wait_for(lambda: self._latest is not None or self._finished)
                if self._latest is None:
                    return
                frame, self.captured_at, self.frame_index = self._latest
                self._latest = None
            yield frame

    def close(self) -> None:
        with self._ready:
            self._stopping = True
        self._reader.join(timeout=2.0)
        self.source.close()


def open_source(spec: str, default_fps: float = 30.0, timeout: float = 10.0) -> FrameSource:
    """SOURCE as given on the command line: a camera index, a URL, a folder or a video file.

    Cameras and streams come wrapped in a LatestFrameSource.
    """
    if spec.isdigit():
        return LatestFrameSource(CaptureSource(int(spec), f"camera {spec}", True, default_fps))
    if "://" in spec:
        return LatestFrameSource(CaptureSource(spec, spec, True, default_fps, timeout))
    path = Path(spec)
    if path.is_dir():
        return FolderSource(path, default_fps)
    if not path.exists():
        raise SourceError(f"{spec}: no such file or folder")
    return CaptureSource(str(path), spec, is_live=False, default_fps=default_fps)
