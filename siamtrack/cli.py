"""The `siamtrack` command: the only place that parses arguments or prints."""
from __future__ import annotations

import argparse
import os
import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
from tqdm import tqdm

from .config import Config
from .engines import BACKENDS, DEFAULT_BACKEND
from .errors import BoxError, SiamtrackError, SourceError
from .inputs import check_boxes, resolve_device
from .run import BOXES_HEADER, RunOptions, has_display, run_summary, select_boxes, track_demo, track_source
from .sources import open_source
from .spec import TrackerSpec
from .synthetic import make_clip
from .text import plural
from .tracker import SiamFCTracker

# torch's CPU threads: 1 never fell more than 29 % behind the best setting with 0, 1 or 3 other busy
# processes, while 2 collapsed to a sixth of it with one (tools/thread_policy.py; README)
DEFAULT_THREADS = 1
LIVE_RECONNECT_S = 30.0  # how long a lost camera or stream is retried: a Wi-Fi hiccup or a camera's reboot
DEVICE_HELP = "auto, cpu or cuda (default: auto, cuda when available)"
AV_LOG_QUIET = "-8"  # FFmpeg's log level for silence: decoder complaints about a damaged file, line after line


class Parser(argparse.ArgumentParser):
    """argparse with its usage errors in one line, like every other siamtrack error, each pointing to the
    help of the subcommand it was made in."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.commands: dict[str, argparse.ArgumentParser] = {}  # the subcommands' parsers, by name

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_args(self, args=None, namespace=None):
        # argparse reports an option no subcommand knows from the top-level parser, which would point
        # to `siamtrack --help` instead of the subcommand's
        parsed, unknown = self.parse_known_args(args, namespace)
        if unknown:
            self.commands.get(getattr(parsed, "command", None), self).error(
                f"unrecognized arguments: {' '.join(unknown)}")
        return parsed


def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: an int >= minimum, or a one-line usage error."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {minimum}, got '{text}'")
        return value
    return parse


positive_int = whole_number(1)


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


def add_tracker_args(parser: argparse.ArgumentParser, several: bool = False,
                     threads_help: str = f"CPU threads for torch (default: {DEFAULT_THREADS}: it holds up when "
                                         "other processes share the cores; see README, 'Threads on a busy "
                                         "machine')") -> None:
    """The options a TrackerSpec is made of; `several` takes a list of configs and of backends (bench)."""
    many = {"nargs": "+"} if several else {}
    parser.add_argument("--config", **many, help="shipped config name or YAML path (default: "
                                                 + ("every shipped config)" if several else "the default model)"))
    parser.add_argument("--weights", help="checkpoint path (default: the weights the config names)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. track.window_influence=0.2 (repeatable)")
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    parser.add_argument("--backend", choices=BACKENDS, default=[DEFAULT_BACKEND] if several else DEFAULT_BACKEND,
                        **many, help=f"inference backend (default: {DEFAULT_BACKEND}); all but onnxruntime-int8 "
                                     "give the same boxes, the onnxruntime ones need the onnx extra")
    parser.add_argument("--threads", type=positive_int, default=DEFAULT_THREADS, help=threads_help)


def tracker_spec(args: argparse.Namespace) -> TrackerSpec:
    """The TrackerSpec the options of add_tracker_args describe (for one config and backend)."""
    return TrackerSpec(args.config, args.weights, tuple(args.overrides), args.device, args.backend, args.threads)


@contextmanager
def status(what: str, quiet: bool = False):
    """A line on a terminal's stderr while a step of a few seconds runs, cleared when it ends; none in a
    log, where it would stay."""
    with tqdm(total=1, desc=what, bar_format="{desc} {elapsed}", leave=False,
              disable=True if quiet else None) as line:
        yield
        line.update()


def build_saying_so(spec: TrackerSpec, quiet: bool = False) -> SiamFCTracker:
    """spec.build(), saying so: tracing the network, or calibrating the int8 one, takes seconds."""
    with status(f"building the model ({spec.config or 'default config'}, {spec.backend} backend)", quiet):
        return spec.build()


def kept_boxes_path(args: argparse.Namespace) -> str | None:
    """Where a run that would otherwise keep nothing (no --output, --boxes or window) writes its boxes:
    SOURCE's name with .boxes.txt, in the current folder."""
    if args.output or args.boxes or args.show:
        return args.boxes
    return f"{Path(args.source.rstrip('/')).stem or 'siamtrack'}.boxes.txt"


def say_if_slow(fps: float, cfg: Config, device: str, backend: str, label: str = "") -> None:
    """A line on stderr when the fps measured is far below the model's on an idle machine."""
    from .speed import slow_note
    note = slow_note(fps, cfg, device, backend)
    if note:
        print(f"siamtrack: {label + ': ' if label else ''}{note}", file=sys.stderr)


def _chain(first, rest):
    yield first
    yield from rest


def cmd_run(args: argparse.Namespace) -> int:
    live = args.source.isdigit() or "://" in args.source
    if args.show and not has_display():
        raise SourceError("--show needs a display, and none is set (DISPLAY is empty)")
    if live and not (args.output or args.boxes):
        if not has_display():
            raise SourceError(f"{args.source}: live tracking needs a display for its window, "
                              "or --output/--boxes to run headless")
        args.show = True
    given = np.array([parse_bbox(text) for text in args.bbox], dtype=np.float64).reshape(-1, 4)
    # the model loads before a live stream opens, as the stream will not wait for it, and after a file
    # or folder opens, so that a bad one or a bad box fails at once
    spec = tracker_spec(args)
    tracker = build_saying_so(spec, args.quiet) if live else None
    source = open_source(args.source, timeout=args.timeout, reconnect=args.reconnect)
    try:
        frames = iter(source)
        first = next(frames, None)
        if first is None:
            raise SourceError(f"{args.source}: no frames could be read")
        boxes = given if len(given) else select_boxes(first)
        # before the model builds, for a quick answer: ids 0, 1, ... as the tracker will give them
        check_boxes(boxes, first.shape[1], first.shape[0], None if len(boxes) == 1 else range(len(boxes)))
        tracker = tracker or build_saying_so(spec, args.quiet)
        options = RunOptions(args.output, kept_boxes_path(args), args.show, progress=not args.quiet)
        if options.boxes != args.boxes:
            print(f"siamtrack: no --output, --boxes or --show: writing the boxes to {options.boxes}",
                  file=sys.stderr)
        stats = track_source(source, tracker, _chain(first, frames), boxes, options)
    finally:
        source.close()
    if stats.interrupted:  # Ctrl-C or SIGTERM: still a closing summary, on stderr like every interruption
        print(f"siamtrack: {run_summary(source, stats, options)}", file=sys.stderr)
        return 130
    print(run_summary(source, stats, options))
    say_if_slow(stats.fps, tracker.cfg, tracker.device.type, tracker.net.backend)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from got10k.utils.metrics import rect_iou
    clip = make_clip()
    tracker = build_saying_so(tracker_spec(args), args.quiet)
    boxes, stats = track_demo(tracker, clip, args.output, progress=not args.quiet)
    iou = rect_iou(boxes[1:], clip.boxes[1:])
    print(f"demo: mean IoU {iou.mean():.3f} over {plural(stats.frames, 'frame')} at {stats.fps:.1f} fps "
          f"(model {tracker.cfg.name}, weights {tracker.weights_path or 'none: untrained'}) -> {args.output}")
    say_if_slow(stats.fps, tracker.cfg, tracker.device.type, tracker.net.backend)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .training import check_run, launch, run_config, train
    overrides = args.overrides + (["train.freeze_backbone=true"] if args.freeze_backbone else [])
    cfg = run_config(args.out, args.config, overrides, args.resume)
    run = (cfg, args.data, args.out, args.resume, args.device, not args.quiet)
    if args.nproc > 1:
        check_run(cfg, args.data, args.out, args.resume)  # a user's mistake as one line, not N tracebacks
        launch(args.nproc, train, *run)
    else:
        train(*run)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, one report
        out = Path(args.out)
        print(f"trained {plural(cfg.train.epochs, 'epoch')} -> {out / 'last.pt'}, {out / 'best.pt'} "
              f"(lowest validation loss), {out / 'metrics.jsonl'}, {out / 'curves.png'}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluation import evaluate
    from .report import overall_table
    trackers = [name.strip() for name in args.trackers.split(",") if name.strip()]
    summary = evaluate(args.dataset, args.root, trackers, args.out or f"eval_{args.dataset}", tracker_spec(args),
                       workers=args.workers, threads=args.threads or DEFAULT_THREADS * args.workers,
                       resume=args.resume,
                       progress=lambda jobs, total: tqdm(jobs, total=total, unit="seq", disable=args.quiet))
    print(f"{summary.benchmark}, {plural(len(summary.sequences), 'sequence')}:\n{overall_table(summary)}")
    print("wrote " + ", ".join(str(path) for path in summary.files))
    from .config import load_config
    from .registry import resolve_trackers
    for label, spec in resolve_trackers(trackers, tracker_spec(args)).items():
        if spec is not None and spec.weights is None:  # a siamtrack model whose config is known here
            say_if_slow(summary.overall[label]["fps"], load_config(spec.config, spec.overrides),
                        resolve_device(spec.device).type, spec.backend, label)
    return 0


def cmd_vot(args: argparse.Namespace) -> int:
    from .vot import serve
    serve(tracker_spec(args).build())  # stdout carries the protocol: print nothing here
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import json
    from .baselines import MISSING_TRACKERS
    from .config import load_config, shipped_configs
    from .speed import bench_clip, format_report, format_targets_report, run_bench, run_targets_bench
    shared = TrackerSpec(weights=args.weights, overrides=tuple(args.overrides), device=args.device,
                         threads=args.threads)
    clip = bench_clip(args.frames, args.sequence)
    if args.targets:
        report = run_targets_bench(args.targets, args.config, args.backend, shared, clip).to_dict()
        print(format_targets_report(report))
    else:
        report = run_bench(args.config, args.backend, shared, clip).to_dict()
        print(format_report(report))
        configs = {Path(config).stem: config for config in args.config or shipped_configs()}
        for row in report["rows"]:
            if row["tracker"] in configs:
                say_if_slow(row["fps"], load_config(configs[row["tracker"]]), report["device"].split(":")[0],
                            row["backend"], row["tracker"])
    if MISSING_TRACKERS:
        print(f"not timed: {', '.join(MISSING_TRACKERS)} (this OpenCV build lacks them; opencv-contrib-python has them)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .checkpoint import build_net
    from .engines import ONNX_OPSET, export_onnx
    cfg, net, _ = build_net(args.config, args.weights)
    with status(f"exporting {Path(cfg.name).stem} to ONNX"):
        paths = export_onnx(net.eval(), cfg.track, args.out)
    print(f"wrote {', '.join(str(p) for p in paths.values())} (ONNX opset {ONNX_OPSET}, batch norm folded, "
          f"dynamic batch); input: {onnx_input(cfg)}; responses = {cfg.model.out_scale} x "
          "conv2d(features, kernel)" + (" on normalized features" if cfg.model.xcorr == "normalized" else ""))
    return 0


def onnx_input(cfg: Config) -> str:
    """What the exported graphs take: the crops as the tracker hands them over, normalised inside."""
    from .models.backbones import INPUT_NORMS
    crops = (f"float32 NCHW RGB crops with 0-255 pixel values (exemplar Nx3x{cfg.track.exemplar_size}x"
             f"{cfg.track.exemplar_size}, search Nx3x{cfg.track.search_size}x{cfg.track.search_size})")
    if cfg.model.backbone == "alexnet":
        return crops + ", used as they are (AlexNet takes raw pixels)"
    mean, std = (" ".join(f"{v:g}" for v in values) for values in INPUT_NORMS[cfg.model.input_norm])
    return crops + f", normalised inside the graph ((x - [{mean}]) / [{std}])"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="siamtrack", description="SiamFC visual object tracking")
    sub = parser.add_subparsers(dest="command", required=True)
    parser.commands = sub.choices

    run = sub.add_parser("run", help="track objects in a video, folder of frames, camera or stream")
    run.add_argument("source", help="video file, folder of frames, camera index (0) or stream URL")
    run.add_argument("--bbox", action="append", default=[], metavar="X,Y,W,H",
                     help="a target in the first frame, in 0-based pixels; repeat it for several targets "
                          "(ids 0, 1, ... in order); without it, draw them in the window")
    run.add_argument("--output", help="write the annotated video here (.mp4)")
    run.add_argument("--boxes", help=f"write '{BOXES_HEADER}' lines here, one per target and frame")
    run.add_argument("--show", action="store_true", help="show the tracking in a window")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for a stream (default 10)")
    run.add_argument("--reconnect", type=float, default=LIVE_RECONNECT_S, metavar="SECONDS",
                     help="cameras and streams: how long to keep reopening one that stops before the run ends "
                          f"(default {LIVE_RECONNECT_S:g}; 0 ends at the first drop); files and folders ignore it")
    add_tracker_args(run)
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser("demo", help="track a built-in synthetic clip and write demo.mp4")
    demo.add_argument("--output", default="demo.mp4", help="write the annotated clip here (default: demo.mp4)")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    add_tracker_args(demo)
    demo.set_defaults(func=cmd_demo)

    vot = sub.add_parser("vot", help="serve the VOT toolkit over the TraX protocol (started by the toolkit)")
    add_tracker_args(vot)
    vot.set_defaults(func=cmd_vot)

    train = sub.add_parser("train", help="train a model on sequence folders (GOT-10k, OTB or VOT layout)")
    train.add_argument("--config", help="shipped config name or YAML path (default: the default model; "
                                        "a resumed run keeps its own)")
    train.add_argument("--data", nargs="+", required=True, metavar="DIR", help="dataset folders, any layout")
    train.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder: checkpoints, metrics, plot")
    train.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR from its last epoch")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value, e.g. train.epochs=10 (repeatable)")
    train.add_argument("--freeze-backbone", action="store_true", help="train only the layers after the backbone")
    train.add_argument("--nproc", type=positive_int, default=1,
                       help="local processes (DistributedDataParallel; default: 1)")
    train.add_argument("--device", default="auto", help=DEVICE_HELP)
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)

    from .baselines import OPENCV_TRACKERS
    from .datasets import DATASETS
    from .registry import TRACKERS
    evaluate = sub.add_parser("eval", help="score trackers on a benchmark folder (got10k toolkit)")
    evaluate.add_argument("--dataset", required=True, choices=DATASETS,
                          help="the benchmark: its folder layout, box convention and scores")
    evaluate.add_argument("--root", required=True, metavar="DIR", help="the benchmark's folder")
    evaluate.add_argument("--trackers", default="siamtrack",
                          help=f"comma-separated: {', '.join(TRACKERS)}, or shipped config names and YAML paths, "
                               "each a siamtrack model with the weights it names (default: siamtrack)")
    evaluate.add_argument("--out", metavar="DIR", help="results, reports, summary.md, plots (default: eval_DATASET)")
    evaluate.add_argument("--resume", action="store_true", help="keep finished sequences in --out, run the rest")
    evaluate.add_argument("--workers", type=positive_int, default=1,
                          help="processes running sequences in parallel (default: 1)")
    add_tracker_args(evaluate, threads_help=f"CPU threads in all, shared by the workers (default: {DEFAULT_THREADS} "
                                            "per worker)")
    evaluate.set_defaults(threads=None)
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate.set_defaults(func=cmd_eval)

    bench = sub.add_parser("bench", help="time each model per stage beside OpenCV's trackers "
                                         f"({', '.join(OPENCV_TRACKERS)}) on the same clip")
    add_tracker_args(bench, several=True, threads_help="CPU threads for torch, ONNX Runtime and OpenCV "
                                                       f"(default: {DEFAULT_THREADS}, as run uses)")
    bench.add_argument("--frames", type=whole_number(2),
                       help="frames to time, at least 2 (default: the demo's 150 for the synthetic 640x360 "
                            "clip, all of a --sequence)")
    bench.add_argument("--sequence", metavar="DIR", help="time on a real sequence folder (OTB, VOT or GOT-10k "
                                                         "layout, first box given) instead of the synthetic clip")
    bench.add_argument("--targets", type=positive_int, nargs="+", metavar="N",
                       help="time N targets at once: one batched tracker, N separate trackers and N CSRTs "
                            "(default model unless --config)")
    bench.add_argument("--json", metavar="FILE", help="also write the figures to this JSON file")
    bench.set_defaults(func=cmd_bench)

    export = sub.add_parser("export", help="write the exemplar and search branches as ONNX")
    export.add_argument("--format", choices=["onnx"], required=True)
    export.add_argument("--config", help="shipped config name or YAML path (default: the default model)")
    export.add_argument("--weights", help="checkpoint path (default: the weights the config names)")
    export.add_argument("--out", required=True, metavar="DIR", help="folder for exemplar.onnx and search.onnx")
    export.set_defaults(func=cmd_export)
    return parser


@contextmanager
def sigterm_as_ctrl_c():
    """SIGTERM (kill, a service manager, a container stop) handled as Ctrl-C: a run keeps its outputs,
    its video finalised, and exits 130. The caller's handler comes back after."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(attach_bbox_values(sys.argv[1:] if argv is None else argv))
    # this process reports bad input itself, in one line: OpenCV's and FFmpeg's own logs would bury it
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_FATAL)
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", AV_LOG_QUIET)
    try:
        with sigterm_as_ctrl_c():
            return args.func(args)
    except SiamtrackError as exc:
        print(f"siamtrack: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a folder that cannot be made, a disk that is full: the user's to fix
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"siamtrack: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("siamtrack: interrupted", file=sys.stderr)
        return 130
