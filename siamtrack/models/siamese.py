"""SiameseNet: backbone(s) + optional 1x1 adjust + cross-correlation head."""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..config import ModelConfig
from .backbones import build_backbone
from .head import XCorr


class Embedding(nn.Module):
    """A backbone followed by an optional 1x1 conv + BN that adapts its features to tracking."""

    def __init__(self, backbone: nn.Module, adjust: int):
        super().__init__()
        self.backbone = backbone
        self.adjust = nn.Sequential(nn.Conv2d(backbone.out_channels, adjust, 1, bias=False),
                                    nn.BatchNorm2d(adjust)) if adjust else nn.Identity()
        self.out_channels = adjust or backbone.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.adjust(self.backbone(x))


def centre_crop(features: torch.Tensor, size: int) -> torch.Tensor:
    """The centre size x size of an exemplar's feature map (0: all of it): a padded backbone sees the context
    around the exemplar, and its kernel keeps the centre only."""
    if not size or features.shape[-1] <= size:
        return features
    start = (features.shape[-1] - size) // 2
    return features[..., start:start + size, start:start + size]


class SiameseNet(nn.Module):
    """Embeds exemplar z and search x (shared weights or two copies) and correlates them."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.embed_x = Embedding(build_backbone(cfg.backbone, cfg.pretrained, cfg.input_norm), cfg.adjust)
        # pseudo-siamese: the same architecture and initialisation, separate weights for z
        self.embed_z = None if cfg.shared_weights else copy.deepcopy(self.embed_x)
        self.head = XCorr(cfg.out_scale, normalized=cfg.xcorr == "normalized")
        self.exemplar_crop = cfg.exemplar_crop
        self.total_stride = self.embed_x.backbone.total_stride

    def embed_exemplar(self, z: torch.Tensor) -> torch.Tensor:
        return centre_crop((self.embed_x if self.embed_z is None else self.embed_z)(z), self.exemplar_crop)

    def embed_search(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed_x(x)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed_exemplar(z), self.embed_search(x))
