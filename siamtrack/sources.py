"""Frame sources: a video file, a folder of frames, a camera index or a stream URL, as RGB frames."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from .datasets import FRAME_SUFFIXES, ONE_BASED, OTB_GT_GLOB, list_frames, natural_key, parse_boxes, to_zero_based
from .errors import SourceError

# seconds before each attempt to reopen a lost stream, doubling from the second on: a stream that opens and
# then gives no frame is retried at this pace too, never in a tight loop (7,585 requests in 10 s, once)
FIRST_RETRY_WAIT, LONGEST_RETRY_WAIT = 0.25, 2.0
MAX_CAMERA_INDEX = 99  # OpenCV reads an index from 100 up as a backend's number plus a camera's
SNIFF_BYTES = 4096  # how much of a file is read to tell text from a video container
# text formats FFmpeg opens as streams (HLS playlists, raw YUV4MPEG video, SDP descriptions): not refused as text
TEXT_STREAM_HEADS = (b"#EXTM3U", b"YUV4MPEG2", b"v=0")
OTB_FRAMES = "img"  # an OTB sequence folder keeps its frames here, beside groundtruth_rect.txt


@dataclass
class FrameSource:
    """An iterable of HxWx3 uint8 RGB frames with what is known about them up front."""

    description: str
    fps: float
    frame_count: int | None  # None for cameras and streams
    is_live: bool
    frame_index: int = -1  # position in the source of the frame last handed out
    skipped: int = 0  # frames that could not be read
    first_skipped: int = -1  # the position of the first of them
    gaps: list[float] = field(default_factory=list)  # live sources: seconds without frames, per outage survived
    ended: str | None = None  # why the frames ran out; None while they last, or if their reader stopped first
    truth_boxes: np.ndarray | None = None  # an OTB sequence folder's first ground-truth box per target (0-based)

    def __iter__(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def _skip(self, position: int) -> None:
        if not self.skipped:
            self.first_skipped = position
        self.skipped += 1

    def stop(self) -> None:
        """Make an iteration waiting for a lost stream give up; safe from another thread."""

    def close(self) -> None:
        pass


class FolderSource(FrameSource):
    """The images of a folder in natural order (2.jpg before 10.jpg); a damaged image is skipped, like a
    video's bad frame."""

    def __init__(self, folder: Path, fps: float):
        try:
            self.files = list_frames(folder)
        except OSError as exc:
            raise SourceError(f"{folder}: cannot list the folder ({exc.strerror})") from None
        if not self.files:
            raise SourceError(f"{folder}: no image files ({', '.join(sorted(FRAME_SUFFIXES))})")
        super().__init__(str(folder), fps, len(self.files), is_live=False)

    def __iter__(self) -> Iterator[np.ndarray]:
        first_size = None
        for index, path in enumerate(self.files):
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)  # grey, 16-bit and alpha become 8-bit BGR
            if image is None:
                self._skip(index)
                continue
            size = image.shape[1::-1]
            first_size = first_size or size
            if size != first_size:  # boxes of one frame mean nothing in a frame of another size
                raise SourceError(f"{path}: {size[0]}x{size[1]} px, unlike the {first_size[0]}x{first_size[1]} "
                                  "of the first frame; a folder must hold the frames of one video")
            self.frame_index = index
            yield cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        self.ended = "end of folder"


class CaptureSource(FrameSource):
    """cv2.VideoCapture over a file, a camera index or a stream URL.

    A live source that stops delivering is reopened, with growing waits, for up to `reconnect`
    seconds; each outage it survives is recorded in `gaps`, and frames it missed are not made up.
    """

    def __init__(self, target: str | int, description: str, is_live: bool, default_fps: float,
                 timeout: float = 10.0, reconnect: float = 0.0):
        self.target, self.timeout, self.reconnect = target, timeout, reconnect
        self._stopped = threading.Event()  # set by stop(): no more waiting for a lost stream
        self.capture = _open_capture(target, timeout)
        if not self.capture.isOpened():
            raise SourceError(f"{description}: {_open_failure(target, timeout)}")
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))
        super().__init__(description, fps if 0 < fps < 1000 else default_fps,
                         None if is_live or count <= 0 else count, is_live)
        self._finite = count > 0  # a file, even behind a URL: once read to its end, it has ended
        self._retry_wait = 0.0  # before the next attempt to reopen; grows until a frame comes

    def __iter__(self) -> Iterator[np.ndarray]:
        return self._live_frames() if self.is_live else self._file_frames()

    def _file_frames(self) -> Iterator[np.ndarray]:
        position = 0
        while True:
            ok, frame = self.capture.read()
            if ok:
                self.frame_index = position
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            elif self.frame_count is None or position >= self.frame_count:
                self.ended = "end of file"
                return
            else:  # a frame FFmpeg cannot decode, before the end the file states: reading goes on after it
                self._skip(position)
            position += 1

    def _live_frames(self) -> Iterator[np.ndarray]:
        position, last_frame_at, deadline = 0, time.monotonic(), None  # deadline: set while the stream is lost
        while True:
            ok, frame = self.capture.read()
            if ok:
                now = time.monotonic()
                if deadline is not None:  # back after an outage
                    self.gaps.append(now - last_frame_at)
                self.frame_index = position
                position, last_frame_at, deadline, self._retry_wait = position + 1, now, None, 0.0
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                continue
            if self._finite and position:  # a video file served over the network (http mp4): played once
                self.ended = "end of file"
                return
            if deadline is None:
                deadline = time.monotonic() + self.reconnect
            if not self._reopen(deadline):
                return

    def _reopen(self, deadline: float) -> bool:
        """Reopen the target, after a wait that doubles with each attempt since the last frame, until it opens
        (True) or `deadline` passes (False, with `ended` saying so)."""
        while not self._stopped.is_set():
            self._stopped.wait(min(self._retry_wait, max(0.0, deadline - time.monotonic())))
            self._retry_wait = min(max(2 * self._retry_wait, FIRST_RETRY_WAIT), LONGEST_RETRY_WAIT)
            left = deadline - time.monotonic()
            if self._stopped.is_set():
                break
            if left <= 0:
                self.ended = (f"stream lost: not back after {self.reconnect:g} s of reconnecting" if self.reconnect
                              else "stream ended")
                return False
            self.capture.release()
            self.capture = _open_capture(self.target, min(self.timeout, left))
            if self.capture.isOpened():
                return True
        self.capture.release()  # close() may have released the one before this
        return False

    def stop(self) -> None:
        self._stopped.set()

    def close(self) -> None:
        self.stop()
        self.capture.release()


def _open_capture(target: str | int, timeout: float) -> cv2.VideoCapture:
    if isinstance(target, str) and "://" in target:
        # a stream that never answers must fail after `timeout`, not hang
        ms = int(timeout * 1000)
        return cv2.VideoCapture(target, cv2.CAP_FFMPEG, [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
    return cv2.VideoCapture(target)


def _open_failure(target: str | int, timeout: float) -> str:
    if isinstance(target, int):
        return "cannot open this camera (none with that index, or it is busy)"
    if "://" in target:
        return f"cannot open as a video stream (unreachable, not a stream, or no answer within {timeout:g} s)"
    return "cannot open as a video (not a video file, damaged, or in a format OpenCV cannot read)"


class LatestFrameSource(FrameSource):
    """A live source read on a background thread that always hands out the newest frame.

    A tracker slower than the camera then skips frames instead of falling further and further
    behind; the frames it never saw are counted in `dropped`. `captured_at` is the
    time.perf_counter() at which the frame last handed out arrived, for latency measurements, and
    `frame_index` its position in the stream. `gaps` and `ended` are the wrapped source's.
    """

    def __init__(self, source: FrameSource):
        super().__init__(source.description, source.fps, None, is_live=True)
        self.source = source
        self.gaps = source.gaps  # the same list, filled by the reader thread
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
            self.ended = self.source.ended
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
        self.source.stop()
        self._reader.join(timeout=2.0)
        self.source.close()


def open_source(spec: str, default_fps: float = 30.0, timeout: float = 10.0, reconnect: float = 0.0) -> FrameSource:
    """SOURCE as given on the command line: a camera index, a URL, a folder or a video file.

    Cameras and streams come wrapped in a LatestFrameSource. One that stops delivering frames is
    reopened for up to `reconnect` seconds (0: it ends there); files and folders ignore `reconnect`.
    """
    if not timeout > 0:
        raise SourceError(f"the stream timeout must be > 0 seconds, got {timeout}")
    if not reconnect >= 0:
        raise SourceError(f"the reconnect time must be >= 0 seconds, got {reconnect}")
    if is_camera_index(spec):
        if int(spec) > MAX_CAMERA_INDEX:
            raise SourceError(f"camera {spec}: a camera index is a number from 0 to {MAX_CAMERA_INDEX}")
        return LatestFrameSource(CaptureSource(int(spec), f"camera {spec}", True, default_fps, reconnect=reconnect))
    if "://" in spec:
        return LatestFrameSource(CaptureSource(spec, spec, True, default_fps, timeout, reconnect))
    path = Path(spec)
    if path.is_dir():
        return open_folder(path, default_fps)
    if not path.exists():
        raise SourceError(f"{spec}: no such file or folder")
    try:  # OpenCV reports an unreadable file as one it cannot decode: say what is wrong
        with path.open("rb") as file:
            head = file.read(SNIFF_BYTES)
    except OSError as exc:
        raise SourceError(f"{spec}: cannot read the file ({exc.strerror})") from None
    if is_text(head):  # FFmpeg renders a text file as a video of its characters: refuse it
        raise SourceError(f"{spec}: a text file, not a video (give a video file, a folder of frames, "
                          "a camera index or a stream URL)")
    return CaptureSource(str(path), spec, is_live=False, default_fps=default_fps)


def is_camera_index(spec: str) -> bool:
    """Whether SOURCE names a camera: ASCII digits only (str.isdigit takes '²' too)."""
    return spec.isascii() and spec.isdigit()


def is_text(head: bytes) -> bool:
    """Whether a file's first bytes are plain text (UTF-8, no NUL) other than a text stream format FFmpeg reads."""
    if not head or b"\0" in head or head.startswith(TEXT_STREAM_HEADS):
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:  # a multi-byte character cut at the end of the sample is still text
        return exc.start >= len(head) - 3
    return True


def open_folder(folder: Path, fps: float) -> FolderSource:
    """A folder of frames; an OTB sequence folder (NAME/img/, NAME/groundtruth_rect*.txt) reads img/ and its
    first ground-truth box per target."""
    frames = folder / OTB_FRAMES
    try:
        otb = frames.is_dir() and not any(p.suffix.lower() in FRAME_SUFFIXES for p in folder.iterdir())
    except OSError:  # an unreadable folder: FolderSource says so in its words
        otb = False
    if not otb:
        return FolderSource(folder, fps)
    source = FolderSource(frames, fps)
    truths = sorted(folder.glob(OTB_GT_GLOB), key=natural_key)
    firsts = [boxes[0] for boxes in map(parse_boxes, truths) if len(boxes)]
    if firsts:
        source.truth_boxes = to_zero_based(np.array(firsts), ONE_BASED["otb"])
    return source
