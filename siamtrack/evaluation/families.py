"""Families of sequences, and the rule that chooses a tracker setting by them rather than by one mean.

A mean over many short clips can hide a loss on one kind of video (small targets that turn, say) when
the clips of that kind are few. So each sequence carries families: hand tags from a data file
(`tools/families.yaml`: OTB's attributes where a source gives them, content such as aerial or people)
and families measured on its ground truth by OTB's and UAV123's definitions (`measured_families`).
A candidate is chosen over the baseline only when no family with enough members loses more than
`max_loss` success AUC on average, and when it wins on more sequences than it loses (`judge`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from ..errors import ConfigError

MIN_MEMBERS = 4  # a family with fewer sequences is shown but not judged on: one clip is not a family
MAX_LOSS = 0.02  # success AUC a family may lose on average against the baseline
TIE = 1e-3  # per-sequence AUC differences within this count as neither a win nor a loss

# measured on the ground truth, with the thresholds of OTB (Wu et al., TPAMI 2015) and UAV123 (ARC)
SCALE_RANGE = 2.0  # SV: the box's side (square root of its area) leaves [1/2, 2] x the first's (OTB's ts = 2)
FAST_PIXELS = 20.0  # FM: the centre moves more than 20 px between two frames
LOW_PIXELS = 400.0  # LR: the first box holds fewer than 400 px
ASPECT_RANGE = 2.0  # ARC: the aspect ratio against the first leaves [1/2, 2]
SMALL_PIXELS = 1000.0  # small: the first box holds fewer than 1,000 px (under the DSST filter's gate)


def measured_families(boxes: np.ndarray) -> set[str]:
    """The families a sequence's 0-based x, y, w, h ground truth shows: SV, FM, LR, ARC, small."""
    boxes = boxes[np.isfinite(boxes).all(axis=1) & (boxes[:, 2:] > 0).all(axis=1)]
    size = np.sqrt(boxes[:, 2] * boxes[:, 3])
    aspect = boxes[:, 2] / boxes[:, 3]
    centres = boxes[:, :2] + boxes[:, 2:] / 2
    found = set()
    if np.any(np.abs(np.log(size / size[0])) > np.log(SCALE_RANGE)):
        found.add("SV")
    if len(boxes) > 1 and np.any(np.hypot(*np.diff(centres, axis=0).T) > FAST_PIXELS):
        found.add("FM")
    if size[0] ** 2 < LOW_PIXELS:
        found.add("LR")
    if np.any(np.abs(np.log(aspect / aspect[0])) > np.log(ASPECT_RANGE)):
        found.add("ARC")
    if size[0] ** 2 < SMALL_PIXELS:
        found.add("small")
    return found


def combined_families(families: set[str]) -> set[str]:
    """Families made of others: IPR+size, an in-plane rotation of a small target, or of one whose size or aspect
    ratio changes (SV, ARC): the kind of sequence on which a choice made by a mean lost outside (issue 33)."""
    return {"IPR+size"} if "IPR" in families and families & {"small", "SV", "ARC"} else set()


def load_tags(path: str | Path) -> dict[str, set[str]]:
    """`folder/sequence` -> its hand-tagged families, from a YAML mapping of folder -> sequence ->
    {families: [...], note: why}."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    tags = {}
    for folder, sequences in data.items():
        for name, entry in (sequences or {}).items():
            if not isinstance(entry, dict) or not isinstance(entry.get("families"), list):
                raise ConfigError(f"{path}: {folder}/{name} needs a 'families' list")
            tags[f"{folder}/{name}"] = set(entry["families"])
    return tags


def members(families_of: list[set[str]], min_members: int = 1) -> dict[str, np.ndarray]:
    """Family -> the indices of its sequences, for families of at least `min_members`, largest first."""
    names = sorted({f for fams in families_of for f in fams})
    index = {f: np.array([i for i, fams in enumerate(families_of) if f in fams]) for f in names}
    return dict(sorted(((f, i) for f, i in index.items() if len(i) >= min_members), key=lambda kv: -len(kv[1])))


@dataclass(frozen=True)
class Verdict:
    chosen: bool
    wins: int
    losses: int
    worst_family: str  # the family whose mean AUC fell most against the baseline ('' when none fell)
    worst_change: float  # its mean AUC difference (0 when none fell)

    def __str__(self) -> str:
        worst = f"worst family {self.worst_family} {self.worst_change:+.3f}" if self.worst_family else "no family lost"
        return f"{'PASS' if self.chosen else 'fail'}: {self.wins} sequences better, {self.losses} worse; {worst}"


def judge(candidate: np.ndarray, baseline: np.ndarray, families: dict[str, np.ndarray],
          max_loss: float = MAX_LOSS, tie: float = TIE) -> Verdict:
    """Whether `candidate` (per-sequence success AUC) may replace `baseline` (the same sequences): no family
    (indices into both) loses more than `max_loss` on average, and more sequences win than lose."""
    diff = np.asarray(candidate) - np.asarray(baseline)
    wins, losses = int((diff > tie).sum()), int((diff < -tie).sum())
    changes = {f: float(diff[i].mean()) for f, i in families.items()}
    worst = min(changes, key=changes.get, default="")
    worst_change = changes[worst] if worst and changes[worst] < 0 else 0.0
    return Verdict(wins > losses and worst_change >= -max_loss, wins, losses,
                   worst if worst_change < 0 else "", worst_change)
