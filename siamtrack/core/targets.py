"""Targets: the state of every tracked target, one entry each in the order of `ids`, held in one
structure that grows (`+`) and shrinks (`keep`) as a whole, so that no field can fall out of step."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, fields

import numpy as np
import torch

from ..config import LOST_CUES


@dataclass(frozen=True)
class Answers:
    """Every tracked target's answers after the last call, in the order of `ids`, whatever init was given."""
    ids: np.ndarray  # N int64
    boxes: np.ndarray  # N x 4: x, y, w, h, 0-based px
    scores: np.ndarray  # N: the peak response of the last update (NaN before the first)
    lost: np.ndarray  # N bool: the last update judged the target lost (False before the first)


@dataclass
class ScoreHistory:
    """Some targets' scores this update beside their own earlier ones: what `lost` is judged against."""
    score: np.ndarray  # this update's peaks
    reference: np.ndarray  # the first update's (this one's, at the first)
    recent: list  # each target's deque of its recent scores of updates not judged lost
    previous: np.ndarray  # the last update's peaks (NaN at the first)
    was_lost: np.ndarray  # whether the last update judged each lost (False at the first)

    def keep(self, kept: np.ndarray) -> ScoreHistory:
        """The targets where the boolean mask `kept` is true."""
        return ScoreHistory(**{f.name: _take(getattr(self, f.name), kept) for f in fields(self)})

    def dropped(self, factor: float) -> np.ndarray:
        """Whether each peak fell abruptly: under `factor` x the last update's (never at the first)."""
        return self.score < factor * self.previous

    def below_recent(self, factor: float) -> np.ndarray:
        """Whether each peak is under `factor` x its recent median: still down (never with no history yet)."""
        return self.score < factor * self.recent_median()

    def recent_median(self) -> np.ndarray:
        """Each target's median recent score (NaN with none yet)."""
        return np.array([np.median(scores) if scores else np.nan for scores in self.recent])


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
    # the long-term state (track.verifier, track.redetect)
    confident_center: np.ndarray  # N x 2: the centre after the last update not judged lost (init's before any)
    confident_scale: np.ndarray  # N: the scale then
    confident_size: np.ndarray  # N x 2: its base_size then
    confident_warp_box: np.ndarray  # N x 3: its warp_box then
    confident_warp: np.ndarray  # N x 2 int: its warp then
    lost_frames: np.ndarray  # N int: updates judged lost in a row, up to the last (0: tracked)
    # N bool: lost, the peak fell under track.redetect.hold_drop x the one before since, and has stayed under
    # track.redetect.hold_stay x the recent tracked ones' median
    abrupt: np.ndarray
    colour_model: np.ndarray  # N x bins^3: the colour histogram of the first box
    cues: np.ndarray  # N x len(LOST_CUES): the last update's cues (NaN before it, and with the rule)

    @classmethod
    def start(cls, target_id: int, center: np.ndarray, size: np.ndarray, search_side: float, border: np.ndarray,
              kernels: tuple[torch.Tensor, ...], scale_filter, window: int, colours: np.ndarray,
              warp: np.ndarray) -> Targets:
        """One target at its first box: tracked, with no score yet, at the warp `warp` of its bank, unturned."""
        unturned = np.array([[0.0, 0.0, size[0] / size[1]]])  # warp_box: no turn, no stretch, the box's w / h
        return cls(ids=np.array([target_id], dtype=np.int64), center=center[None], base_size=size[None],
                   base_search=np.array([search_side]), scale=np.ones(1), border=border[None],
                   reference_score=np.full(1, np.nan), score=np.full(1, np.nan), lost=np.zeros(1, dtype=bool),
                   recent_scores=[deque(maxlen=window)], kernels=kernels, scale_filter=[scale_filter],
                   warp=warp[None].copy(), warp_box=unturned,
                   confident_center=center[None].copy(), confident_scale=np.ones(1),
                   confident_size=size[None].copy(), confident_warp_box=unturned.copy(),
                   confident_warp=warp[None].copy(),
                   lost_frames=np.zeros(1, dtype=np.int64), abrupt=np.zeros(1, dtype=bool),
                   colour_model=colours[None],
                   cues=np.full((1, len(LOST_CUES)), np.nan))

    def __len__(self) -> int:
        return len(self.ids)

    def __add__(self, other: Targets) -> Targets:
        return Targets(**{f.name: _join(getattr(self, f.name), getattr(other, f.name)) for f in fields(self)})

    def keep(self, kept: np.ndarray) -> Targets:
        """The targets where the boolean mask `kept` is true."""
        return Targets(**{f.name: _take(getattr(self, f.name), kept) for f in fields(self)})

    def kernels_of(self, rows: np.ndarray) -> tuple[torch.Tensor, ...]:
        """The targets `rows`' exemplar kernels, level by level, laid out as `kernels`."""
        picked = torch.from_numpy(rows)
        return tuple(level.view(len(self), -1, *level.shape[1:])[picked.to(level.device)].flatten(0, 1)
                     for level in self.kernels)

    def history(self, rows: np.ndarray, score: np.ndarray) -> ScoreHistory:
        """The targets `rows`' scores this update beside their own earlier ones."""
        return ScoreHistory(score, self._reference(rows, score), [self.recent_scores[i] for i in rows],
                            self.score[rows], self.lost[rows])

    def _reference(self, rows: np.ndarray, score: np.ndarray) -> np.ndarray:
        """The targets `rows`' first update's scores: this update's where it is their first."""
        return np.where(np.isnan(self.reference_score[rows]), score, self.reference_score[rows])

    def judged(self, rows: np.ndarray, score: np.ndarray, lost: np.ndarray, cues: np.ndarray | None,
               dropped: np.ndarray | bool = False, down: np.ndarray | bool = True) -> None:
        """Keep the targets `rows`' scores, lost flags (and cues) of this update, and whether the peak `dropped`
        abruptly in a loss and is still `down`: a loss whose peak comes back up was a dip, not an abrupt loss. A
        lost target's score stays out of its history, which remains the tracked target's."""
        self.abrupt[rows] = lost & (self.abrupt[rows] | dropped) & down
        self.score[rows] = score
        self.reference_score[rows] = self._reference(rows, score)
        self.lost[rows] = lost
        self.lost_frames[rows] = np.where(lost, self.lost_frames[rows] + 1, 0)
        if cues is not None:
            self.cues[rows] = cues
        for i, kept, gone in zip(rows, score, lost):
            if not gone:
                self.recent_scores[i].append(kept)

    def hold(self, rows: np.ndarray) -> None:
        """Put the targets `rows` back at their last confident boxes, turned as they were then: the updates that
        judged them lost may have turned them to fit whatever was there."""
        self.center[rows], self.scale[rows] = self.confident_center[rows], self.confident_scale[rows]
        self.base_size[rows], self.warp_box[rows] = self.confident_size[rows], self.confident_warp_box[rows]
        self.warp[rows] = self.confident_warp[rows]

    def remember_confident(self) -> None:
        """The boxes of the targets not lost, as the ones to hold them at once they are."""
        found = ~self.lost
        self.confident_center[found], self.confident_scale[found] = self.center[found], self.scale[found]
        self.confident_size[found], self.confident_warp_box[found] = self.base_size[found], self.warp_box[found]
        self.confident_warp[found] = self.warp[found]


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


def boxes_of(s: Targets) -> np.ndarray:
    """The targets' N x 4 boxes."""
    size = s.base_size * s.scale[:, None]
    return np.concatenate([s.center - size / 2, size], axis=1)
