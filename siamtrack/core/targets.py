"""Targets: the state of every tracked target, one entry each in the order of `ids`, held in one
structure that grows (`+`) and shrinks (`keep`) as a whole, so that no field can fall out of step."""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch


@dataclass
class Targets:
    ids: np.ndarray  # N int64: each target's id
    center: np.ndarray  # N x 2: x, y of the box centre, px
    base_size: np.ndarray  # N x 2: w, h as given (clamped), px; the box is base_size * scale
    base_search: np.ndarray  # N: the search crop's side at scale 1, px
    scale: np.ndarray  # N: the box's scale against base_size
    border: np.ndarray  # N x 3: the crops' padding colour, the init frame's mean
    reference_score: np.ndarray  # N: the first update's peak score (NaN before it)
    score: np.ndarray  # N: the last update's peak score (NaN before it)
    lost: np.ndarray  # N bool: the last update judged the target lost (False before the first update)
    recent_scores: list  # N: each target's deque of its last track.lost_window scores of updates not judged lost
    # per level of features (one; two with model.fusion), N * B * k x C x h x w: each target's k exemplar kernels
    # at each of the B warps of its bank (B = 1 without track.warps), in target order
    kernels: tuple[torch.Tensor, ...]
    scale_filter: list  # N: each target's DSST filter (track.scale_filter), or None
    warp: np.ndarray  # N x 2 int: each target's current warp, (turn, stretch) in its bank (0, 0 without warps)
    warp_box: np.ndarray  # N x 3: the box's turn (degrees) and log stretch against the first box, its w / h

    def __len__(self) -> int:
        return len(self.ids)

    def __add__(self, other: Targets) -> Targets:
        return Targets(**{f.name: _join(getattr(self, f.name), getattr(other, f.name)) for f in fields(self)})

    def keep(self, kept: np.ndarray) -> Targets:
        """The targets where the boolean mask `kept` is true."""
        return Targets(**{f.name: _take(getattr(self, f.name), kept) for f in fields(self)})


def _join(first, second):
    if isinstance(first, np.ndarray):
        return np.concatenate([first, second])
    if isinstance(first, tuple):  # level by level
        return tuple(torch.cat(pair) for pair in zip(first, second))
    return first + second


def _take(values, kept: np.ndarray):
    if isinstance(values, np.ndarray):
        return values[kept]
    if isinstance(values, tuple):  # level by level, k rows a target
        rows = torch.from_numpy(np.repeat(kept, len(values[0]) // max(len(kept), 1)))
        return tuple(level[rows.to(level.device)] for level in values)
    return [value for value, keep in zip(values, kept) if keep]
