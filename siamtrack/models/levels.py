"""Two levels of features from the same crops, for fused responses (`model.fusion`): the deep network's own
beside a shallower level, each level with its own exemplar kernels and its own cross-correlation.

- the trunk's own output after its first blocks, taken in the same pass (`trunk_levels`: no second pass),
  average-pooled to the output's stride where it is finer;
- another network's trunk run on the same crops (`branch_levels`: the fast model's beside the default's).

A TwoLevelNet answers SiameseNet's calls (`embed_exemplar`, `embed_search`, `head`, and `embed_x` /
`embed_z`, which batch-norm folding rewrites) with (deep, shallow) pairs.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from .head import XCorr
from .siamese import Embedding, SiameseNet, centre_crop


class TrunkLevels(nn.Module):
    """An embedding whose trunk also hands out its output after its first `blocks` blocks: (output, level),
    the level average-pooled by `pool` (1: as it is) so that both have the output's stride."""

    def __init__(self, embedding: Embedding, blocks: int, pool: int = 1):
        super().__init__()
        self.embedding = embedding
        self.blocks = blocks
        # rounding up, as the trunk's padded strided convolutions do: the pooled level has the output's size
        self.pool = nn.AvgPool2d(pool, ceil_mode=True) if pool > 1 else nn.Identity()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, level = self.embedding.backbone.forward_with_level(x, self.blocks)
        return self.embedding.adjust(out), self.pool(level)


class BranchLevels(nn.Module):
    """Two embeddings of the same crops: (deep, shallow)."""

    def __init__(self, deep: nn.Module, shallow: nn.Module):
        super().__init__()
        self.deep = deep
        self.shallow = shallow

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.deep(x), self.shallow(x)


class LevelHeads(nn.Module):
    """One cross-correlation head per level: each level's kernels against its own features."""

    def __init__(self, deep: XCorr, shallow: XCorr):
        super().__init__()
        self.deep = deep
        self.shallow = shallow

    def forward(self, kernels: tuple[torch.Tensor, torch.Tensor],
                features: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.deep(kernels[0], features[0]), self.shallow(kernels[1], features[1])


class TwoLevelNet(nn.Module):
    """Embeds exemplar and search crops at two levels and correlates each level with its own kernels."""

    def __init__(self, embed_x: nn.Module, embed_z: nn.Module | None, head: LevelHeads,
                 exemplar_crops: tuple[int, int], total_stride: int):
        super().__init__()
        self.embed_x = embed_x
        self.embed_z = embed_z  # None: the exemplar goes through embed_x (shared weights)
        self.head = head
        self.exemplar_crops = exemplar_crops
        self.total_stride = total_stride

    def embed_exemplar(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        levels = (self.embed_x if self.embed_z is None else self.embed_z)(z)
        return tuple(centre_crop(f, size) for f, size in zip(levels, self.exemplar_crops))

    def embed_search(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.embed_x(x)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.embed_exemplar(z), self.embed_search(x))


def same_head(head: XCorr) -> XCorr:
    return XCorr(head.out_scale, head.normalized)


def trunk_levels(net: SiameseNet, blocks: int) -> TwoLevelNet:
    """`net` with its trunk's output after `blocks` blocks as the shallow level (its kernel cropped alike),
    pooled to the output's stride where it is finer."""
    trunk = net.embed_x.backbone
    if not hasattr(trunk, "forward_with_level"):
        raise ConfigError(f"model.fusion 'blocks' needs a Lite0 trunk, not {type(trunk).__name__}")
    if not 0 < blocks < len(trunk.strides_after) - 1:
        raise ConfigError(f"model.fusion_blocks must be between 1 and {len(trunk.strides_after) - 2} for this "
                          f"trunk, got {blocks}")
    pool = trunk.total_stride // trunk.strides_after[blocks]  # Lite0's strides: powers of 2, the output's largest
    embed_z = None if net.embed_z is None else TrunkLevels(net.embed_z, blocks, pool)
    return TwoLevelNet(TrunkLevels(net.embed_x, blocks, pool), embed_z, LevelHeads(net.head, same_head(net.head)),
                       (net.exemplar_crop, net.exemplar_crop), net.total_stride)


def exemplar_embedding(net: SiameseNet) -> nn.Module:
    return net.embed_x if net.embed_z is None else net.embed_z


def branch_levels(net: SiameseNet, branch: SiameseNet) -> TwoLevelNet:
    """`net` with `branch`'s embedding of the same crops as the shallow level (its own kernel crop and head)."""
    if branch.total_stride != net.total_stride:
        raise ConfigError(f"model.fusion_branch has stride {branch.total_stride}, the model {net.total_stride}; "
                          "the fused levels must share one")
    embed_z = None
    if net.embed_z is not None or branch.embed_z is not None:
        embed_z = BranchLevels(exemplar_embedding(net), exemplar_embedding(branch))
    return TwoLevelNet(BranchLevels(net.embed_x, branch.embed_x), embed_z, LevelHeads(net.head, branch.head),
                       (net.exemplar_crop, branch.exemplar_crop), net.total_stride)
