"""`siamtrack bench`: time each model per stage beside OpenCV's trackers, or many targets at once."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .options import DEFAULT_THREADS, add_tracker_args, positive_int, say, whole_number

ABSENT_FRAMES = 30  # the default stretch without the target: frames in the lost state are timed apart


def add_parser(sub) -> None:
    from ..baselines import OPENCV_TRACKERS
    bench = sub.add_parser("bench", help="time each model per stage beside OpenCV's trackers "
                                         f"({', '.join(OPENCV_TRACKERS)}) on the same clip")
    add_tracker_args(bench, several=True, threads_help="CPU threads for torch, ONNX Runtime and OpenCV "
                                                       f"(default: {DEFAULT_THREADS}, as run uses)")
    bench.add_argument("--frames", type=whole_number(2),
                       help="frames to time, at least 2 (default: the demo's 150 for the synthetic 640x360 "
                            "clip, all of a --sequence)")
    bench.add_argument("--sequence", metavar="DIR", help="time on a real sequence folder (OTB, VOT or GOT-10k "
                                                         "layout, first box given) instead of the synthetic clip")
    bench.add_argument("--absent", type=whole_number(0), default=ABSENT_FRAMES, metavar="N",
                       help="frames of another scene (the target gone) after the first third, so that frames in "
                            f"the lost state are timed too (default: {ABSENT_FRAMES}; 0: none)")
    bench.add_argument("--targets", type=positive_int, nargs="+", metavar="N",
                       help="time N targets at once: one batched tracker, N separate trackers and N CSRTs "
                            "(default model unless --config)")
    bench.add_argument("--json", metavar="FILE", help="also write the figures to this JSON file")
    bench.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from ..baselines import MISSING_TRACKERS
    from ..bench import bench_clip, format_report, format_targets_report, run_bench, run_targets_bench
    from ..spec import TrackerSpec
    shared = TrackerSpec(weights=args.weights, overrides=tuple(args.overrides), device=args.device)
    clip = bench_clip(args.frames, args.sequence, args.absent)
    if args.targets:
        report = run_targets_bench(args.targets, args.config, args.backend, shared, clip).to_dict()
        print(format_targets_report(report))
    else:
        timed = run_bench(args.config, args.backend, shared, clip)
        report = timed.to_dict()
        print(format_report(report))
        for model, note in timed.slow_notes():
            say(f"{model}: {note}")
    if MISSING_TRACKERS:
        print(f"not timed: {', '.join(MISSING_TRACKERS)} "
              "(this OpenCV build lacks them; opencv-contrib-python has them)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0
