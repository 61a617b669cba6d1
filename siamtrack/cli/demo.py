"""`siamtrack demo`: track the built-in synthetic clip, no data needed, and write the annotated video."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..run import track_demo
from ..synthetic import make_clip
from ..text import plural
from .options import add_quiet, add_tracker_args, say_if_slow, tracker_spec


def add_parser(sub) -> None:
    demo = sub.add_parser("demo", help="track a built-in synthetic clip and write demo.mp4")
    demo.add_argument("--output", default="demo.mp4", help="write the annotated clip here (default: demo.mp4)")
    demo.add_argument("--source-output", default="demo_source.mp4",
                      help="write the clip itself, without boxes, here: a clean video to try `run` on "
                           "(default: demo_source.mp4)")
    add_quiet(demo)
    add_tracker_args(demo)
    demo.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from got10k.utils.metrics import rect_iou
    clip = make_clip()
    tracker = tracker_spec(args).build(quiet=args.quiet)
    boxes, stats = track_demo(tracker, clip, args.output, args.source_output, progress=not args.quiet)
    iou = rect_iou(boxes[1:], clip.boxes[1:])
    weights = Path(tracker.weights_path).name if tracker.weights_path else "none: untrained"
    print(f"demo: mean IoU {iou.mean():.3f} over {plural(stats.frames, 'frame')} at {stats.fps:.1f} fps "
          f"(model {Path(tracker.cfg.name).stem}, weights {weights}) -> {args.output}, {args.source_output}")
    say_if_slow(stats.fps, tracker.cfg, tracker.device.type, tracker.model.backend.name)
    return 0
