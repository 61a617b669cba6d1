"""Fused responses (`model.fusion`, `track.fusion_weight`, `track.fusion_adaptive`): a second, shallower
level of features beside the trunk's, each correlated with its own exemplar kernels, their responses
combined into one map a frame.

Deep features hold on through appearance change; shallow ones localise finely. Each target's two responses
are normalised by their maximum over its scale pyramid and mixed as a * deep + (1 - a) * shallow, the result
in the deep response's units (so that the score keeps its scale, and a = 1 gives the deep map exactly).
`a` is `track.fusion_weight`, fixed, or with `track.fusion_adaptive` moved each frame and target towards the
level whose response is sharper: a = w * s_deep / (w * s_deep + (1 - w) * s_shallow), s the sharpness of that
level's responses over the target's pyramid (`sharpness`), so that a = w where both are as sharp; never under
`track.fusion_floor`, so that a sharp shallow response cannot take the deep level's say away whole.
"""
from __future__ import annotations

import torch

from ..config import TrackConfig
from ..models.levels import Levels


def sharpness(responses: torch.Tensor) -> torch.Tensor:
    """Per target (N x S x r x r: its pyramid's maps), how far the peak stands above the map's mean, the
    map's minimum as zero: (max - min) / (mean - min), 1 for a flat map and larger for a sharper one."""
    flat = responses.flatten(1)
    low = flat.amin(dim=1)
    return (flat.amax(dim=1) - low) / (flat.mean(dim=1) - low).clamp_min(torch.finfo(flat.dtype).tiny)


class ResponseFusion:
    """Each target's response maps from its levels' (N * S x 1 x r x r each, target by target): the one level's,
    or the deep and the shallow level's fused into one."""

    def __init__(self, track: TrackConfig, maps_per_target: int | None = None):
        self.weight = track.fusion_weight
        self.adaptive = track.fusion_adaptive
        self.floor = track.fusion_floor
        self.scales = maps_per_target or track.scale_num  # a target's maps: its pyramid's (or a lost one's tiles)

    def deep_share(self, deep: torch.Tensor, shallow: torch.Tensor) -> torch.Tensor:
        """Each target's weight of its deep response (N), from the N x S x r x r maps."""
        if not self.adaptive:
            return deep.new_full((len(deep),), self.weight)
        deep_part, shallow_part = self.weight * sharpness(deep), (1 - self.weight) * sharpness(shallow)
        return (deep_part / (deep_part + shallow_part)).clamp_min(self.floor)

    def __call__(self, responses: Levels) -> torch.Tensor:
        if len(responses) == 1:
            return responses[0]
        deep, shallow = responses
        shape = deep.shape
        deep, shallow = (r.view(-1, self.scales, *shape[-2:]) for r in (deep, shallow))
        a = self.deep_share(deep, shallow)
        # each level over its maximum on the target's pyramid; the mix put back in the deep level's units
        tiny = torch.finfo(deep.dtype).tiny
        units = deep.amax(dim=(1, 2, 3)) / shallow.amax(dim=(1, 2, 3)).clamp_min(tiny)
        fused = deep * a[:, None, None, None] + shallow * ((1 - a) * units)[:, None, None, None]
        return fused.view(shape)
