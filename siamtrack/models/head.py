"""Cross-correlation head: slide the exemplar embedding over the search embedding."""
import torch
import torch.nn.functional as F
from torch import nn


def correlate_depthwise(x: torch.Tensor, z: torch.Tensor, groups: int) -> torch.Tensor:
    """F.conv2d(x, z, groups=groups) for z of `groups` kernels (groups x C x h x w), x of groups * C channels:
    B x groups x H' x W'.

    On a CPU a convolution with one output channel per group misses the fast kernels; a depthwise
    convolution (each channel of z its own kernel) summed over each group's channels gives the same
    map about five times faster at the tracker's sizes (C 40-256, 6x6 or 8x8 against 22x22 or 32x32).
    """
    c = z.shape[1]
    out = F.conv2d(x, z.reshape(groups * c, 1, z.shape[2], z.shape[3]), groups=groups * c)
    return out.reshape(x.shape[0], groups, c, out.shape[2], out.shape[3]).sum(dim=2)


class XCorr(nn.Module):
    """Response = out_scale * (z ⋆ x), one grouped convolution for the whole batch.

    Exemplar i is correlated with the i-th run of len(x) / len(z) consecutive search crops: a single
    exemplar with every crop (one target's scales), one exemplar per crop (training pairs), or each
    target's exemplar with its own scales (several targets tracked at once). With more exemplars than
    crops, crop i is correlated with the i-th run of len(z) / len(x) exemplars (a target's exemplars
    at several scales, against its one search crop).
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
        nx, _, hx, wx = x.shape
        if nz > nx:  # several exemplars a crop (a scale pyramid of kernels): crop i meets the i-th run of them
            out = F.conv2d(x.reshape(1, nx * c, hx, wx), z, groups=nx)
        else:
            runs = nx // nz  # search crops per exemplar
            # the crops of a run side by side along the batch, the exemplars' channels stacked: one grouped call
            grouped = x.reshape(nz, runs, c, hx, wx).transpose(0, 1).reshape(runs, nz * c, hx, wx)
            if runs > 1 and x.device.type == "cpu":  # timed on CPUs at the tracker's sizes: a GPU keeps cuDNN's
                out = correlate_depthwise(grouped, z, nz)
            else:
                out = F.conv2d(grouped, z, groups=nz)
            out = out.transpose(0, 1)
        out = out.reshape(max(nx, nz), 1, out.shape[2], out.shape[3])
        if self.normalized:
            ones = x.new_ones(1, c, hz, wz)
            window_energy = F.conv2d(x * x, ones).clamp_min(1e-6).sqrt()
            out = out / window_energy.repeat_interleave(len(out) // nx, dim=0)
        return out * self.out_scale
