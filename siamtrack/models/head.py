"""Cross-correlation head: slide the exemplar embedding over the search embedding."""
import torch
import torch.nn.functional as F
from torch import nn


def correlate_one(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """F.conv2d(x, z) for a single kernel z (1 x C x h x w): N x 1 x H' x W'.

    On a CPU a convolution with one output channel misses the fast kernels; a depthwise convolution
    (each channel of z its own kernel) summed over the channels gives the same map about five times
    faster at the tracker's sizes (C 40-256, 6x6 or 8x8 against 3 x 22x22 or 32x32).
    """
    c = z.shape[1]
    return F.conv2d(x, z.reshape(c, 1, z.shape[2], z.shape[3]), groups=c).sum(dim=1, keepdim=True)


class XCorr(nn.Module):
    """Response = out_scale * (z ⋆ x), one grouped convolution for the whole batch.

    A single exemplar (batch 1) is correlated with every search crop (the tracker's scales);
    otherwise exemplar i is correlated with search crop i (training pairs).
    `normalized` makes the score a cosine-like similarity: the exemplar is zero-mean/unit-norm and
    each search window is divided by its own norm, which is robust to contrast changes.
    """

    def __init__(self, out_scale: float = 0.001, normalized: bool = False):
        super().__init__()
        self.out_scale = out_scale
        self.normalized = normalized

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.normalized:
            z = z - z.mean(dim=(1, 2, 3), keepdim=True)
            z = z / z.flatten(1).norm(dim=1).clamp_min(1e-6)[:, None, None, None]
        nz, c, hz, wz = z.shape
        nx = x.shape[0]
        if nz == 1 and x.device.type == "cpu":  # timed on CPUs only: a GPU keeps cuDNN's convolution
            out = correlate_one(x, z)
        elif nz == 1:
            out = F.conv2d(x, z)
        else:
            out = F.conv2d(x.reshape(1, nx * c, x.shape[2], x.shape[3]), z, groups=nz)
            out = out.reshape(nx, 1, out.shape[2], out.shape[3])
        if self.normalized:
            ones = x.new_ones(1, c, hz, wz)
            window_energy = F.conv2d(x * x, ones).clamp_min(1e-6).sqrt()
            out = out / window_energy
        return out * self.out_scale
