"""The `siamtrack` command: the only place that parses arguments or prints."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from .draw import GREEN, RED, draw_box, draw_caption
from .errors import BoxError, SiamtrackError, SourceError
from .sources import open_source
from .synthetic import make_clip
from .tracker import SiamFCTracker, check_box, track_frames


def has_display() -> bool:
    """Whether a window can open. OpenCV's GUI build aborts the process on imshow without one."""
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    parts = text.replace(" ", "").split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4:
        raise BoxError(f"--bbox must be four numbers x,y,w,h, got '{text}'")
    return values


def add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="shipped config name or YAML path (default: the default model)")
    parser.add_argument("--weights", help="checkpoint path (default: the weights the config names)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. track.window_influence=0.2 (repeatable)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")


def make_tracker(args: argparse.Namespace) -> SiamFCTracker:
    from .config import load_config
    if args.threads:
        torch.set_num_threads(args.threads)
    config = args.config
    if args.overrides:
        config = load_config(args.config, args.overrides)
    return SiamFCTracker(config, args.weights, device=args.device)


def select_box(frame_rgb: np.ndarray) -> tuple[float, float, float, float]:
    if not has_display():
        raise BoxError("no --bbox given and no display to draw one on: pass --bbox x,y,w,h")
    title = "siamtrack: draw the target, then press Enter"
    box = cv2.selectROI(title, cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR), showCrosshair=True)
    cv2.destroyWindow(title)
    if box[2] <= 0 or box[3] <= 0:
        raise BoxError("no box drawn")
    return tuple(float(v) for v in box)


class VideoOutput:
    """An mp4v video writer that keeps the size of the first frame."""

    def __init__(self, path: Path, fps: float, first_bgr: np.ndarray):
        self.size = (first_bgr.shape[1], first_bgr.shape[0])
        self.writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, self.size)
        if not self.writer.isOpened():
            raise SiamtrackError(f"{path}: cannot write a video there")

    def write(self, frame_bgr: np.ndarray) -> None:
        if (frame_bgr.shape[1], frame_bgr.shape[0]) != self.size:
            frame_bgr = cv2.resize(frame_bgr, self.size)
        self.writer.write(frame_bgr)

    def close(self) -> None:
        self.writer.release()


def cmd_run(args: argparse.Namespace) -> int:
    if args.show and not has_display():
        raise SourceError("--show needs a display, and none is set (DISPLAY is empty)")
    box = parse_bbox(args.bbox) if args.bbox else None
    source = open_source(args.source)
    frames = iter(source)
    first = next(frames, None)
    if first is None:
        raise SourceError(f"{args.source}: no frames could be read")
    box = check_box(box or select_box(first), first.shape[1], first.shape[0])
    tracker = make_tracker(args)
    video = boxes_file = None
    count, busy = 0, 0.0
    progress = tqdm(total=source.frame_count, unit="frame", disable=source.is_live or args.quiet)
    try:
        if args.boxes:
            boxes_file = open(args.boxes, "w")
        all_frames = _chain(first, frames)
        for index, frame, result, score, seconds in track_frames(tracker, all_frames, box):
            count, busy = count + 1, busy + seconds
            if boxes_file:
                boxes_file.write(f"{index},{result[0]:.2f},{result[1]:.2f},{result[2]:.2f},{result[3]:.2f},{score:.4f}\n")
                boxes_file.flush()
            if args.output or args.show:
                bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
                draw_box(bgr, result, GREEN, f"{score:.2f}" if index else "init")
                if args.output:
                    video = video or VideoOutput(Path(args.output), source.fps, bgr)
                    video.write(bgr)
                if args.show:
                    cv2.imshow("siamtrack", bgr)
                    if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                        break
            progress.update()
            progress.set_postfix(fps=f"{count / busy:.1f}")
    except KeyboardInterrupt:
        print(f"siamtrack: interrupted after {count} frames; outputs so far are kept", file=sys.stderr)
        return 130
    finally:
        progress.close()
        source.close()
        if video:
            video.close()
        if boxes_file:
            boxes_file.close()
    outputs = ", ".join(p for p in (args.output, args.boxes) if p)
    print(f"tracked {count} frames at {count / busy:.1f} fps" + (f" -> {outputs}" if outputs else ""))
    return 0


def _chain(first, rest):
    yield first
    yield from rest


def cmd_demo(args: argparse.Namespace) -> int:
    from got10k.utils.metrics import rect_iou
    clip = make_clip()
    tracker = make_tracker(args)
    video = None
    predicted, busy = [], 0.0
    try:
        for index, frame, result, score, seconds in track_frames(tracker, clip.frames, clip.boxes[0]):
            predicted.append(result)
            busy += seconds
            bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
            draw_box(bgr, clip.boxes[index], RED, "truth")
            draw_box(bgr, result, GREEN, "siamtrack")
            draw_caption(bgr, f"frame {index}  score {score:.2f}")
            video = video or VideoOutput(Path(args.output), 30.0, bgr)
            video.write(bgr)
    finally:
        if video:
            video.close()
    iou = rect_iou(np.array(predicted[1:]), clip.boxes[1:])
    print(f"demo: mean IoU {iou.mean():.3f} over {len(clip.frames)} frames at {len(clip.frames) / busy:.1f} fps "
          f"(model {tracker.cfg.name}, weights {tracker.weights_path or 'none: untrained'}) -> {args.output}")
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
        print(f"trained {cfg.train.epochs} epochs -> {out / 'last.pt'}, {out / 'best.pt'} "
              f"(lowest validation loss), {out / 'metrics.jsonl'}, {out / 'curves.png'}")
    return 0


def cmd_vot(args: argparse.Namespace) -> int:
    from .vot import serve
    serve(make_tracker(args))  # stdout carries the protocol: print nothing here
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluation import SiamOptions, evaluate
    from .report import overall_table
    trackers = [name.strip() for name in args.trackers.split(",") if name.strip()]
    options = SiamOptions(args.config, args.weights, tuple(args.overrides), args.device)
    summary = evaluate(args.dataset, args.root, trackers, args.out or f"eval_{args.dataset}", options,
                       workers=args.workers, threads=args.threads, resume=args.resume,
                       progress=lambda jobs, total: tqdm(jobs, total=total, unit="seq", disable=args.quiet))
    print(f"{summary.benchmark}, {len(summary.sequences)} sequences:\n{overall_table(summary)}")
    print("wrote " + ", ".join(str(path) for path in summary.files))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="siamtrack", description="SiamFC visual object tracking")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="track one object in a video, folder of frames, camera or stream")
    run.add_argument("source", help="video file, folder of frames, camera index (0) or stream URL")
    run.add_argument("--bbox", help="x,y,w,h of the target in the first frame (0-based pixels)")
    run.add_argument("--output", help="write the annotated video here (.mp4)")
    run.add_argument("--boxes", help="write 'frame,x,y,w,h,score' lines here")
    run.add_argument("--show", action="store_true", help="show the tracking in a window")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    add_model_args(run)
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser("demo", help="track a built-in synthetic clip and write demo.mp4")
    demo.add_argument("--output", default="demo.mp4")
    add_model_args(demo)
    demo.set_defaults(func=cmd_demo)

    vot = sub.add_parser("vot", help="serve the VOT toolkit over the TraX protocol (started by the toolkit)")
    add_model_args(vot)
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
    train.add_argument("--nproc", type=int, default=1, help="local processes (DistributedDataParallel)")
    train.add_argument("--device", default="auto", help="auto, cpu or cuda")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)

    from .benchmarks import DATASETS
    from .evaluation import TRACKERS
    evaluate = sub.add_parser("eval", help="score trackers on a benchmark folder (got10k toolkit)")
    evaluate.add_argument("--dataset", required=True, choices=DATASETS)
    evaluate.add_argument("--root", required=True, metavar="DIR", help="the benchmark's folder")
    evaluate.add_argument("--trackers", default="siamtrack",
                          help=f"comma-separated, from {','.join(TRACKERS)} (default: siamtrack)")
    evaluate.add_argument("--out", metavar="DIR", help="results, reports, summary.md, plots (default: eval_DATASET)")
    evaluate.add_argument("--resume", action="store_true", help="keep finished sequences in --out, run the rest")
    evaluate.add_argument("--workers", type=int, default=1, help="processes running sequences in parallel")
    evaluate.add_argument("--threads", type=int, default=2, help="CPU threads in all, shared by the workers")
    evaluate.add_argument("--config", help="siamtrack: shipped config name or YAML path")
    evaluate.add_argument("--weights", help="siamtrack: checkpoint path (default: the weights the config names)")
    evaluate.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                          help="siamtrack: override a config value (repeatable)")
    evaluate.add_argument("--device", default="auto", help="siamtrack: auto, cpu or cuda")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate.set_defaults(func=cmd_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SiamtrackError as exc:
        print(f"siamtrack: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("siamtrack: interrupted", file=sys.stderr)
        return 130
