"""Training losses on a pair's score grid: balanced logistic (SiamFC), contrastive and triplet.

Every loss sees one grid per pair with one cell per placement of the exemplar on the search crop
(the response map). Cells within `positive_radius` search-crop pixels of the target are positives,
the rest negatives; positives and negatives weigh half each, whatever their counts.
"""
from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from ..config import TrainConfig

EPS = 1e-12  # keeps sqrt differentiable at distance 0


def label_maps(size: int, offsets: torch.Tensor, stride: float, radius: float) -> torch.Tensor:
    """B x size x size, 1.0 where a cell's centre is within `radius` px of the target.

    `offsets` (B x 2, x y) is where the target sits relative to the search-crop centre, in
    search-crop pixels; cell k is centred (k - (size - 1) / 2) * stride pixels from that centre.
    """
    cells = (torch.arange(size, device=offsets.device, dtype=offsets.dtype) - (size - 1) / 2) * stride
    dx = cells[None, None, :] - offsets[:, 0, None, None]
    dy = cells[None, :, None] - offsets[:, 1, None, None]
    return (dx * dx + dy * dy <= radius * radius).to(offsets.dtype)


def balance_weights(labels: torch.Tensor) -> torch.Tensor:
    """Per cell weights: each pair's positives share 1/2, its negatives the other 1/2."""
    flat = labels.flatten(1)
    pos = flat.sum(dim=1, keepdim=True).clamp_min(1)
    neg = (1 - flat).sum(dim=1, keepdim=True).clamp_min(1)
    return (flat / pos + (1 - flat) / neg).view_as(labels) / 2


def logistic_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Balanced binary cross-entropy of raw responses, averaged over the pairs."""
    per_cell = F.binary_cross_entropy_with_logits(scores, labels, reduction="none")
    return (per_cell * balance_weights(labels)).flatten(1).sum(dim=1).mean()


def contrastive_loss(distances: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """Hadsell et al.: d^2 for positives, max(0, margin - d)^2 for negatives, balanced."""
    per_cell = labels * distances ** 2 + (1 - labels) * (margin - distances).clamp_min(0) ** 2
    return (per_cell * balance_weights(labels)).flatten(1).sum(dim=1).mean()


def triplet_loss(distances: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """max(0, d_pos - d_neg + margin) over every (positive, negative) cell pair, mean per pair."""
    d, y = distances.flatten(1), labels.flatten(1)
    hinge = (d[:, :, None] - d[:, None, :] + margin).clamp_min(0)
    valid = y[:, :, None] * (1 - y)[:, None, :]
    return ((hinge * valid).flatten(1).sum(dim=1) / valid.flatten(1).sum(dim=1).clamp_min(1)).mean()


def embedding_distances(fz: torch.Tensor, fx: torch.Tensor) -> torch.Tensor:
    """B x R x R Euclidean distances between the L2-normalised exemplar embedding and each search window."""
    kernel = F.normalize(fz.flatten(1), dim=1)
    windows = F.normalize(F.unfold(fx, fz.shape[-2:]), dim=1)  # B x D x R*R
    cosine = torch.einsum("bd,bdk->bk", kernel, windows)
    size = fx.shape[-1] - fz.shape[-1] + 1
    return (2 - 2 * cosine).clamp_min(0).add(EPS).sqrt().view(-1, size, size)


class PairLoss:
    """train.loss on embeddings (fz, fx) of a batch of pairs and their target offsets."""

    def __init__(self, train: TrainConfig, stride: float, head: nn.Module):
        self.kind = train.loss
        self.stride = stride
        self.radius = train.positive_radius
        self.head = head
        self.on_grid = {"logistic": logistic_loss,
                        "contrastive": partial(contrastive_loss, margin=train.margin),
                        "triplet": partial(triplet_loss, margin=train.margin)}[train.loss]

    def __call__(self, fz: torch.Tensor, fx: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        fz, fx = fz.float(), fx.float()  # losses in full precision under AMP
        if self.kind == "logistic":
            grid = self.head(fz, fx)[:, 0]
        else:
            grid = embedding_distances(fz, fx)
        labels = label_maps(grid.shape[-1], offsets.to(grid), self.stride, self.radius)
        return self.on_grid(grid, labels)
