"""SiamFC training crops of one pair, with augmentation, on uint8 with OpenCV; tensors made once at the end.

The exemplar is the tracker's exemplar crop. The search crop is centred on the target, its side
stretched by a random factor and its centre shifted by a random offset, so the target sits off
centre by a known amount: the loss puts its positive labels there.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..config import TrackConfig, TrainConfig
from ..core.crops import context_crop


def to_tensor(crop: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 -> 3xHxW uint8 tensor; the float conversion happens on the training device."""
    return torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1)))


@dataclass
class PairTransform:
    track: TrackConfig
    train: TrainConfig

    def __call__(self, frame_z: np.ndarray, box_z: np.ndarray, frame_x: np.ndarray, box_x: np.ndarray,
                 rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(exemplar 3xExE, search 3xSxS, target offset from the search-crop centre in its pixels, x y)."""
        t = self.track
        z = context_crop(frame_z, box_z, t.context, 1.0, t.exemplar_size)
        stretch = rng.uniform(1 - self.train.stretch, 1 + self.train.stretch)
        shift = rng.uniform(-self.train.translate, self.train.translate, size=2)
        x = context_crop(frame_x, box_x, t.context, stretch * t.search_size / t.exemplar_size, t.search_size, shift)
        z, x = self._colour(z, x, rng)
        return to_tensor(z), to_tensor(x), torch.from_numpy(-shift).float()

    def _colour(self, z: np.ndarray, x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Independent per-channel gains on each crop; sometimes both crops grey."""
        jitter = self.train.color_jitter
        z, x = (cv2.transform(c, np.diag(rng.uniform(1 - jitter, 1 + jitter, size=3))) for c in (z, x))
        if rng.random() < self.train.gray_prob:
            z, x = (cv2.cvtColor(cv2.cvtColor(c, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB) for c in (z, x))
        return z, x
