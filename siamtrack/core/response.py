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


class ResponseGrid:
    """What every tracker of one model reads its response maps with: the bicubic upsampling matrices, the scale
    penalties and the cosine window, constants of the config and of the maps' size (the model builds it once)."""

    def __init__(self, track: TrackConfig, response_size: int, device: torch.device):
        self.track = track
        self.response_size = response_size
        self.upscale_size = track.response_up * response_size
        self.device = device
        self.rows = bicubic_matrix(response_size, self.upscale_size).to(device)
        self.cols = self.rows.T.contiguous()
        offsets = np.arange(track.scale_num) - (track.scale_num - 1) / 2
        self.scale_penalties = torch.tensor(np.where(offsets == 0, 1.0, track.scale_penalty), dtype=torch.float32,
                                            device=device)
        hann = np.hanning(self.upscale_size)
        window = np.outer(hann, hann)
        self.window = torch.tensor(window / window.sum(), dtype=torch.float32, device=device)
        self.window_term = track.window_influence * self.window


class BicubicUpsampler:
    """Bicubic upsampling of `count` response maps as two matrix products into reused buffers.

    The same numbers as F.interpolate (to float rounding), in a tenth of its time on a CPU.
    """

    def __init__(self, rows: torch.Tensor, cols: torch.Tensor, count: int):
        """`rows`: bicubic_matrix(size_in, size_out); `cols` its transpose, contiguous."""
        self._rows, self._cols = rows, cols
        size_out, size_in = rows.shape
        self._half = torch.empty((count, size_out, size_in), device=rows.device)
        self._out = torch.empty((count, size_out, size_out), device=rows.device)

    def __call__(self, responses: torch.Tensor) -> torch.Tensor:
        """N x 1 x r x r responses -> the N x R x R upsampled maps (a buffer, overwritten by the next call)."""
        torch.matmul(self._rows, responses[:, 0], out=self._half)
        return torch.matmul(self._half, self._cols, out=self._out)


class PeakFinder:
    """Per target, from the response maps of its scales: the best scale (penalised), the window-weighted peak's
    index in its upsampled map, and the raw peak (the score). One tracker's, over its model's grid."""

    def __init__(self, grid: ResponseGrid):
        self.grid = grid
        self._upsampler: BicubicUpsampler | None = None  # sized by resize, when targets come
        self._sized_for = 0  # the targets the buffers hold

    @property
    def upscale_size(self) -> int:
        return self.grid.upscale_size

    def resize(self, targets: int) -> None:
        """Buffers for `targets` targets (one response map per scale each)."""
        self._upsampler = BicubicUpsampler(self.grid.rows, self.grid.cols, max(targets, 1) * self.grid.track.scale_num)
        self._sized_for = targets

    def __call__(self, responses: torch.Tensor, targets: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        g, t = self.grid, self.grid.track
        if targets != self._sized_for:  # some targets lost (searched for in tiles instead) or found again
            self.resize(targets)
        up = self._upsampler(responses).view(targets, t.scale_num, g.upscale_size, g.upscale_size)
        peaks = torch.amax(up, dim=(2, 3))
        scale_id = torch.argmax(peaks * g.scale_penalties, dim=1)
        rows = torch.arange(targets, device=g.device)
        best = up[rows, scale_id]
        best -= best.amin(dim=(1, 2), keepdim=True)
        best /= best.sum(dim=(1, 2), keepdim=True) + 1e-16
        best.mul_(1 - t.window_influence).add_(g.window_term)
        loc = torch.argmax(best.view(targets, -1), dim=1)
        # one transfer for all three (exact in float32: map indices stay far below 2 ** 24)
        found = torch.stack([scale_id.float(), loc.float(), peaks[rows, scale_id]]).cpu().numpy()
        return found[0].astype(np.int64), found[1].astype(np.int64), found[2].astype(np.float64)

    def displacement(self, loc: np.ndarray, total_stride: int) -> np.ndarray:
        """Each peak's offset from the map's centre, in search-crop pixels."""
        size = self.grid.upscale_size
        return (np.stack([loc % size, loc // size], axis=1) - (size - 1) / 2) * total_stride / self.grid.track.response_up
