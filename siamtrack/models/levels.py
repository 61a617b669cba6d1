"""The network as the tracker runs it: levels of features, each with its own exemplar kernels and its own
cross-correlation, so that every branch answers a tuple of levels and the head one response per level.

- one level: the trunk's output (`single_level`);
- two (`model.fusion: blocks`): beside it, the trunk's own output after its first blocks, taken in the
  same pass, average-pooled to the output's stride where it is finer (`trunk_levels`).

`tracking_net(net, cfg.model)` picks the one the config names.
"""
from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from ..errors import ConfigError
from .head import XCorr
from .siamese import Embedding, SiameseNet, centre_crop

Levels = tuple[torch.Tensor, ...]


class OneLevel(nn.Module):
    """An embedding's output as a tuple of one level."""

    def __init__(self, embedding: nn.Module):
        super().__init__()
        self.embedding = embedding

    def forward(self, x: torch.Tensor) -> Levels:
        return (self.embedding(x),)


class TrunkLevels(nn.Module):
    """An embedding whose trunk also hands out its output after its first `blocks` blocks: (output, level),
    the level average-pooled by `pool` (1: as it is) so that both have the output's stride."""

    def __init__(self, embedding: Embedding, blocks: int, pool: int = 1):
        super().__init__()
        self.embedding = embedding
        self.blocks = blocks
        # rounding up, as the trunk's padded strided convolutions do: the pooled level has the output's size
        self.pool = nn.AvgPool2d(pool, ceil_mode=True) if pool > 1 else nn.Identity()

    def forward(self, x: torch.Tensor) -> Levels:
        out, level = self.embedding.backbone.forward_with_level(x, self.blocks)
        return self.embedding.adjust(out), self.pool(level)


class LevelHeads(nn.Module):
    """One cross-correlation head per level: each level's kernels against its own features."""

    def __init__(self, heads: list[XCorr]):
        super().__init__()
        self.heads = nn.ModuleList(heads)

    def forward(self, kernels: Levels, features: Levels) -> Levels:
        return tuple(head(k, f) for head, k, f in zip(self.heads, kernels, features))


class LevelNet(nn.Module):
    """Embeds exemplar and search crops as levels of features and correlates each level with its own kernels."""

    def __init__(self, embed_x: nn.Module, embed_z: nn.Module | None, heads: list[XCorr], exemplar_crop: int,
                 total_stride: int):
        super().__init__()
        self.embed_x = embed_x
        self.embed_z = embed_z  # None: the exemplar goes through embed_x (shared weights)
        self.head = LevelHeads(heads)
        self.exemplar_crop = exemplar_crop
        self.total_stride = total_stride

    @property
    def levels(self) -> int:
        return len(self.head.heads)

    def embed_exemplar(self, z: torch.Tensor) -> Levels:
        levels = (self.embed_x if self.embed_z is None else self.embed_z)(z)
        return tuple(centre_crop(f, self.exemplar_crop) for f in levels)

    def embed_search(self, x: torch.Tensor) -> Levels:
        return self.embed_x(x)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> Levels:
        return self.head(self.embed_exemplar(z), self.embed_search(x))


def single_level(net: SiameseNet) -> LevelNet:
    """`net`'s own output as the one level."""
    embed_z = None if net.embed_z is None else OneLevel(net.embed_z)
    return LevelNet(OneLevel(net.embed_x), embed_z, [net.head], net.exemplar_crop, net.total_stride)


def trunk_levels(net: SiameseNet, blocks: int) -> LevelNet:
    """`net` with its trunk's output after `blocks` blocks as a second level (its kernel cropped alike),
    pooled to the output's stride where it is finer."""
    trunk = net.embed_x.backbone
    if not hasattr(trunk, "forward_with_level"):
        raise ConfigError(f"model.fusion 'blocks' needs a Lite0 trunk, not {type(trunk).__name__}")
    if not 0 < blocks < len(trunk.strides_after) - 1:
        raise ConfigError(f"model.fusion_blocks must be between 1 and {len(trunk.strides_after) - 2} for this "
                          f"trunk, got {blocks}")
    pool = trunk.total_stride // trunk.strides_after[blocks]  # Lite0's strides: powers of 2, the output's largest
    embed_z = None if net.embed_z is None else TrunkLevels(net.embed_z, blocks, pool)
    second_head = XCorr(net.head.out_scale, net.head.normalized)
    return LevelNet(TrunkLevels(net.embed_x, blocks, pool), embed_z, [net.head, second_head], net.exemplar_crop,
                    net.total_stride)


def tracking_net(net: SiameseNet, model: ModelConfig) -> LevelNet:
    """`net` with the levels `model.fusion` names: its output alone (none), or with its trunk's own shallower
    output beside it (blocks)."""
    return trunk_levels(net, model.fusion_blocks) if model.fusion == "blocks" else single_level(net)
