"""`siamtrack run SOURCE`: track objects in a video, a folder of frames, an OTB sequence, a camera or a stream."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..errors import BoxError, SourceError
from ..inputs import check_boxes, clip_to_frame, reaches_past
from ..outputs import BOXES_HEADER
from ..run import is_live, run_options, run_summary, select_boxes, track_source
from ..sources import open_source
from .options import add_quiet, add_tracker_args, say, say_if_slow, tracker_spec

LIVE_RECONNECT_S = 30.0  # how long a lost camera or stream is retried: a Wi-Fi hiccup or a camera's reboot
SMALLEST_BOX_PX = 4  # a box narrower or lower than this is said to be too small to follow (a 1x1 box drifted)


def add_parser(sub) -> None:
    run = sub.add_parser("run", help="track objects in a video, folder of frames, camera or stream")
    run.add_argument("source", help="video file, folder of frames, OTB sequence folder (NAME/img/), camera index "
                                    "(0) or stream URL")
    run.add_argument("--bbox", action="append", default=[], metavar="X,Y,W,H",
                     help="a target in the first frame, in 0-based pixels; repeat it for several targets "
                          "(ids 0, 1, ... in order); without it, an OTB sequence's first ground-truth box, "
                          "or draw them in the window")
    run.add_argument("--output", help="write the annotated video here (.mp4)")
    run.add_argument("--boxes", help=f"write '{BOXES_HEADER}' lines here, one per target and frame")
    run.add_argument("--show", action="store_true", help="show the tracking in a window")
    add_quiet(run)
    run.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for a stream (default 10)")
    run.add_argument("--reconnect", type=float, default=LIVE_RECONNECT_S, metavar="SECONDS",
                     help="cameras and streams: how long to keep reopening one that stops before the run ends "
                          f"(default {LIVE_RECONNECT_S:g}; 0 ends at the first drop); files and folders ignore it")
    add_tracker_args(run)
    run.set_defaults(func=handle)


def attach_bbox_values(argv: list[str]) -> list[str]:
    """`--bbox -5,10,40,40` as `--bbox=-5,10,40,40`: argparse takes a value that starts with '-' for an
    option, and a box partly left of or above the frame starts with one."""
    joined: list[str] = []
    for arg in argv:
        if joined and joined[-1] == "--bbox" and arg.startswith("-"):
            joined[-1] = f"--bbox={arg}"
        else:
            joined.append(arg)
    return joined


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    parts = text.replace(" ", "").split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4:
        raise BoxError(f"--bbox must be four numbers x,y,w,h, got '{text}'")
    return values


def first_boxes(given: np.ndarray, source, first: np.ndarray) -> np.ndarray:
    """The targets to start from: --bbox, else an OTB sequence's ground truth (said), else drawn in a window;
    checked, and cut to the frame where they reach past it (said)."""
    boxes = given
    if not len(boxes) and source.truth_boxes is not None:
        boxes = source.truth_boxes
        say("no --bbox: starting from the sequence's ground truth in its first frame, "
            + " and ".join(",".join(f"{v:g}" for v in box) for box in boxes))
    if not len(boxes):
        boxes = select_boxes(first)
    height, width = first.shape[:2]
    check_boxes(boxes, width, height, None if len(boxes) == 1 else range(len(boxes)))  # ids as the tracker gives
    inside = clip_to_frame(boxes, width, height)
    for index in np.flatnonzero(reaches_past(boxes, width, height)):
        say(f"box {_text(boxes[index])} reaches past the {width}x{height} frame: tracking its part inside, "
            f"{_text(inside[index])}")
    for box in inside[np.any(inside[:, 2:] < SMALLEST_BOX_PX, axis=1)]:
        say(f"box {_text(box)} is under {SMALLEST_BOX_PX} px on a side: too little of a target to follow, "
            "it will likely drift; draw the whole object")
    return inside


def _text(box: np.ndarray) -> str:
    return ",".join(f"{v:g}" for v in box)


def _chain(first, rest):
    yield first
    yield from rest


def handle(args: argparse.Namespace) -> int:
    options = run_options(args.source, args.output, args.boxes, args.show, progress=not args.quiet)
    given = np.array([parse_bbox(text) for text in args.bbox], dtype=np.float64).reshape(-1, 4)
    # the model loads before a live stream opens, as the stream will not wait for it, and after a file
    # or folder opens, so that a bad one or a bad box fails at once
    spec = tracker_spec(args)
    tracker = spec.build(quiet=args.quiet) if is_live(args.source) else None
    source = open_source(args.source, timeout=args.timeout, reconnect=args.reconnect)
    try:
        frames = iter(source)
        first = next(frames, None)
        if first is None:
            raise SourceError(f"{args.source}: no frames could be read")
        boxes = first_boxes(given, source, first)
        tracker = tracker or spec.build(quiet=args.quiet)
        if options.boxes_by_default:
            overwrite = " (it was there: overwriting it)" if Path(options.boxes).exists() else ""
            say(f"no --output, --boxes or --show: writing the boxes to {options.boxes}{overwrite}")
        stats = track_source(source, tracker, _chain(first, frames), boxes, options)
    finally:
        source.close()
    if stats.interrupted:  # Ctrl-C or SIGTERM: still a closing summary, on stderr like every interruption
        say(run_summary(source, stats, options))
        return 130
    print(run_summary(source, stats, options))
    say_if_slow(stats.fps, tracker.cfg, tracker.device.type, tracker.model.backend.name)
    return 0
