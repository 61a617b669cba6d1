"""Response maps to positions: bicubic upsampling of each map, the scale penalty, the cosine window and the
peak, for every target at once."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..config import TrackConfig


def bicubic_matrix(size_in: int, size_out: int) -> torch.Tensor:
    """The size_out x size_in matrix of F.interpolate's 1-D bicubic resampling (align_corners=False).

    Bicubic resampling is separable, so a map R resized in 2-D is M @ R @ M.T; the matrix is read
    off by resizing the identity along one axis (the other, kept at its size, is left unchanged).
    """
    eye = torch.eye(size_in)[None, None]
    return F.interpolate(eye, size=(size_out, size_in), mode="bicubic", align_corners=False)[0, 0]


class BicubicUpsampler:
    """Bicubic upsampling of the response maps as two matrix products into reused buffers.

    The same numbers as F.interpolate (to float rounding), in a tenth of its time on a CPU.
    """

    def __init__(self, count: int, size_in: int, size_out: int, device: torch.device):
        self.count = count
        self._rows = bicubic_matrix(size_in, size_out).to(device)
        self._cols = self._rows.T.contiguous()
        self._half = torch.empty((count, size_out, size_in), device=device)
        self._out = torch.empty((count, size_out, size_out), device=device)

    def __call__(self, responses: torch.Tensor) -> torch.Tensor:
        """N x 1 x r x r responses -> the N x R x R upsampled maps (a buffer, overwritten by the next call)."""
        torch.matmul(self._rows, responses[:, 0], out=self._half)
        return torch.matmul(self._half, self._cols, out=self._out)


class PeakFinder:
    """Per target, from the response maps of its scales: the best scale (penalised), the window-weighted peak's
    index in its upsampled map, and the raw peak (the score)."""

    def __init__(self, track: TrackConfig, response_size: int, device: torch.device):
        self.track = track
        self.response_size = response_size
        self.upscale_size = track.response_up * response_size
        self.device = device
        offsets = np.arange(track.scale_num) - (track.scale_num - 1) / 2
        self.scale_penalties = torch.tensor(np.where(offsets == 0, 1.0, track.scale_penalty), dtype=torch.float32,
                                            device=device)
        hann = np.hanning(self.upscale_size)
        window = np.outer(hann, hann)
        self.window = torch.tensor(window / window.sum(), dtype=torch.float32, device=device)
        self._window_term = track.window_influence * self.window
        self.resize(1)

    def resize(self, targets: int) -> None:
        """Buffers for `targets` targets (one response map per scale each)."""
        self._upsampler = BicubicUpsampler(max(targets, 1) * self.track.scale_num, self.response_size,
                                           self.upscale_size, self.device)

    def __call__(self, responses: torch.Tensor, targets: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = self.track
        if self._upsampler.count != targets * t.scale_num:  # some targets lost, searched for elsewhere
            self.resize(targets)
        up = self._upsampler(responses).view(targets, t.scale_num, self.upscale_size, self.upscale_size)
        peaks = torch.amax(up, dim=(2, 3))
        scale_id = torch.argmax(peaks * self.scale_penalties, dim=1)
        rows = torch.arange(targets, device=self.device)
        best = up[rows, scale_id]
        best -= best.amin(dim=(1, 2), keepdim=True)
        best /= best.sum(dim=(1, 2), keepdim=True) + 1e-16
        best.mul_(1 - t.window_influence).add_(self._window_term)
        loc = torch.argmax(best.view(targets, -1), dim=1)
        # one transfer for all three (exact in float32: map indices stay far below 2 ** 24)
        found = torch.stack([scale_id.float(), loc.float(), peaks[rows, scale_id]]).cpu().numpy()
        return found[0].astype(np.int64), found[1].astype(np.int64), found[2].astype(np.float64)

    def displacement(self, loc: np.ndarray, total_stride: int) -> np.ndarray:
        """Each peak's offset from the map's centre, in search-crop pixels."""
        centre = (self.upscale_size - 1) / 2
        return (np.stack([loc % self.upscale_size, loc // self.upscale_size], axis=1) - centre) \
            * total_stride / self.track.response_up
