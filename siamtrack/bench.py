"""`siamtrack bench`: per-stage timings of each model and backend beside OpenCV's trackers, on the same frames.

A fixed synthetic clip (siamtrack.synthetic) is written once to an mp4 and decoded frame by frame,
so decoding is timed too. Every tracker runs in lockstep on each decoded frame, so all of them meet
the same load on a shared machine: the ratios between them are the robust figures.
"""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np
import torch

from .baselines import OPENCV_TRACKERS
from .config import load_config, resolve_weights_path, shipped_dir
from .engines import DEFAULT_BACKEND
from .synthetic import make_clip
from .tracker import SiamFCTracker, resolve_device

SIAMFC_STAGES = ("crop", "backbone", "xcorr", "post")  # post: upsampling, scale and peak search, box
STAGES = ("decode", *SIAMFC_STAGES, "total")  # total: the tracking, decode excluded
PERCENTILE = 90
REFERENCE_BASELINE = "csrt"
VIDEO_FPS = 30.0
REFERENCE_BACKEND = "eager"


def shipped_configs() -> list[str]:
    return sorted(p.stem for p in shipped_dir("configs").glob("*.yaml"))


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
    """A SiamFCTracker whose update() is timed stage by stage (the same calls update() makes)."""

    def __init__(self, row: Row, tracker: SiamFCTracker):
        self.row, self.tracker = row, tracker
        self.on_gpu = tracker.device.type == "cuda"

    def now(self) -> float:
        if self.on_gpu:  # a GPU runs asynchronously: let the stage finish before reading the clock
            torch.cuda.synchronize()
        return time.perf_counter()

    def init(self, rgb: np.ndarray, bgr: np.ndarray, box: np.ndarray) -> None:
        self.tracker.init(rgb, box)

    @torch.inference_mode()
    def update(self, rgb: np.ndarray, bgr: np.ndarray) -> None:
        tracker = self.tracker
        stamps = [self.now()]
        crops = tracker.search_crops(rgb)
        stamps.append(self.now())
        features = tracker.net.embed_search(crops)
        stamps.append(self.now())
        responses = tracker.respond(features)
        stamps.append(self.now())
        self.row.boxes.append(tracker.step(responses))
        stamps.append(self.now())
        for stage, start, end in zip(SIAMFC_STAGES, stamps, stamps[1:]):
            self.row.times[stage].append(1000 * (end - start))
        self.row.times["total"].append(1000 * (stamps[-1] - stamps[0]))


class TimedOpenCV:
    """One of OpenCV's trackers on the BGR frames it takes natively, its update() timed as a whole."""

    def __init__(self, row: Row, create: Callable):
        self.row, self.create = row, create

    def init(self, rgb: np.ndarray, bgr: np.ndarray, box: np.ndarray) -> None:
        self.tracker = self.create()
        self.tracker.init(bgr, tuple(int(round(v)) for v in box))

    def update(self, rgb: np.ndarray, bgr: np.ndarray) -> None:
        start = time.perf_counter()
        ok, rect = self.tracker.update(bgr)
        self.row.times["total"].append(1000 * (time.perf_counter() - start))
        self.row.boxes.append(np.asarray(rect, dtype=np.float64))


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


def siamfc_tracker(config: str, weights: str | None, backend: str, device: str) -> tuple[SiamFCTracker, str]:
    """The tracker a config describes; with random weights (and a note) when its weights file is missing."""
    cfg = load_config(config)
    note = ""
    path = resolve_weights_path(cfg)
    if weights is None and path is not None and not path.is_file():
        cfg.weights, cfg.model.pretrained = "", False
        note = f"untrained: no {path.name}"
    torch.manual_seed(cfg.train.seed)  # the same random weights on every backend
    return SiamFCTracker(cfg, weights, device=device, backend=backend), note


@dataclass
class BenchReport:
    rows: list[Row]
    frames: int
    size: tuple[int, int]
    threads: int
    device: str
    load: list[float | None]  # the 1-minute load average as the run started and as it ended

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
            "date": date.today().isoformat(), "frames": self.frames, "size": list(self.size),
            "threads": self.threads, "device": self.device, "load": self.load,
            "torch": torch.__version__, "opencv": cv2.__version__,
            "rows": [{"tracker": r.tracker, "backend": r.backend, "note": r.note,
                      "ms": {s: r.stat(s) for s in STAGES}, "fps": r.fps,
                      f"vs_{REFERENCE_BASELINE}": self.ratio(r, baseline),
                      f"vs_{REFERENCE_BACKEND}": self.ratio(r, self.row(r.tracker, REFERENCE_BACKEND)),
                      "box_shift_px": self.box_shift(r)} for r in self.rows],
        }


def load_average() -> float | None:
    """The 1-minute load average (None where the system keeps none): how busy the machine was."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def run_bench(configs: list[str] | None = None, backends: list[str] = (DEFAULT_BACKEND,), weights: str | None = None,
              device: str = "auto", threads: int | None = None, frames: int | None = None,
              baselines: list[str] = tuple(OPENCV_TRACKERS)) -> BenchReport:
    """Time each config on each backend (and always on eager, the reference) beside OpenCV's trackers."""
    load = [load_average()]
    device = str(resolve_device(device))
    if threads:
        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)
    clip = make_clip() if frames is None else make_clip(num_frames=frames)
    timed = []
    for config in configs or shipped_configs():
        for backend in dict.fromkeys([REFERENCE_BACKEND, *backends]):
            tracker, note = siamfc_tracker(config, weights, backend, device)
            timed.append(TimedSiamFC(Row(Path(config).stem, backend, note), tracker))
    timed += [TimedOpenCV(Row(name, "opencv"), OPENCV_TRACKERS[name]) for name in baselines]
    decode_ms = []
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "bench.mp4"
        write_clip(video, clip.frames)
        for index, (rgb, bgr, ms) in enumerate(decoded(video)):
            decode_ms.append(ms)
            for t in timed:
                if index == 0:
                    t.init(rgb, bgr, clip.boxes[0])
                else:
                    t.update(rgb, bgr)
    rows = [t.row for t in timed]
    for row in rows:
        row.times["decode"] = decode_ms  # one decode per frame, shared by every tracker
    height, width = clip.frames[0].shape[:2]
    load.append(load_average())
    return BenchReport(rows, len(clip.frames), (width, height), torch.get_num_threads(), device, load)


def format_report(report: dict) -> str:
    """The report of BenchReport.to_dict() as a text table: median / p90 ms per stage, fps and ratios."""
    head = (f"siamtrack bench, {report['date']}: {report['frames']} frames {report['size'][0]}x{report['size'][1]}, "
            f"{report['threads']} threads, {report['device']}, torch {report['torch']}, opencv {report['opencv']}"
            + (f", load average {report['load'][0]:.1f} -> {report['load'][1]:.1f}" if None not in report["load"] else "")
            + "\n"
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
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return head + "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)
