"""Long-term measures: how well a tracker knows when its target is gone, and finds it again.

Read from each frame's box and the tracker's `lost` flag (a frame not flagged is a frame the tracker
reports), against ground truth where absent frames are known (LaSOT's flags, NaN boxes). Frame 0 is the
given box: it is left out of every measure.

VOT-LT's (Lukežič et al., "Performance Evaluation Methodology for Long-Term Visual Object Tracking", 2019;
the VOT toolkit's compute_tpr_curves), at the one threshold a lost flag gives:
- tracking precision: the mean IoU over the frames reported, 0 where the target is absent;
- tracking recall: the IoU summed over the frames reported, over the frames where the target is there;
- both averaged over sequences, and the F-score 2 Pr Re / (Pr + Re) of the averages (a sequence with no
  frame reported has precision 1 and recall 0, as in the toolkit).

Beside them, pooled over every frame of every sequence:
- absent flagged: the share of the frames without the target that are flagged lost;
- tracked flagged: the share of the frames with the target well tracked (IoU >= 0.5) flagged lost;
- failure precision / recall: the lost flag as a classifier of the frames where the target is there and
  the box has failed (IoU < 0.1), as issue 23 measured it;
- recovered: the share of returns (the first frame of the target after an absence) followed, within
  RECOVERY_FRAMES frames and before it is gone again, by a frame reported (not flagged) at IoU >= 0.5;
- IoU after return: the mean IoU of the boxes as given over the frames from each return to the next
  absence (or the end).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .metrics import overlaps

TRACKED_IOU = 0.5  # a box at least this good tracks its target
FAILED_IOU = 0.1  # a box with less overlap than this has lost its target (issue 23)
RECOVERY_FRAMES = 30  # a return is recovered when a frame this close after it is reported at TRACKED_IOU

COLUMNS = ("f_score", "lt_precision", "lt_recall", "absent_flagged", "tracked_flagged", "failure_precision",
           "failure_recall", "recovered", "iou_after_return")


@dataclass
class LongTermCounts:
    """One sequence's tallies (or several sequences' sums), from which every measure is read."""
    precision: float = 0.0  # tracking precision of the sequence (VOT-LT), summed over sequences
    recall: float = 0.0  # tracking recall, summed likewise
    sequences: int = 0
    absent: int = 0  # frames without the target
    absent_flagged: int = 0
    tracked: int = 0  # frames with the target and a box at IoU >= TRACKED_IOU
    tracked_flagged: int = 0
    failed: int = 0  # frames with the target and a box at IoU < FAILED_IOU
    flagged_present: int = 0  # frames with the target, flagged lost
    failed_flagged: int = 0
    returns: int = 0
    recovered: int = 0
    after_return: int = 0  # frames from a return to the next absence
    iou_after_return: float = 0.0  # their IoU, summed

    def __add__(self, other: LongTermCounts) -> LongTermCounts:
        return LongTermCounts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def scores(self) -> dict[str, float]:
        """Every measure of COLUMNS (NaN where it has nothing to be read from)."""
        precision, recall = share(self.precision, self.sequences), share(self.recall, self.sequences)
        return {"f_score": 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0,
                "lt_precision": precision, "lt_recall": recall,
                "absent_flagged": share(self.absent_flagged, self.absent),
                "tracked_flagged": share(self.tracked_flagged, self.tracked),
                "failure_precision": share(self.failed_flagged, self.flagged_present),
                "failure_recall": share(self.failed_flagged, self.failed),
                "recovered": share(self.recovered, self.returns),
                "iou_after_return": share(self.iou_after_return, self.after_return)}


def share(part: float, whole: float) -> float:
    return float(part / whole) if whole else float("nan")


def returns_of(absent: np.ndarray) -> np.ndarray:
    """The frames where the target comes back: present, after an absent frame."""
    return np.flatnonzero(~absent[1:] & absent[:-1]) + 1


def after_return(absent: np.ndarray, back: int) -> tuple[slice, int]:
    """Of the return at frame `back`: the frames it may be recovered in (RECOVERY_FRAMES, before the target is
    gone again), and the frame it is gone again (the sequence's length where it is not)."""
    gone = np.flatnonzero(absent[back:])
    end = back + int(gone[0]) if len(gone) else len(absent)
    return slice(back, min(back + RECOVERY_FRAMES, end)), end


def recovered(iou: np.ndarray, reported: np.ndarray, window: slice) -> bool:
    """Whether a frame of `window` is reported (not flagged lost) at IoU >= TRACKED_IOU."""
    return bool(np.any((iou[window] >= TRACKED_IOU) & reported[window]))


def sequence_counts(boxes: np.ndarray, lost: np.ndarray, truth: np.ndarray, absent: np.ndarray) -> LongTermCounts:
    """One sequence's tallies: boxes and truth N x 4 in one convention (truth NaN where absent is fine),
    lost and absent N bools."""
    boxes, truth = np.asarray(boxes, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    absent = np.asarray(absent, dtype=bool)
    return counts_of(np.where(absent, 0.0, overlaps(boxes, np.where(absent[:, None], 0.0, truth))), lost, absent)


def counts_of(iou: np.ndarray, lost: np.ndarray, absent: np.ndarray) -> LongTermCounts:
    """One sequence's tallies from each frame's IoU (0 where absent), lost and absent flags; frame 0 is the
    given box."""
    lost, absent = np.asarray(lost, dtype=bool), np.asarray(absent, dtype=bool)
    scored = np.arange(len(iou)) > 0  # frame 0 is the given box
    reported, present = scored & ~lost, scored & ~absent
    precision = float(iou[reported].mean()) if reported.any() else 1.0
    recall = float(iou[reported].sum() / present.sum()) if present.any() else 0.0
    flagged = scored & lost
    tracked, failed = present & (iou >= TRACKED_IOU), present & (iou < FAILED_IOU)
    counts = LongTermCounts(precision, recall, 1, int((scored & absent).sum()), int((flagged & absent).sum()),
                            int(tracked.sum()), int((flagged & tracked).sum()), int(failed.sum()),
                            int((flagged & present).sum()), int((flagged & failed).sum()))
    for back in returns_of(absent):
        window, end = after_return(absent, back)
        counts.returns += 1
        counts.recovered += int(recovered(iou, reported, window))
        counts.after_return += end - back
        counts.iou_after_return += float(iou[back:end].sum())
    return counts
