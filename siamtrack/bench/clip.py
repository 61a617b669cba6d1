"""The benchmark's clip: the frames every tracker meets, written to an mp4 and decoded frame by frame,
so that decoding is timed too; optionally with a stretch of frames without the target, so that the frames a
tracker spends searching for a lost target are timed too."""
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
ABSENT_SEED = 1  # the synthetic clip whose frames stand in for the scene without the target


@dataclass
class BenchClip:
    """The frames every tracker meets, and the target's box in the first."""

    name: str
    frames: list[np.ndarray]
    box: np.ndarray
    absent: int = 0  # frames without the target, after the first third of the others


def bench_clip(frames: int | None = None, sequence: str | Path | None = None, absent: int = 0) -> BenchClip:
    """The synthetic 640x360 clip (`frames` long, the demo's length by default), or the first `frames`
    frames of a real sequence folder (OTB, VOT or GOT-10k layout): CSRT's cost depends on the target. With
    `absent`, that many frames of another scene (the synthetic clip of another seed, at the clip's size)
    come after the first third, as a camera cut would: the target is gone, and trackers that know it search."""
    if sequence is None:
        clip = make_clip() if frames is None else make_clip(num_frames=frames)
        name, shown, box = "synthetic", clip.frames, clip.boxes[0]
    else:
        seq = load_sequences(sequence)[0]
        name, shown, box = seq.name, [read_rgb(path) for path in seq.frames[:frames]], seq.boxes[0]
    if not absent:
        return BenchClip(name, shown, box)
    height, width = shown[0].shape[:2]
    other = [cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
             for frame in make_clip(num_frames=absent, seed=ABSENT_SEED).frames]
    cut = max(1, len(shown) // 3)
    return BenchClip(name, shown[:cut] + other + shown[cut:], box, absent)


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
