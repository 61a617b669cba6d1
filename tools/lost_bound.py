"""What a perfect lost-and-found would score with a model: the ceiling of issue 31's long-term measures that a
lost signal and a search can reach on top of a short-term tracker's boxes.

The tracker runs as configured (its search off), and an oracle that reads the ground truth stands in for its
lost flag and its search, in one of three ways (--oracle):
- flag: the lost flag is exactly the absent frames; the boxes are the tracker's own (a perfect flag alone);
- found: as flag, and the tracker is not updated while its target is absent and is put on the true box when the
  target returns (a perfect search: the tracker then places its box from there, the template unchanged);
- failures: as found, and also each present frame whose box failed (IoU < 0.1) is flagged lost and the
  tracker put back on the true box at the next frame.
It prints the long-term measures (siamtrack.evaluation.longterm) pooled over each folder, beside nothing else:
compare them with `siamtrack eval --dataset longterm` of the same config and folder.

    python tools/lost_bound.py --config siamfc_lite0_fast --oracle found --data runs/lt_val_long
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Iterable

import numpy as np
from tqdm import tqdm

from siamtrack.core.tracker import SiamFCTracker
from siamtrack.datasets import load_sequences, read_frames
from siamtrack.evaluation.longterm import COLUMNS, FAILED_IOU, LongTermCounts, sequence_counts
from siamtrack.evaluation.metrics import overlaps
from siamtrack.process import use_threads

ORACLES = ("flag", "found", "failures")


def put_on(tracker: SiamFCTracker, box: np.ndarray) -> None:
    """Move the (one) target to `box`: its centre there, its scale the one whose box has the same area."""
    s = tracker.targets
    s.center[0] = box[:2] + box[2:] / 2
    s.scale[0] = np.sqrt(np.prod(box[2:]) / np.prod(s.base_size[0]))


def track_with_oracle(tracker: SiamFCTracker, frames: Iterable[np.ndarray], truth: np.ndarray, absent: np.ndarray,
                      oracle: str) -> tuple[np.ndarray, np.ndarray]:
    """Each frame's box and lost flag over a sequence (`truth` N x 4, `absent` N bools), the oracle standing in
    for the tracker's flag (and search)."""
    boxes, lost = np.zeros((len(truth), 4)), absent.copy()
    put_back = False  # the target returns, or (failures) its box failed: the next present frame starts on the truth
    for index, frame in enumerate(frames):
        if index == 0:
            tracker.init(frame, truth[0])
            boxes[0] = truth[0]
            continue
        if absent[index] and oracle != "flag":
            boxes[index], put_back = boxes[index - 1], True
            continue
        if put_back:
            put_on(tracker, truth[index])
        boxes[index] = tracker.update(frame)
        failed = not absent[index] and overlaps(boxes[index], truth[index])[0] < FAILED_IOU
        put_back = oracle == "failures" and failed
        lost[index] |= put_back
    return boxes, lost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="a shipped config name or a YAML path")
    parser.add_argument("--oracle", choices=ORACLES, required=True)
    parser.add_argument("--data", type=Path, nargs="+", required=True,
                        help="long-term folders (tools/make_longterm.py)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    use_threads(1)
    tracker = SiamFCTracker(args.config, device="cpu", overrides=(*args.overrides, "track.redetect.tiles=0"),
                            quiet=True)
    print(f"| folder | {Path(args.config).stem}, oracle {args.oracle} | " + " | ".join(COLUMNS) + " |")
    print("|---|---|" + "---|" * len(COLUMNS))
    for folder in args.data:
        total = LongTermCounts()
        for seq in tqdm(load_sequences(folder, split="test"), desc=folder.name, unit="seq"):
            boxes, lost = track_with_oracle(tracker, read_frames(seq.frames), seq.boxes, seq.absent, args.oracle)
            total = total + sequence_counts(boxes, lost, seq.boxes, seq.absent)
        found = total.scores()
        print(f"| {folder.name} | {args.oracle} | " + " | ".join(f"{found[c]:.3f}" for c in COLUMNS) + " |", flush=True)


if __name__ == "__main__":
    main()
