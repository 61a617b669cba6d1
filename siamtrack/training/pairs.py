"""Exemplar/search frame pairs: which frames may be used, and how pairs are drawn from sequences."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..datasets import Sequence
from ..errors import SourceError

FULLY_COVERED = 0  # GOT-10k cover level of a target hidden entirely


def usable_frames(seq: Sequence) -> np.ndarray:
    """Indices of frames with a visible target and a proper box (finite, positive size)."""
    ok = ~seq.absent & np.isfinite(seq.boxes).all(axis=1)
    ok &= (np.nan_to_num(seq.boxes[:, 2:]) > 0).all(axis=1)
    if seq.cover is not None:
        ok &= seq.cover != FULLY_COVERED
    return np.flatnonzero(ok)


@dataclass
class PairSource:
    """One sequence's usable frames that have at least one usable partner within max_gap."""

    seq: Sequence
    frames: np.ndarray

    def partners(self, i: int, max_gap: int) -> np.ndarray:
        gap = np.abs(self.frames - i)
        return self.frames[(gap > 0) & (gap <= max_gap)]


def pair_sources(seqs: list[Sequence], max_gap: int) -> list[PairSource]:
    """The sequences pairs can be drawn from; SourceError if there are none."""
    sources = []
    for seq in seqs:
        usable = usable_frames(seq)
        # usable is sorted: a frame has a partner iff its nearer neighbour is close enough
        near = np.diff(usable) <= max_gap
        has_partner = np.r_[near, False] | np.r_[False, near]
        if has_partner.any():
            sources.append(PairSource(seq, usable[has_partner]))
    if not sources:
        raise SourceError(f"no sequence has two usable frames at most {max_gap} apart "
                          f"(of {len(seqs)} sequences)")
    return sources


def sample_pair(sources: list[PairSource], max_gap: int, rng: np.random.Generator) -> tuple[Sequence, int, int]:
    """A sequence drawn uniformly (so long ones do not dominate), then an exemplar frame, then a search frame."""
    source = sources[rng.integers(len(sources))]
    exemplar = int(rng.choice(source.frames))
    search = int(rng.choice(source.partners(exemplar, max_gap)))
    return source.seq, exemplar, search


def split_validation(seqs: list[Sequence], fraction: float, seed: int) -> tuple[list[Sequence], list[Sequence]]:
    """(train, val): a seeded random `fraction` of whole sequences held out, at least one if fraction > 0."""
    if fraction <= 0 or len(seqs) < 2:
        return list(seqs), []
    count = min(len(seqs) - 1, max(1, round(fraction * len(seqs))))
    held = set(np.random.default_rng(seed).permutation(len(seqs))[:count].tolist())
    return ([s for k, s in enumerate(seqs) if k not in held],
            [s for k, s in enumerate(seqs) if k in held])
