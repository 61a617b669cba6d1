"""Square crops around a target, resized with one cv2.warpAffine and padded with the mean colour.

Coordinates are continuous pixels: pixel (i, j) covers [j, j+1) x [i, i+1), so a 0-based box
x, y, w, h has its centre at (x + w/2, y + h/2).
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import torch


def context_size(w: float, h: float, context: float) -> float:
    """SiamFC's exemplar side: the target padded by `context` * (w + h), squared up by area."""
    pad = context * (w + h)
    return math.sqrt((w + pad) * (h + pad))


def crop_matrix(cx: float, cy: float, size: float, out_size: int) -> np.ndarray:
    """The affine map from output pixel index to source pixel index (for WARP_INVERSE_MAP)."""
    k = size / out_size
    return np.array([[k, 0.0, cx - size / 2 + 0.5 * k - 0.5],
                     [0.0, k, cy - size / 2 + 0.5 * k - 0.5]])


def crop_and_resize(image: np.ndarray, cx: float, cy: float, size: float, out_size: int,
                    border: tuple[float, ...], out: np.ndarray | None = None) -> np.ndarray:
    """The square of side `size` centred on (cx, cy), resized to out_size x out_size.

    Parts outside the image take the `border` colour. `out` (out_size x out_size x C) is filled
    in place when given, so the tracker reuses its buffers frame after frame.
    """
    return cv2.warpAffine(image, crop_matrix(cx, cy, size, out_size), (out_size, out_size), dst=out,
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=border)


def context_crop(image: np.ndarray, box, context: float, scale: float, out_size: int,
                 shift=(0.0, 0.0), out: np.ndarray | None = None) -> np.ndarray:
    """SiamFC's crop around a 0-based x, y, w, h box: the context square (context_size) times `scale`,
    centred on the box moved by `shift` output pixels, padded with the image's mean colour. scale 1
    with out_size = exemplar_size is the exemplar; scale search_size / exemplar_size a search region."""
    x, y, w, h = box
    side = context_size(w, h, context) * scale
    cx, cy = np.array([x + w / 2, y + h / 2]) + np.asarray(shift) * side / out_size
    return crop_and_resize(image, cx, cy, side, out_size, cv2.mean(image)[:3], out=out)



class CropBatch:
    """Crop buffers reused frame after frame: cv2 writes uint8 HxWx3 crops into `host`, and
    `upload()` returns them as the float NCHW batch the network takes, on its device."""

    def __init__(self, count: int, size: int, device: torch.device):
        on_gpu = device.type == "cuda"
        # page-locked on a GPU, so that the upload is one asynchronous DMA copy of the uint8 crops
        self._host = torch.empty((count, size, size, 3), dtype=torch.uint8, pin_memory=on_gpu)
        self.host = self._host.numpy()
        self._staged = torch.empty_like(self._host, device=device) if on_gpu else self._host
        self._input = torch.empty((count, 3, size, size), device=device)

    def upload(self) -> torch.Tensor:
        if self._staged is not self._host:
            self._staged.copy_(self._host, non_blocking=True)
        return self._input.copy_(self._staged.permute(0, 3, 1, 2))


def cut_crops(frame: np.ndarray, places, out_size: int, out: np.ndarray) -> None:
    """Fill `out` in order with the square crops of each place: a centre, the sides of its crops there and the
    colour their padding takes."""
    crops = iter(out)
    for center, sides, border in places:
        padding = tuple(float(c) for c in border)
        for side in sides:
            crop_and_resize(frame, *center, side, out_size, padding, out=next(crops))
