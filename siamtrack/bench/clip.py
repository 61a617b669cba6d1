"""The benchmark's clip: the frames every tracker meets, written to an mp4 and decoded frame by frame,
so that decoding is timed too."""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from ..datasets import load_sequences
from ..inputs import read_rgb
from ..synthetic import make_clip
from ..video import write_rgb_video

VIDEO_FPS = 30.0  # immaterial: the frames are read as fast as they decode


@dataclass
class BenchClip:
    """The frames every tracker meets, and the target's box in the first."""

    name: str
    frames: list[np.ndarray]
    box: np.ndarray


def bench_clip(frames: int | None = None, sequence: str | Path | None = None) -> BenchClip:
    """The synthetic 640x360 clip (`frames` long, the demo's length by default), or the first `frames`
    frames of a real sequence folder (OTB, VOT or GOT-10k layout): CSRT's cost depends on the target."""
    if sequence is None:
        clip = make_clip() if frames is None else make_clip(num_frames=frames)
        return BenchClip("synthetic", clip.frames, clip.boxes[0])
    seq = load_sequences(sequence)[0]
    return BenchClip(seq.name, [read_rgb(path) for path in seq.frames[:frames]], seq.boxes[0])


def decoded_clip(clip: BenchClip) -> Iterator[tuple[np.ndarray, np.ndarray, float]]:
    """The clip's frames as a video decodes them: (RGB frame, BGR frame, ms to read and convert it)."""
    with tempfile.TemporaryDirectory() as tmp:
        yield from decoded(write_rgb_video(Path(tmp) / "bench.mp4", clip.frames, VIDEO_FPS))


def decoded(path: Path) -> Iterator[tuple[np.ndarray, np.ndarray, float]]:
    """(RGB frame, BGR frame, ms to read and convert it) for each frame of a video."""
    capture = cv2.VideoCapture(str(path))
    try:
        while True:
            start = time.perf_counter()
            ok, bgr = capture.read()
            if not ok:
                return
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            yield rgb, bgr, 1000 * (time.perf_counter() - start)
    finally:
        capture.release()
