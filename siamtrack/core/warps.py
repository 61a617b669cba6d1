"""Exemplar warps (`track.warps`): targets that turn in the image plane or change their aspect ratio.

SiamFC's exemplar is cut once, upright, at the first box's aspect ratio, and its search varies scale alone. Here
the first frame's exemplar is also cut turned (every `angle_step` degrees up to `angle_max` each way; the whole
circle at 180) and stretched (width x f, height / f, f a power of `stretch_step` up to `stretch_max`), each
warp embedded once at init: a bank of kernels beside the scaled ones, whose cost each frame is a correlation, not
a backbone pass. Each frame the target's current warp and its neighbours in the bank (one step along each axis in
use) are correlated with the search features; the warp whose response peaks highest, its neighbours' peaks
weighed by `penalty`, gives the frame's response and becomes the current one. The box follows the chosen
stretch (damped by `box_lr`), and with `turn_box` the chosen turn too: the axis-aligned box of an ellipse
inscribed in the first box, turned and stretched.
"""
from __future__ import annotations

import math
from typing import Callable

import cv2
import numpy as np
import torch

from ..config import WarpConfig
from .crops import crop_matrix
from .targets import Targets


def warped_crop(image: np.ndarray, cx: float, cy: float, size: float, out_size: int, border: tuple[float, ...],
                warp: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """crop_and_resize's square around (cx, cy), with the image content mapped by `warp` (2 x 2) about the
    centre: the crop shows the target as `warp` would move it."""
    matrix = crop_matrix(cx, cy, size, out_size)
    inverse = np.linalg.inv(warp)  # an output pixel's offset from the centre, back to the source's
    centre = np.array([cx - 0.5, cy - 0.5])
    matrix[:, :2] = inverse @ matrix[:, :2]
    matrix[:, 2] = centre + inverse @ (matrix[:, 2] - centre)
    return cv2.warpAffine(image, matrix, (out_size, out_size), dst=out, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=border)


def warp_matrix(angle: float, stretch: float) -> np.ndarray:
    """The image-plane map of a target turned by `angle` degrees (counter-clockwise on screen), then stretched
    to width x stretch and height / stretch."""
    a = math.radians(angle)
    turn = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])  # y grows downwards
    return np.diag([stretch, 1 / stretch]) @ turn


def box_factors(angle: np.ndarray, log_stretch: np.ndarray, turn_box: bool, aspect: np.ndarray) -> np.ndarray:
    """N x 2: the box's width and height against the first box's, for boxes turned by `angle` degrees and
    stretched by exp(log_stretch); `aspect` the first boxes' w / h. Without `turn_box` the turn leaves the box."""
    stretch = np.exp(log_stretch)
    if not turn_box:
        return np.stack([stretch, 1 / stretch], axis=1)
    a = np.radians(angle)
    # the ellipse inscribed in a w x h box, turned: its bounding box's half-sides over the first box's
    w, h = np.sqrt(aspect), 1 / np.sqrt(aspect)
    width = np.sqrt((w * np.cos(a)) ** 2 + (h * np.sin(a)) ** 2) / w
    height = np.sqrt((w * np.sin(a)) ** 2 + (h * np.cos(a)) ** 2) / h
    return np.stack([width * stretch, height / stretch], axis=1)


class ExemplarWarps:
    """The bank's layout (the same for every target), the kernels it cuts at init and the choice each frame."""

    def __init__(self, settings: WarpConfig):
        self.settings = s = settings
        self.circle = s.angle_step > 0 and s.angle_max >= 180
        if s.angle_step <= 0:
            self.angles = np.zeros(1)
        elif self.circle:
            self.angles = s.angle_step * np.arange(round(360 / s.angle_step))
        else:
            turns = int(s.angle_max // s.angle_step)
            self.angles = s.angle_step * np.arange(-turns, turns + 1)
        stretches = int(math.log(s.stretch_max) // math.log(s.stretch_step)) if s.stretch_step > 1 else 0
        self.log_stretches = math.log(s.stretch_step) * np.arange(-stretches, stretches + 1) if stretches else np.zeros(1)
        self.start = np.array([int(np.argmin(np.abs(self.angles))), len(self.log_stretches) // 2])  # unwarped
        steps = [(da, ds) for da in ((-1, 0, 1) if len(self.angles) > 1 else (0,))
                 for ds in ((-1, 0, 1) if len(self.log_stretches) > 1 else (0,))]
        self.steps = np.array(steps)  # K x 2: the current warp and its neighbours, as bank steps
        self.weights = np.where((self.steps == 0).all(axis=1), 1.0, s.penalty)

    @staticmethod
    def wanted(settings: WarpConfig) -> bool:
        return settings.angle_step > 0 or settings.stretch_step > 1

    @property
    def size(self) -> int:
        return len(self.angles) * len(self.log_stretches)

    def index(self, position: np.ndarray) -> np.ndarray:
        """Bank index of N x 2 (angle, stretch) positions."""
        return position[..., 0] * len(self.log_stretches) + position[..., 1]

    def crops(self, frame: np.ndarray, center: np.ndarray, sides: list[float], out_size: int, border: tuple,
              out: np.ndarray) -> None:
        """Fill `out` (bank size x len(sides) crops) with the exemplar at each warp of the bank, at each side."""
        for i, (angle, log_stretch) in enumerate((a, ls) for a in self.angles for ls in self.log_stretches):
            warp = warp_matrix(angle, math.exp(log_stretch))
            for j, side in enumerate(sides):
                warped_crop(frame, *center, side, out_size, border, warp, out=out[i * len(sides) + j])

    def respond(self, warp: np.ndarray, kernels: tuple[torch.Tensor, ...],
                correlate: Callable[[tuple], tuple[torch.Tensor, ...]]) -> tuple[tuple[torch.Tensor, ...], np.ndarray]:
        """Each target's maps at the warp of its neighbourhood that peaks highest (weighed), and the position each
        took; `warp` (N x 2) the targets' current warps, `kernels` theirs laid out as Targets.kernels.
        `correlate(kernels)`: maps of those kernels, a tuple whose first (the fused response) chooses the warp;
        each of them comes back at the chosen warp."""
        n = len(warp)
        positions = warp[:, None, :] + self.steps[None]  # N x K x 2
        valid = np.ones(positions.shape[:2], dtype=bool)
        if self.circle:
            positions[..., 0] %= len(self.angles)
        else:
            valid &= (positions[..., 0] >= 0) & (positions[..., 0] < len(self.angles))
        valid &= (positions[..., 1] >= 0) & (positions[..., 1] < len(self.log_stretches))
        rows = torch.from_numpy(self.index(np.where(valid[..., None], positions, warp[:, None, :])))
        answers, peaks = [], []
        for k in range(len(self.steps)):
            picked = tuple(level.view(n, self.size, -1, *level.shape[1:])[torch.arange(n), rows[:, k].to(level.device)]
                           .flatten(0, 1) for level in kernels)
            maps = correlate(picked)
            answers.append([m.view(n, -1, *m.shape[1:]) for m in maps])
            peaks.append(answers[-1][0].flatten(1).amax(dim=1).cpu().numpy())
        weighed = np.where(valid.T, np.stack(peaks) * self.weights[:, None], -np.inf)  # K x N
        chosen = torch.from_numpy(np.argmax(weighed, axis=0))
        picked = tuple(torch.stack([answer[j] for answer in answers])[chosen, torch.arange(n)].flatten(0, 1)
                       for j in range(len(answers[0])))
        return picked, positions[np.arange(n), chosen.numpy()]

    def follow(self, s: Targets, rows: np.ndarray, positions: np.ndarray) -> None:
        """Move each of the targets `rows` to its chosen warp, and its box towards that warp's shape (damped)."""
        lr, turn_box = self.settings.box_lr, self.settings.turn_box
        box = s.warp_box[rows]
        old = box_factors(box[:, 0], box[:, 1], turn_box, box[:, 2])
        turn = (self.angles[positions[:, 0]] - box[:, 0] + 180) % 360 - 180  # the short way round
        stretch = self.log_stretches[positions[:, 1]] - box[:, 1]
        s.warp_box[rows] = box = box + lr * np.stack([turn, stretch, np.zeros(len(box))], axis=1)
        s.base_size[rows] = s.base_size[rows] * box_factors(box[:, 0], box[:, 1], turn_box, box[:, 2]) / old
        s.warp[rows] = positions
