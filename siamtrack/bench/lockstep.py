"""What every benchmark shares: the trackers it builds, the one loop that times them in lockstep on the
clip's decoded frames, the conditions it ran under, and the one table its report prints as.

Every tracker runs in lockstep on each decoded frame, so all of them meet the same load on a shared
machine: the ratios between them are the robust figures.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Callable, Iterator, Protocol

import cv2
import numpy as np
import torch
from tqdm import tqdm

from ..busy import load_average
from ..config import Config, load_config, resolve_weights_path
from ..core.checkpoint import build_net
from ..core.frame_loop import track_frames
from ..core.model import Model
from ..inputs import resolve_device
from ..models import SiameseNet
from ..spec import TrackerSpec
from ..text import plural
from .clip import BenchClip, bench_clip, decoded_clip

PERCENTILE = 90
REFERENCE_BASELINE = "csrt"  # the OpenCV tracker every benchmark sets its models beside
OPENCV = "opencv"  # the backend column of OpenCV's trackers
UNTRAINED = ('weights=""', "model.pretrained=false")  # overrides for a model whose weights file is missing


class Timed(Protocol):
    """A tracker (or a group of them) in the loop: it is handed both colour orders of each frame, takes
    the one it runs on, and keeps its own timings."""

    def init(self, rgb: np.ndarray, bgr: np.ndarray, box: np.ndarray) -> None: ...

    def update(self, rgb: np.ndarray, bgr: np.ndarray) -> None: ...


def no_sync() -> None:
    pass


@contextmanager
def timed(into: list[float], sync: Callable[[], None] = no_sync) -> Iterator[None]:
    """Append the ms the block took to `into`; `sync` waits for work still running (a GPU's) at each end."""
    sync()
    start = time.perf_counter()
    yield
    sync()
    into.append(1000 * (time.perf_counter() - start))


def stat(ms: list[float]) -> dict[str, float] | None:
    """The median and the 90th percentile of some timings (None for none)."""
    if not ms:
        return None
    return {"median": float(np.median(ms)), "p90": float(np.percentile(ms, PERCENTILE))}


def siamfc_net(spec: TrackerSpec) -> tuple[Config, SiameseNet, Path | None, str]:
    """The network a spec describes (build_net), with random weights and a note saying so when its weights
    file is missing."""
    cfg = load_config(spec.config, spec.overrides)
    path = resolve_weights_path(cfg)
    if spec.weights is None and path is not None and not path.is_file():
        return *build_net(spec.config, None, (*spec.overrides, *UNTRAINED)), f"untrained: no {path.name}"
    return *build_net(spec.config, spec.weights, spec.overrides), ""


class Together:
    """Trackers in lockstep as one, for the frame loop: each frame, as (RGB, BGR), to each in turn."""

    def __init__(self, trackers: list[Timed]):
        self.trackers = trackers

    def init(self, frame: tuple[np.ndarray, np.ndarray], box: np.ndarray) -> None:
        for tracker in self.trackers:
            tracker.init(*frame, box)

    def update(self, frame: tuple[np.ndarray, np.ndarray]) -> None:
        for tracker in self.trackers:
            tracker.update(*frame)


@dataclass
class Conditions:
    """What a benchmark ran on: the frames, the machine, and how busy it was."""

    clip: str
    frames: int
    size: tuple[int, int]
    threads: int
    device: str
    load: list[float | None]  # the 1-minute load average as the run started and as it ended
    absent: int = 0  # of the frames, those without the target

    def to_dict(self) -> dict:
        return {"date": date.today().isoformat(), "clip": self.clip, "frames": self.frames, "absent": self.absent,
                "size": list(self.size),
                "threads": self.threads, "device": self.device, "load": self.load,
                "torch": torch.__version__, "opencv": cv2.__version__}


class Lockstep:
    """One benchmark run: the machine's load noted as it starts, its SiamFC trackers built, then every
    tracker timed on the same decoded frames."""

    def __init__(self, spec: TrackerSpec, clip: BenchClip | None = None):
        self.load_at_start = load_average()
        self.spec, self.clip = spec, clip or bench_clip()
        self.device = resolve_device(spec.device)

    def siamfc_models(self, configs: list[str], backends: list[str]) -> Iterator[tuple[str, Model, str]]:
        """(config name, model, note) for each config on each backend, the spec's other choices shared: each
        config's network is built once, and every backend runs the same weights (random ones, if untrained)."""
        with tqdm(total=len(configs) * len(backends), desc="building models", unit="model", leave=False) as bar:
            for config in configs:
                cfg, net, weights_path, note = siamfc_net(replace(self.spec, config=config))
                for backend in backends:
                    yield Path(config).stem, Model.from_net(cfg, net, weights_path, self.device, backend), note
                    bar.update()

    def time(self, trackers: list[Timed]) -> tuple[list[float], Conditions]:
        """Init every tracker on the clip's first frame, then update each in turn on every other frame as a
        video decodes them, so that all meet the same load; the ms each frame took to decode, and the
        conditions of the run."""
        decode_ms = []

        def frames() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            for rgb, bgr, ms in tqdm(decoded_clip(self.clip), total=len(self.clip.frames), desc="timing",
                                     unit="frame", leave=False):
                decode_ms.append(ms)
                yield rgb, bgr

        for _ in track_frames(Together(trackers), frames(), self.clip.box):
            pass
        height, width = self.clip.frames[0].shape[:2]
        return decode_ms, Conditions(self.clip.name, len(self.clip.frames), (width, height), torch.get_num_threads(),
                                     str(self.device), [self.load_at_start, load_average()], self.clip.absent)


def ms_cell(ms: dict[str, float] | None) -> str:
    return f"{ms['median']:.1f}/{ms['p90']:.1f}" if ms else "-"


def ratio_cell(ratio: float | None) -> str:
    return f"{ratio:.2f}" if ratio is not None else "-"


def format_bench_report(report: dict, legend: str, lines: list[list[str]]) -> str:
    """A report's heading, what its figures mean, and its table (the header line first)."""
    return f"{report_heading(report)}\n{legend}\n{format_table(lines)}"


def report_heading(report: dict) -> str:
    """What was timed, where, and how busy the machine was."""
    absent = report.get("absent", 0)
    more = f" and {absent} of another scene (the target gone)" if absent else ""
    return (f"siamtrack bench, {report['date']}: {report['clip']} clip, {report['frames'] - absent} frames "
            f"{report['size'][0]}x{report['size'][1]}{more}, {plural(report['threads'], 'thread')}, {report['device']}, "
            f"torch {report['torch']}, opencv {report['opencv']}"
            + (f", load average {report['load'][0]:.1f} -> {report['load'][1]:.1f}"
               if None not in report["load"] else ""))


def format_table(lines: list[list[str]]) -> str:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)
