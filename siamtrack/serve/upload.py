"""An uploaded video: checked to be one, then tracked from its first frame into the rows of `run --boxes`,
the annotated mp4 of `run --output` and one small JPEG a frame for the page's playback, within the
session's limits on frames and disk (a few MB of video can hold hours of 4K frames)."""
from __future__ import annotations

import shutil
import threading
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ContextManager

import cv2
import numpy as np

from ..core.frame_loop import fps, track_frames
from ..core.tracker import SiamFCTracker
from ..errors import SiamtrackError, SourceError
from ..outputs import RunOutputs, annotate
from ..sources import SNIFF_BYTES, CaptureSource
from .frames import encode_jpeg
from .settings import PLAYBACK_QUALITY, PLAYBACK_SIDE

DEFAULT_FPS = 30.0  # for a video that does not say its frame rate
UPLOAD_NAME, BOXES_NAME, VIDEO_NAME, FRAMES_DIR = "upload.video", "upload.boxes.txt", "upload.mp4", "frames"


class UploadError(SiamtrackError):
    """An upload that is not a video this server can track: text, no frames, or frames too large."""


class UploadTooLarge(UploadError):
    """An upload past --max-upload-mb."""


class UploadBusy(UploadError):
    """An upload while the session's last one is being tracked."""


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    frames: int | None  # as the file states it; None when it does not


@dataclass(frozen=True)
class UploadLimits:
    frames: int  # tracked, at most
    disk_bytes: int  # the session's folder, upload included
    disk_mb: int  # the same, as the option gives it


@dataclass(frozen=True)
class UploadResult:
    frames: int  # tracked
    fps: float  # the tracker's
    cancelled: bool
    stopped: str | None = None  # the limit that stopped it before the video's end


def frame_path(folder: Path, index: int) -> Path:
    """The playback JPEG of frame `index` (an int: no request names a path)."""
    return folder / FRAMES_DIR / f"{int(index)}.jpg"


def remove_results(folder: Path) -> None:
    """An upload's files gone (before the next one is received): nothing of an earlier video is served."""
    shutil.rmtree(folder / FRAMES_DIR, ignore_errors=True)
    for name in (UPLOAD_NAME, BOXES_NAME, VIDEO_NAME):
        (folder / name).unlink(missing_ok=True)


def playback_jpeg(frame_rgb: np.ndarray) -> bytes:
    """A frame as the page plays it back: at most PLAYBACK_SIDE wide and high (the page scales it to the
    video's size, the boxes' coordinates)."""
    height, width = frame_rgb.shape[:2]
    shrink = PLAYBACK_SIDE / max(height, width)
    if shrink < 1:
        frame_rgb = cv2.resize(frame_rgb, (max(1, round(width * shrink)), max(1, round(height * shrink))),
                               interpolation=cv2.INTER_AREA)
    return encode_jpeg(frame_rgb, PLAYBACK_QUALITY)


def check_video(path: Path, max_pixels: int) -> VideoInfo:
    """The upload's size and rate, once it proved to be a video: not text, opened by OpenCV, two frames read,
    frames of at most `max_pixels`. Its first frame is written as the JPEG the page draws the boxes on."""
    with path.open("rb") as file:
        head = file.read(SNIFF_BYTES)
    if _is_text(head):
        raise UploadError("the upload is a text file, not a video")
    capture = cv2.VideoCapture(str(path))
    try:
        first_ok, first = capture.read()
        second_ok = first_ok and capture.read()[0]
        fps, count = capture.get(cv2.CAP_PROP_FPS), int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()
    if not second_ok:
        raise UploadError("the upload is not a video OpenCV can read (no frames, one image, or an unknown format)")
    height, width = first.shape[:2]
    if width * height > max_pixels:
        raise UploadError(f"the video's {width}x{height} frames are larger than this server takes "
                          f"({max_pixels} pixels; --max-frame-pixels)")
    frame_path(path.parent, 0).parent.mkdir(exist_ok=True)
    frame_path(path.parent, 0).write_bytes(playback_jpeg(cv2.cvtColor(first, cv2.COLOR_BGR2RGB)))
    return VideoInfo(width, height, fps if 0 < fps < 1000 else DEFAULT_FPS, count if count > 0 else None)


def _is_text(head: bytes) -> bool:
    """Stricter than sources.is_text: an upload may not be an HLS playlist, SDP or concat list either, which
    would make FFmpeg open the files and URLs they name."""
    text = head.decode("utf-8", errors="replace").rstrip("\ufffd")  # a character cut at the end is still text
    return bool(text) and "\ufffd" not in text and all(c.isprintable() or c in "\r\n\t\f" for c in text)


def track_upload(tracker: SiamFCTracker, folder: Path, boxes: np.ndarray, progress: Callable[[int, int | None], None],
                 cancelled: threading.Event, limits: UploadLimits,
                 guard: ContextManager = nullcontext()) -> UploadResult:
    """Track `boxes` through the video uploaded to `folder`, from its first frame, writing the boxes file, the
    annotated video and the playback JPEGs there; `progress(done, total)` after each frame, and each frame's
    tracking inside `guard` (siamtrack.serve.models). Stops early, with what it wrote so far, once `cancelled`
    is set (the session closed) or at a limit (the result says which)."""
    source = CaptureSource(str(folder / UPLOAD_NAME), "the upload", is_live=False, default_fps=DEFAULT_FPS)
    outputs = RunOutputs(str(folder / VIDEO_NAME), str(folder / BOXES_NAME), source.fps)
    tracked = track_frames(tracker, source, boxes)
    frames, seconds, stopped = 0, 0.0, None
    written = (folder / UPLOAD_NAME).stat().st_size  # the playback JPEGs' bytes, and the upload's
    frame_path(folder, 0).parent.mkdir(exist_ok=True)
    try:
        while stopped is None and not cancelled.is_set():
            with guard:
                step = next(tracked, None)
            if step is None:
                break
            _, frame, _, spent = step
            frames, seconds = frames + 1, seconds + spent
            answers = tracker.answers()
            shown = annotate(frame, answers, fps(frames, seconds))
            outputs.write(source.frame_index, answers, shown)
            playback = playback_jpeg(frame)
            frame_path(folder, source.frame_index).write_bytes(playback)
            written += len(playback)
            progress(frames, source.frame_count)
            stopped = _limit_reached(folder, frames, written, limits)
    except SourceError as exc:
        raise UploadError(f"{exc}; stopped after {frames} frame(s)") from None
    finally:
        outputs.close()
        source.close()
    return UploadResult(frames, fps(frames, seconds), cancelled.is_set(), stopped)


def _limit_reached(folder: Path, frames: int, written: int, limits: UploadLimits) -> str | None:
    """Which of the session's limits the upload's tracking has reached, in words; None while it has not."""
    if frames >= limits.frames:
        return f"stopped at this server's limit of {limits.frames} frames (--max-upload-frames)"
    on_disk = written + sum((folder / name).stat().st_size for name in (VIDEO_NAME, BOXES_NAME)
                            if (folder / name).exists())
    if on_disk >= limits.disk_bytes:
        return f"stopped at this server's limit of {limits.disk_mb} MB on disk a session (--max-disk-mb)"
    return None

