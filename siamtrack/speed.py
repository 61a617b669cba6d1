"""The speed benchmark (`siamtrack bench`): per-stage timings of each model and backend beside OpenCV's
trackers, on the same frames.

A fixed synthetic clip (siamtrack.synthetic) is written once to an mp4 and decoded frame by frame,
so decoding is timed too. Every tracker runs in lockstep on each decoded frame, so all of them meet
the same load on a shared machine: the ratios between them are the robust figures.
"""
from __future__ import annotations

import copy
import math
import os
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from datetime import date
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np
import torch
from tqdm import tqdm

from .baselines import OPENCV_TRACKERS
from .config import DEFAULT_CONFIG, Config, load_config, resolve_weights_path, shipped_configs
from .datasets import load_sequences
from .engines import DEFAULT_BACKEND
from .inputs import read_rgb, resolve_device
from .spec import TrackerSpec
from .synthetic import make_clip
from .text import plural
from .tracker import STAGES as SIAMFC_STAGES, SiamFCTracker

STAGES = ("decode", *SIAMFC_STAGES, "total")  # total: the tracking stages, decode excluded
PERCENTILE = 90
REFERENCE_BASELINE = "csrt"
VIDEO_FPS = 30.0
REFERENCE_BACKEND = "eager"
UNTRAINED = ('weights=""', "model.pretrained=false")  # overrides for a model whose weights file is missing


@dataclass
class Row:
    """One tracker's timings (ms per frame, by stage) and boxes over the clip."""

    tracker: str  # config name or OpenCV tracker
    backend: str  # eager | torch | onnxruntime | opencv
    note: str = ""
    times: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})
    boxes: list[np.ndarray] = field(default_factory=list)

    def stat(self, stage: str) -> dict[str, float] | None:
        values = self.times[stage]
        if not values:
            return None
        return {"median": float(np.median(values)), "p90": float(np.percentile(values, PERCENTILE))}

    @property
    def fps(self) -> float:
        return 1000.0 / float(np.median(self.times["total"]))


class TimedSiamFC:
    """A SiamFCTracker whose own update() is timed stage by stage, through its `timer` hook."""

    def __init__(self, row: Row, tracker: SiamFCTracker):
        self.row, self.tracker = row, tracker
        self.on_gpu = tracker.device.type == "cuda"
        tracker.timer = self.stage

    def now(self) -> float:
        if self.on_gpu:  # a GPU runs asynchronously: let the stage finish before reading the clock
            torch.cuda.synchronize()
        return time.perf_counter()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = self.now()
        yield
        self.row.times[name].append(1000 * (self.now() - start))

    def init(self, rgb: np.ndarray, bgr: np.ndarray, box: np.ndarray) -> None:
        self.tracker.init(rgb, box)

    def update(self, rgb: np.ndarray, bgr: np.ndarray) -> None:
        self.row.boxes.append(self.tracker.update(rgb))
        self.row.times["total"].append(sum(self.row.times[stage][-1] for stage in SIAMFC_STAGES))


class OpenCVTarget:
    """One of OpenCV's trackers on the BGR frames it takes natively."""

    def __init__(self, create: Callable):
        self.create = create

    def init(self, bgr: np.ndarray, box: np.ndarray) -> None:
        self.tracker = self.create()
        self.tracker.init(bgr, tuple(int(round(v)) for v in box))

    def update(self, bgr: np.ndarray) -> np.ndarray:
        ok, rect = self.tracker.update(bgr)
        return np.asarray(rect, dtype=np.float64)


class TimedOpenCV:
    """One of OpenCV's trackers, its update() timed as a whole."""

    def __init__(self, row: Row, create: Callable):
        self.row, self.target = row, OpenCVTarget(create)

    def init(self, rgb: np.ndarray, bgr: np.ndarray, box: np.ndarray) -> None:
        self.target.init(bgr, box)

    def update(self, rgb: np.ndarray, bgr: np.ndarray) -> None:
        start = time.perf_counter()
        box = self.target.update(bgr)
        self.row.times["total"].append(1000 * (time.perf_counter() - start))
        self.row.boxes.append(box)


@dataclass
class BenchClip:
    """The frames every tracker meets, and the target's box in the first."""

    name: str
    frames: list[np.ndarray]
    box: np.ndarray


def bench_clip(frames: int | None = None, sequence: str | Path | None = None) -> BenchClip:
    """The synthetic 640x360 clip (`frames` long, the demo's length by default), or the first `frames`
    frames of a real sequence folder (OTB, VOT or GOT-10k layout): CSRT's cost depends on the target."""
    if sequence is None:
        clip = make_clip() if frames is None else make_clip(num_frames=frames)
        return BenchClip("synthetic", clip.frames, clip.boxes[0])
    seq = load_sequences(sequence)[0]
    return BenchClip(seq.name, [read_rgb(path) for path in seq.frames[:frames]], seq.boxes[0])


def write_clip(path: Path, frames: list[np.ndarray]) -> None:
    """RGB frames to an mp4v video (its frame rate is immaterial: frames are read as fast as they decode)."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), VIDEO_FPS, (width, height))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def decoded(path: Path) -> Iterator[tuple[np.ndarray, np.ndarray, float]]:
    """(RGB frame, BGR frame, ms to read and convert it) for each frame of a video."""
    capture = cv2.VideoCapture(str(path))
    try:
        while True:
            start = time.perf_counter()
            ok, bgr = capture.read()
            if not ok:
                return
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            yield rgb, bgr, 1000 * (time.perf_counter() - start)
    finally:
        capture.release()


def siamfc_tracker(spec: TrackerSpec) -> tuple[SiamFCTracker, str]:
    """The tracker a spec describes; with random weights (and a note) when its weights file is missing."""
    cfg = load_config(spec.config, spec.overrides)
    note = ""
    path = resolve_weights_path(cfg)
    if spec.weights is None and path is not None and not path.is_file():
        spec = replace(spec, overrides=(*spec.overrides, *UNTRAINED))
        note = f"untrained: no {path.name}"
    torch.manual_seed(cfg.train.seed)  # the same random weights on every backend
    return spec.build(), note


@dataclass
class Conditions:
    """What a benchmark ran on: the frames, the machine, and how busy it was."""

    clip: str
    frames: int
    size: tuple[int, int]
    threads: int
    device: str
    load: list[float | None]  # the 1-minute load average as the run started and as it ended

    def to_dict(self) -> dict:
        return {"date": date.today().isoformat(), "clip": self.clip, "frames": self.frames, "size": list(self.size),
                "threads": self.threads, "device": self.device, "load": self.load,
                "torch": torch.__version__, "opencv": cv2.__version__}


@dataclass
class BenchReport:
    rows: list[Row]
    conditions: Conditions

    def row(self, tracker: str, backend: str) -> Row | None:
        return next((r for r in self.rows if r.tracker == tracker and r.backend == backend), None)

    def ratio(self, row: Row, other: Row | None) -> float | None:
        return row.fps / other.fps if other else None

    def box_shift(self, row: Row) -> float | None:
        """Largest box coordinate difference (px) from the eager backend of the same model."""
        eager = self.row(row.tracker, REFERENCE_BACKEND)
        if row.backend == "opencv" or eager is None:
            return None
        return float(np.abs(np.array(row.boxes) - np.array(eager.boxes)).max())

    def to_dict(self) -> dict:
        baseline = self.row(REFERENCE_BASELINE, "opencv")
        return {
            **self.conditions.to_dict(),
            "rows": [{"tracker": r.tracker, "backend": r.backend, "note": r.note,
                      "ms": {s: r.stat(s) for s in STAGES}, "fps": r.fps,
                      f"vs_{REFERENCE_BASELINE}": self.ratio(r, baseline),
                      f"vs_{REFERENCE_BACKEND}": self.ratio(r, self.row(r.tracker, REFERENCE_BACKEND)),
                      "box_shift_px": self.box_shift(r)} for r in self.rows],
        }


SLOW_SHARE = 1 / 3  # a CPU run below this share of the model's reference fps says why


def slow_note(fps: float, cfg: Config, device: str, backend: str) -> str | None:
    """One line when a CPU run of the default backend is far below the fps its model makes on an idle
    machine: on a shared machine the cause is other processes, not the model."""
    reference = cfg.reference_fps
    if not reference or device != "cpu" or backend != DEFAULT_BACKEND or fps >= SLOW_SHARE * reference:
        return None
    return (f"note: {fps:.1f} fps is under a third of the {cfg.reference_fps:g} fps {Path(cfg.name).stem} makes "
            f"on an idle 2-core CPU: the machine is busy (load average {load_average() or 0:.1f} on "
            f"{os.cpu_count()} cores); see README, 'Threads on a busy machine'")


def load_average() -> float | None:
    """The 1-minute load average (None where the system keeps none): how busy the machine was."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def use_threads(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)


def decoded_clip(clip: BenchClip) -> Iterator[tuple[np.ndarray, np.ndarray, float]]:
    """The clip's frames as a video decodes them (decoding is timed too): (RGB, BGR, ms to decode)."""
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "bench.mp4"
        write_clip(video, clip.frames)
        yield from decoded(video)


def time_in_lockstep(trackers: list, clip: BenchClip) -> list[float]:
    """Init every tracker on the clip's first frame, then update each in turn on every other frame as a
    video decodes them, so that all meet the same load; the ms each frame took to decode. A tracker
    takes init(rgb, bgr, first box) and update(rgb, bgr), and keeps its own timings."""
    decode_ms = []
    frames = tqdm(decoded_clip(clip), total=len(clip.frames), desc="timing", unit="frame", leave=False)
    for index, (rgb, bgr, ms) in enumerate(frames):
        decode_ms.append(ms)
        for tracker in trackers:
            if index == 0:
                tracker.init(rgb, bgr, clip.box)
            else:
                tracker.update(rgb, bgr)
    return decode_ms


def conditions(clip: BenchClip, device: str, load_at_start: float | None) -> Conditions:
    height, width = clip.frames[0].shape[:2]
    return Conditions(clip.name, len(clip.frames), (width, height), torch.get_num_threads(), device,
                      [load_at_start, load_average()])


def run_bench(configs: list[str] | None = None, backends: list[str] = (DEFAULT_BACKEND,),
              spec: TrackerSpec = TrackerSpec(), clip: BenchClip | None = None,
              baselines: list[str] = tuple(OPENCV_TRACKERS)) -> BenchReport:
    """Time each config on each backend (and always on eager, the reference) beside OpenCV's trackers.

    `spec` holds the choices shared by every model: weights, overrides, device and threads.
    """
    load = load_average()
    device = str(resolve_device(spec.device))
    use_threads(spec.threads)
    clip = clip or bench_clip()
    timed = []
    builds = [(config, backend) for config in configs or shipped_configs()
              for backend in dict.fromkeys([REFERENCE_BACKEND, *backends])]
    for config, backend in tqdm(builds, desc="building trackers", unit="tracker", leave=False):
        tracker, note = siamfc_tracker(replace(spec, config=config, backend=backend))
        timed.append(TimedSiamFC(Row(Path(config).stem, backend, note), tracker))
    timed += [TimedOpenCV(Row(name, "opencv"), OPENCV_TRACKERS[name]) for name in baselines]
    decode_ms = time_in_lockstep(timed, clip)
    rows = [t.row for t in timed]
    for row in rows:
        row.times["decode"] = decode_ms  # one decode per frame, shared by every tracker
    return BenchReport(rows, conditions(clip, device, load))


def format_report(report: dict) -> str:
    """The report of BenchReport.to_dict() as a text table: median / p90 ms per stage, fps and ratios."""
    head = (f"{report_heading(report)}\n"
            f"ms per frame as median/p90; fps = 1000 / median total (tracking only, decode excluded)\n")
    ratio_keys = [k for k in report["rows"][0] if k.startswith("vs_")] if report["rows"] else []
    header = ["tracker", "backend", *STAGES, "fps", *(k.replace("vs_", "x ") for k in ratio_keys), "box shift px", "note"]
    lines = [header]
    for r in report["rows"]:
        cells = [r["tracker"], r["backend"]]
        cells += [f"{m['median']:.1f}/{m['p90']:.1f}" if m else "-" for m in (r["ms"][s] for s in STAGES)]
        cells.append(f"{r['fps']:.1f}")
        cells += [f"{r[k]:.2f}" if r[k] is not None else "-" for k in ratio_keys]
        cells.append(f"{r['box_shift_px']:.3f}" if r["box_shift_px"] is not None else "-")
        cells.append(r["note"])
        lines.append(cells)
    return head + format_table(lines)


def report_heading(report: dict) -> str:
    """What was timed, where, and how busy the machine was."""
    return (f"siamtrack bench, {report['date']}: {report['clip']} clip, {report['frames']} frames "
            f"{report['size'][0]}x{report['size'][1]}, {plural(report['threads'], 'thread')}, {report['device']}, "
            f"torch {report['torch']}, opencv {report['opencv']}"
            + (f", load average {report['load'][0]:.1f} -> {report['load'][1]:.1f}"
               if None not in report["load"] else ""))


def format_table(lines: list[list[str]]) -> str:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)


# --- many targets: one batched tracker against one tracker per target, and OpenCV's CSRT per target

def spread_boxes(box: np.ndarray, count: int, width: int, height: int) -> np.ndarray:
    """The given box and count - 1 more of its size, their centres spread over the frame on a grid."""
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    w, h = np.minimum(box[2:], [width / cols, height / rows])
    cells = [((c + 0.5) * width / cols, (r + 0.5) * height / rows) for r in range(rows) for c in range(cols)]
    return np.array([box] + [[x - w / 2, y - h / 2, w, h] for x, y in cells[:count - 1]], dtype=np.float64)


@dataclass
class TargetsRow:
    """ms per frame of one way to track `targets` targets."""

    tracker: str  # config name, or the OpenCV tracker
    backend: str
    kind: str  # batched, separate, or the OpenCV tracker's name (one each)
    targets: int
    ms: list[float] = field(default_factory=list)

    @property
    def updates_per_second(self) -> float:
        return self.targets * 1000.0 / float(np.median(self.ms))


class TargetsGroup:
    """The trackers of one row: init each on its boxes (the first box spread over the frame), then time
    their updates on a frame together."""

    def __init__(self, row: TargetsRow, trackers: list, boxes_each: bool, bgr: bool = False):
        self.row, self.trackers, self.boxes_each, self.bgr = row, trackers, boxes_each, bgr

    def init(self, rgb: np.ndarray, bgr: np.ndarray, box: np.ndarray) -> None:
        frame = bgr if self.bgr else rgb
        boxes = spread_boxes(box, self.row.targets, frame.shape[1], frame.shape[0])
        for tracker, given in zip(self.trackers, boxes if self.boxes_each else [boxes]):
            tracker.init(frame, given)

    def update(self, rgb: np.ndarray, bgr: np.ndarray) -> None:
        frame = bgr if self.bgr else rgb
        start = time.perf_counter()
        for tracker in self.trackers:
            tracker.update(frame)
        self.row.ms.append(1000 * (time.perf_counter() - start))


def target_groups(base: SiamFCTracker, name: str, count: int) -> list[TargetsGroup]:
    """For `count` targets: one batched tracker, one tracker per target (copies sharing the network:
    built apart they would run the same), and one CSRT per target."""
    row = partial(TargetsRow, name, base.net.backend, targets=count)
    groups = [TargetsGroup(row(kind="batched"), [copy.copy(base)], boxes_each=False),
              TargetsGroup(row(kind="separate"), [copy.copy(base) for _ in range(count)], boxes_each=True)]
    if REFERENCE_BASELINE in OPENCV_TRACKERS:
        create = OPENCV_TRACKERS[REFERENCE_BASELINE]
        groups.append(TargetsGroup(TargetsRow(REFERENCE_BASELINE, "opencv", REFERENCE_BASELINE, count),
                                   [OpenCVTarget(create) for _ in range(count)], boxes_each=True, bgr=True))
    return groups


@dataclass
class TargetsReport:
    rows: list[TargetsRow]
    conditions: Conditions

    def to_dict(self) -> dict:
        def separate(row: TargetsRow) -> TargetsRow:
            return next(r for r in self.rows if (r.tracker, r.backend, r.targets, r.kind)
                        == (row.tracker, row.backend, row.targets, "separate"))
        return {
            **self.conditions.to_dict(),
            "rows": [{"tracker": r.tracker, "backend": r.backend, "kind": r.kind, "targets": r.targets,
                      "ms": {"median": float(np.median(r.ms)), "p90": float(np.percentile(r.ms, PERCENTILE))},
                      "updates_per_s": r.updates_per_second,
                      "vs_separate": (r.updates_per_second / separate(r).updates_per_second
                                      if r.kind == "batched" else None)} for r in self.rows],
        }


def run_targets_bench(counts: list[int], configs: list[str] | None = None, backends: list[str] = (DEFAULT_BACKEND,),
                      spec: TrackerSpec = TrackerSpec(), clip: BenchClip | None = None) -> TargetsReport:
    """Time `count` targets tracked by one batched tracker, by one tracker each, and by one CSRT each,
    for each count, config and backend, all on the same frames in lockstep."""
    load = load_average()
    device = str(resolve_device(spec.device))
    use_threads(spec.threads)
    clip = clip or bench_clip()
    groups = []
    builds = [(config, backend) for config in configs or [DEFAULT_CONFIG] for backend in backends]
    for config, backend in tqdm(builds, desc="building trackers", unit="tracker", leave=False):
        base, _ = siamfc_tracker(replace(spec, config=config, backend=backend))
        for count in counts:
            groups += target_groups(base, Path(config).stem, count)
    time_in_lockstep(groups, clip)
    return TargetsReport([g.row for g in groups], conditions(clip, device, load))


def format_targets_report(report: dict) -> str:
    """The report of TargetsReport.to_dict() as a text table."""
    lines = [["tracker", "backend", "targets", "how", "ms per frame", "target-updates/s", "x separate"]]
    for r in report["rows"]:
        lines.append([r["tracker"], r["backend"], str(r["targets"]), r["kind"],
                      f"{r['ms']['median']:.1f}/{r['ms']['p90']:.1f}", f"{r['updates_per_s']:.0f}",
                      f"{r['vs_separate']:.2f}" if r["vs_separate"] is not None else "-"])
    return (f"{report_heading(report)}\nms per frame as median/p90, for all targets together; batched: one tracker "
            f"for all targets, separate: one tracker per target\n{format_table(lines)}")
