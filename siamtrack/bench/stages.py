"""The per-stage benchmark (`siamtrack bench`): each model and backend timed stage by stage beside
OpenCV's trackers, on the same frames. A frame a tracker starts with its target lost (searching for it) is
timed apart from the frames it tracks: the stages and the fps are the tracked frames', and `lost` gives the
cost of a frame in the lost state and its ratio to a tracked one's."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ContextManager

import numpy as np
import torch

from ..baselines import OPENCV_TRACKERS, OpenCVTracker
from ..busy import slow_note
from ..config import Config, shipped_configs
from ..core.backends import DEFAULT_BACKEND
from ..core.model import Model
from ..core.tracker import STAGES as UPDATE_STAGES, SiamFCTracker
from ..spec import TrackerSpec
from .clip import BenchClip
from .lockstep import (OPENCV, REFERENCE_BASELINE, Conditions, Lockstep, format_bench_report, ms_cell, no_sync,
                       ratio_cell, stat, timed)

TIMED_STAGES = ("decode", *UPDATE_STAGES, "total")  # total: update()'s stages, decode excluded
REFERENCE_BACKEND = "eager"


@dataclass
class Row:
    """One tracker's timings (ms per frame, by stage) and boxes over the clip."""

    tracker: str  # config name or OpenCV tracker
    backend: str  # eager | torch | onnxruntime | opencv
    note: str = ""
    cfg: Config | None = None  # a SiamFC model's config, as loaded; None for OpenCV's trackers
    times: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in TIMED_STAGES})
    boxes: list[np.ndarray] = field(default_factory=list)
    lost: list[bool] = field(default_factory=list)  # per update: the tracker started it with its target lost

    def timings(self, stage: str, lost: bool = False) -> list[float]:
        """A stage's ms on the frames tracked (or, `lost`, on those started with the target lost); decoding's
        on every frame."""
        if stage == "decode":
            return self.times[stage]
        return [ms for ms, gone in zip(self.times[stage], self.lost or [False] * len(self.times[stage]))
                if gone == lost]

    def stat(self, stage: str, lost: bool = False) -> dict[str, float] | None:
        return stat(self.timings(stage, lost))

    @property
    def fps(self) -> float:
        return 1000.0 / float(np.median(self.timings("total")))

    @property
    def lost_ratio(self) -> float | None:
        """How many times a tracked frame's median ms a frame in the lost state takes (None without both)."""
        lost, tracked = self.timings("total", lost=True), self.timings("total")
        return float(np.median(lost) / np.median(tracked)) if lost and tracked else None


class TimedSiamFC:
    """A SiamFCTracker whose own update() is timed stage by stage, through its `timer` hook."""

    def __init__(self, name: str, model: Model, note: str):
        tracker = SiamFCTracker(model)
        self.row = Row(name, model.backend.name, note, model.cfg)
        self.tracker = tracker
        # a GPU runs asynchronously: let each stage finish before reading the clock
        self.sync = torch.cuda.synchronize if tracker.device.type == "cuda" else no_sync
        tracker.timer = self.stage

    def stage(self, name: str) -> ContextManager:
        return timed(self.row.times[name], self.sync)

    def init(self, rgb: np.ndarray, bgr: np.ndarray, box: np.ndarray) -> None:
        self.tracker.init(rgb, box)

    def update(self, rgb: np.ndarray, bgr: np.ndarray) -> None:
        self.row.lost.append(bool(self.tracker.lost))
        self.row.boxes.append(self.tracker.update(rgb))
        self.row.times["total"].append(sum(self.row.times[stage][-1] for stage in UPDATE_STAGES))


class TimedOpenCV:
    """One of OpenCV's trackers on the BGR frames it takes natively, its update() timed as a whole."""

    def __init__(self, kind: str):
        self.row, self.tracker = Row(kind, OPENCV), OpenCVTracker(kind, frames_bgr=True)

    def init(self, rgb: np.ndarray, bgr: np.ndarray, box: np.ndarray) -> None:
        self.tracker.init(bgr, box)

    def update(self, rgb: np.ndarray, bgr: np.ndarray) -> None:
        self.row.lost.append(self.tracker.lost)
        with timed(self.row.times["total"]):
            box = self.tracker.update(bgr)
        self.row.boxes.append(box)


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
        if row.backend == OPENCV or eager is None:
            return None
        return float(np.abs(np.array(row.boxes) - np.array(eager.boxes)).max())

    def slow_notes(self) -> list[tuple[str, str]]:
        """(model, note) for each model timed far below the fps it makes on an idle machine (busy.slow_note)."""
        device = torch.device(self.conditions.device).type
        notes = [(r.tracker, slow_note(r.fps, r.cfg, device, r.backend)) for r in self.rows if r.cfg]
        return [(tracker, note) for tracker, note in notes if note]

    def to_dict(self) -> dict:
        baseline = self.row(REFERENCE_BASELINE, OPENCV)
        return {
            **self.conditions.to_dict(),
            "rows": [{"tracker": r.tracker, "backend": r.backend, "note": r.note,
                      "ms": {s: r.stat(s) for s in TIMED_STAGES}, "fps": r.fps,
                      "lost_frames": sum(r.lost), "lost_ms": r.stat("total", lost=True), "x_lost": r.lost_ratio,
                      f"vs_{REFERENCE_BASELINE}": self.ratio(r, baseline),
                      f"vs_{REFERENCE_BACKEND}": self.ratio(r, self.row(r.tracker, REFERENCE_BACKEND)),
                      "box_shift_px": self.box_shift(r)} for r in self.rows],
        }


def run_bench(configs: list[str] | None = None, backends: list[str] = (DEFAULT_BACKEND,),
              spec: TrackerSpec = TrackerSpec(), clip: BenchClip | None = None,
              baselines: list[str] = tuple(OPENCV_TRACKERS)) -> BenchReport:
    """Time each config (every shipped one by default) on each backend, and always on eager (the
    reference), beside OpenCV's trackers.

    `spec` holds the choices shared by every model: weights, overrides and device. CPU threads are the
    process's (siamtrack.process.use_threads, before building).
    """
    run = Lockstep(spec, clip)
    built = run.siamfc_models(configs or shipped_configs(), list(dict.fromkeys([REFERENCE_BACKEND, *backends])))
    timed_trackers = [TimedSiamFC(name, model, note) for name, model, note in built]
    timed_trackers += [TimedOpenCV(kind) for kind in baselines]
    decode_ms, conditions = run.time(timed_trackers)
    rows = [t.row for t in timed_trackers]
    for row in rows:
        row.times["decode"] = decode_ms  # one decode per frame, shared by every tracker
    return BenchReport(rows, conditions)


def format_report(report: dict) -> str:
    """The report of BenchReport.to_dict() as a text table: median / p90 ms per stage, fps and ratios."""
    ratio_keys = [k for k in report["rows"][0] if k.startswith("vs_")] if report["rows"] else []
    lines = [["tracker", "backend", *TIMED_STAGES, "fps", *(k.replace("vs_", "x ") for k in ratio_keys),
              "lost frames", "lost ms", "x lost", "box shift px", "note"]]
    for r in report["rows"]:
        lines.append([r["tracker"], r["backend"], *(ms_cell(r["ms"][s]) for s in TIMED_STAGES), f"{r['fps']:.1f}",
                      *(ratio_cell(r[k]) for k in ratio_keys), str(r["lost_frames"]), ms_cell(r["lost_ms"]),
                      ratio_cell(r["x_lost"]), f"{r['box_shift_px']:.3f}" if r["box_shift_px"] is not None else "-",
                      r["note"]])
    legend = ("ms per frame as median/p90 over the frames tracked; fps = 1000 / median total (tracking only, decode "
              "excluded); lost: the frames started with the target lost (searching for it), ms of the whole update, "
              "and x lost its median over a tracked frame's")
    return format_bench_report(report, legend, lines)
