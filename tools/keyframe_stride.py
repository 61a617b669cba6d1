"""How far Label Studio's straight-line interpolation between keyframes every S frames strays from boxes given
on every frame: the choice of `siamtrack label-studio --keyframe-stride` (docs/annotating.md).

    python tools/keyframe_stride.py ../shared/data/otb_mini --strides 1 2 3 5 8 10 15
    python tools/keyframe_stride.py ../shared/data/otb_mini --track siamfc_lite0_fast

Per sequence, the boxes are its ground truth, or with --track those the model tracks from the first one;
keyframes fall on frames 1, 1 + S, 1 + 2S, ... and on the last, as the backend writes them. The error on a
frame is the largest distance, in pixels, between a corner of the interpolated box and the same corner of
the box given there. Printed per stride: the median, the 90th and 99th percentiles and the share of frames
within 1 and 2 pixels, over every frame of every sequence.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from siamtrack import SiamFCTracker
from siamtrack.inputs import read_rgb


def interpolated(boxes: np.ndarray, stride: int) -> np.ndarray:
    """The boxes Label Studio shows with keyframes every `stride` frames from the first, and on the last."""
    keys = sorted({*range(0, len(boxes), stride), len(boxes) - 1})
    frames = np.arange(len(boxes))
    return np.stack([np.interp(frames, keys, boxes[keys, column]) for column in range(4)], axis=1)


def corner_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    corners = lambda boxes: np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)  # noqa: E731
    return np.abs(corners(a) - corners(b)).max(axis=1)


def sequence_boxes(folder: Path, config: str | None) -> np.ndarray:
    truth = np.loadtxt(folder / "groundtruth_rect.txt", delimiter=",", ndmin=2) - [1, 1, 0, 0]
    if config is None:
        return truth
    frames = sorted((folder / "img").glob("*.jpg"))[:len(truth)]
    tracker = SiamFCTracker(config, device="cpu", quiet=True)
    tracker.init(read_rgb(frames[0]), truth[0][None])
    return np.array([truth[0], *(tracker.update(read_rgb(path))[0] for path in frames[1:])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="a folder of OTB-layout sequences")
    parser.add_argument("--strides", type=int, nargs="+", default=[1, 2, 3, 5, 8, 10, 15])
    parser.add_argument("--track", metavar="CONFIG", help="the boxes a model tracks (default: the ground truth)")
    args = parser.parse_args()
    sequences = sorted(p for p in args.root.iterdir() if (p / "groundtruth_rect.txt").is_file())
    boxes = [sequence_boxes(folder, args.track) for folder in sequences]
    print(f"{len(sequences)} sequences, {sum(map(len, boxes))} frames, {args.track or 'ground truth'}")
    print("stride | median px | p90 px | p99 px | within 1 px | within 2 px")
    for stride in args.strides:
        errors = np.concatenate([corner_error(interpolated(b, stride), b) for b in boxes])
        p50, p90, p99 = np.percentile(errors, [50, 90, 99])
        print(f"{stride} | {p50:.2f} | {p90:.2f} | {p99:.2f} | {np.mean(errors <= 1):.1%} | {np.mean(errors <= 2):.1%}")


if __name__ == "__main__":
    main()
