"""The many-targets benchmark (`siamtrack bench --targets N ...`): N targets tracked by one batched
tracker, by one tracker per target, and by one OpenCV CSRT per target, on the same frames."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..baselines import OPENCV_TRACKERS, OpenCVTracker
from ..config import DEFAULT_CONFIG
from ..core.backends import DEFAULT_BACKEND
from ..core.model import Model
from ..core.tracker import SiamFCTracker
from ..spec import TrackerSpec
from .clip import BenchClip
from .lockstep import (OPENCV, REFERENCE_BASELINE, Conditions, Lockstep, format_bench_report, ms_cell, ratio_cell, stat,
                       timed)

BATCHED, SEPARATE = "batched", "separate"  # one tracker for all targets; one tracker per target


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
    their updates on a frame together. `bgr`: the trackers take the BGR frames (OpenCV's), not the RGB."""

    def __init__(self, row: TargetsRow, trackers: list, boxes_each: bool, bgr: bool = False):
        self.row, self.trackers, self.boxes_each, self.bgr = row, trackers, boxes_each, bgr

    def init(self, rgb: np.ndarray, bgr: np.ndarray, box: np.ndarray) -> None:
        frame = bgr if self.bgr else rgb
        boxes = spread_boxes(box, self.row.targets, frame.shape[1], frame.shape[0])
        for tracker, given in zip(self.trackers, boxes if self.boxes_each else [boxes]):
            tracker.init(frame, given)

    def update(self, rgb: np.ndarray, bgr: np.ndarray) -> None:
        frame = bgr if self.bgr else rgb
        with timed(self.row.ms):
            for tracker in self.trackers:
                tracker.update(frame)


def target_groups(model: Model, name: str, count: int) -> list[TargetsGroup]:
    """For `count` targets: one batched tracker, one tracker per target (over the same model: built apart they
    would run the same), and one CSRT per target."""
    def row(kind: str) -> TargetsRow:
        return TargetsRow(name, model.backend.name, kind, count)
    groups = [TargetsGroup(row(BATCHED), [SiamFCTracker(model)], boxes_each=False),
              TargetsGroup(row(SEPARATE), [SiamFCTracker(model) for _ in range(count)], boxes_each=True)]
    if REFERENCE_BASELINE in OPENCV_TRACKERS:
        csrt = [OpenCVTracker(REFERENCE_BASELINE, frames_bgr=True) for _ in range(count)]
        groups.append(TargetsGroup(TargetsRow(REFERENCE_BASELINE, OPENCV, REFERENCE_BASELINE, count), csrt,
                                   boxes_each=True, bgr=True))
    return groups


@dataclass
class TargetsReport:
    rows: list[TargetsRow]
    conditions: Conditions

    def vs_separate(self, row: TargetsRow) -> float | None:
        """How many times the target-updates per second of one tracker per target a batched row makes."""
        if row.kind != BATCHED:
            return None
        separate = next(r for r in self.rows if (r.tracker, r.backend, r.targets, r.kind)
                        == (row.tracker, row.backend, row.targets, SEPARATE))
        return row.updates_per_second / separate.updates_per_second

    def to_dict(self) -> dict:
        return {
            **self.conditions.to_dict(),
            "rows": [{"tracker": r.tracker, "backend": r.backend, "kind": r.kind, "targets": r.targets,
                      "ms": stat(r.ms), "updates_per_s": r.updates_per_second,
                      "vs_separate": self.vs_separate(r)} for r in self.rows],
        }


def run_targets_bench(counts: list[int], configs: list[str] | None = None, backends: list[str] = (DEFAULT_BACKEND,),
                      spec: TrackerSpec = TrackerSpec(), clip: BenchClip | None = None) -> TargetsReport:
    """Time `count` targets tracked by one batched tracker, by one tracker each, and by one CSRT each,
    for each count, config (the default model by default) and backend, all on the same frames in lockstep."""
    run = Lockstep(spec, clip)
    groups = [group for name, model, _ in run.siamfc_models(configs or [DEFAULT_CONFIG], list(backends))
              for count in counts for group in target_groups(model, name, count)]
    _, conditions = run.time(groups)
    return TargetsReport([g.row for g in groups], conditions)


def format_targets_report(report: dict) -> str:
    """The report of TargetsReport.to_dict() as a text table."""
    lines = [["tracker", "backend", "targets", "how", "ms per frame", "target-updates/s", "x separate"]]
    lines += [[r["tracker"], r["backend"], str(r["targets"]), r["kind"], ms_cell(r["ms"]),
               f"{r['updates_per_s']:.0f}", ratio_cell(r["vs_separate"])] for r in report["rows"]]
    legend = (f"ms per frame as median/p90, for all targets together; {BATCHED}: one tracker for all targets, "
              f"{SEPARATE}: one tracker per target")
    return format_bench_report(report, legend, lines)
