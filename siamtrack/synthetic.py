"""A deterministic synthetic clip with ground truth: no downloaded data needed for demo, tests, bench.

A textured object moves along a smooth path, grows and shrinks, and is briefly half hidden by a
passing bar, over a textured background that pans like a moving camera.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import cv2
import numpy as np


@dataclass
class SyntheticClip:
    frames: list[np.ndarray]  # HxWx3 uint8 RGB
    boxes: np.ndarray         # Nx4 0-based x, y, w, h of the object (also while occluded)


def smooth_texture(rng: np.random.Generator, height: int, width: int, cell: int) -> np.ndarray:
    """Random colour blobs about `cell` px wide plus fine grain, as float RGB in 0..255."""
    coarse = rng.random((max(2, height // cell), max(2, width // cell), 3)).astype(np.float32)
    blobs = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    grain = rng.random((height, width, 1)).astype(np.float32)
    return np.clip(255 * (0.75 * blobs + 0.25 * grain), 0, 255)


def make_object(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A distinctive target: saturated stripes and rings over its own blob texture."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    rings = 0.5 + 0.5 * np.cos(np.hypot(yy - height / 2, xx - width / 2) / 3.0)
    stripes = 0.5 + 0.5 * np.sign(np.sin(xx / 5.0))
    base = smooth_texture(rng, height, width, 8)
    colour = np.stack([255 * rings, 255 * stripes, 0.5 * base[..., 2]], axis=-1)
    return np.clip(0.6 * colour + 0.4 * base, 0, 255)


def make_clip(num_frames: int = 150, width: int = 640, height: int = 360, seed: int = 0) -> SyntheticClip:
    frames, boxes = zip(*clip_frames(num_frames, width, height, seed))
    return SyntheticClip(list(frames), np.array(boxes, dtype=np.float64))


def clip_frames(num_frames: int = 150, width: int = 640, height: int = 360,
                seed: int = 0) -> Iterator[tuple[np.ndarray, tuple[int, int, int, int]]]:
    """The clip's (frame, box) pairs, made one at a time: a clip too long to hold in memory streams."""
    rng = np.random.default_rng(seed)
    margin = 120
    background = smooth_texture(rng, height + 2 * margin, width + 2 * margin, 24)
    target = make_object(rng, 60, 80)
    bar = smooth_texture(rng, 200, 70, 10) * 0.5
    occlusion = range(int(0.55 * num_frames), int(0.55 * num_frames) + 8)
    for i in range(num_frames):
        phase = 2 * np.pi * i / num_frames
        pan_x = margin + int(margin * 0.8 * np.sin(phase))
        pan_y = margin + int(margin * 0.5 * np.sin(2 * phase))
        frame = background[pan_y:pan_y + height, pan_x:pan_x + width].copy()
        scale = 1.0 + 0.35 * np.sin(1.5 * phase)
        w, h = int(round(80 * scale)), int(round(60 * scale))
        cx = width / 2 + 0.3 * width * np.sin(1.3 * phase)
        cy = height / 2 + 0.25 * height * np.sin(2 * phase + 0.5)
        x, y = int(round(cx - w / 2)), int(round(cy - h / 2))
        frame[y:y + h, x:x + w] = cv2.resize(target, (w, h), interpolation=cv2.INTER_LINEAR)
        if i in occlusion:
            # the bar sweeps across the target, hiding about half of it at its widest
            bx = x - 35 + int((i - occlusion.start) / len(occlusion) * w)
            x0, x1 = max(0, bx), min(width, bx + 35)
            y0 = max(0, y - 20)
            frame[y0:y0 + 200, x0:x1] = bar[:min(200, height - y0), :x1 - x0]
        yield frame.astype(np.uint8), (x, y, w, h)
