"""Soak test: track a long synthetic clip, made frame by frame, and watch memory and speed.

    python tools/soak.py --config siamfc_lite0_fast --threads 2

Prints the resident memory (RSS) after init and at the end, and the tracker's fps and mean IoU over
every window of frames (the first and the last among them). Minutes long: not a unit test.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
from got10k.utils.metrics import rect_iou

from siamtrack import SiamFCTracker
from siamtrack.cli.options import add_tracker_args, tracker_spec
from siamtrack.errors import SiamtrackError
from siamtrack.process import use_threads
from siamtrack.synthetic import clip_frames

MIB = 2 ** 20


def rss_mib() -> float:
    """This process's resident memory now, from Linux's /proc."""
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / MIB


def soak(tracker: SiamFCTracker, frames, window: int) -> tuple[float, list[dict]]:
    """RSS after init, and one row per `window` frames: updates, fps, mean IoU, RSS at its end.

    fps counts the tracker's time only; making the frames is left out. Frame 0 is the init frame.
    """
    frames = iter(frames)
    first, box = next(frames)
    tracker.init(first, box)
    after_init, rows = rss_mib(), []
    busy, ious = 0.0, []
    for index, (frame, truth) in enumerate(frames, start=1):
        start = time.perf_counter()
        result = tracker.update(frame)
        busy += time.perf_counter() - start
        ious.append(rect_iou(result[None], np.array([truth], dtype=np.float64))[0])
        if (index + 1) % window == 0:
            rows.append({"frames": f"{index + 1 - window}-{index}", "updates": len(ious), "fps": len(ious) / busy,
                         "mean_iou": float(np.mean(ious)), "rss_mib": rss_mib()})
            busy, ious = 0.0, []
    return after_init, rows


def report(args: argparse.Namespace, after_init: float, rows: list[dict]) -> str:
    first, last = rows[0], rows[-1]
    lines = [f"soak: {args.frames} frames, config {args.config or 'default'}, {torch.get_num_threads()} threads",
             f"RSS: {after_init:.1f} MiB after init, {first['rss_mib']:.1f} MiB after frame {first['frames']}, "
             f"{last['rss_mib']:.1f} MiB at the end ({last['rss_mib'] - after_init:+.1f} MiB)",
             f"fps: {first['fps']:.1f} over frames {first['frames']}, {last['fps']:.1f} over frames {last['frames']}",
             "", "| frames | updates | fps | mean IoU | RSS MiB |", "|---|---|---|---|---|"]
    lines += [f"| {r['frames']} | {r['updates']} | {r['fps']:.1f} | {r['mean_iou']:.3f} | {r['rss_mib']:.1f} |"
              for r in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_tracker_args(parser)
    parser.add_argument("--frames", type=int, default=10_000, help="length of the clip (default 10000)")
    parser.add_argument("--window", type=int, default=1_000, help="frames per reported window (default 1000)")
    args = parser.parse_args()
    if not 0 < args.window <= args.frames:
        parser.error(f"--window must be between 1 and --frames ({args.frames})")
    use_threads(args.threads)
    try:
        tracker = tracker_spec(args).build()
    except SiamtrackError as exc:
        print(f"soak: error: {exc}", file=sys.stderr)
        return 2
    print(report(args, *soak(tracker, clip_frames(args.frames), args.window)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
