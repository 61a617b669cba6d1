"""got10k's benchmark experiments over local folders: no downloads, numpy 2, our box convention.

Each benchmark is a got10k experiment: got10k runs every sequence and writes, then reads, the result
and report files, so they are exactly what its tools and other toolkits expect. This is the one
module that knows those files:

    OUT/results/<BENCHMARK>/<tracker>/...          got10k result files (boxes, times)
    OUT/reports/<BENCHMARK>/<first tracker>/...    got10k performance.json (and its plots)
    OUT/progress/<BENCHMARK>/<tracker>/<sequence>  our marker of a finished sequence, for resuming

Box conventions. Our trackers take and return 0-based x, y, w, h. Benchmark ground truth is 1-based
where it comes from a MATLAB toolkit (OTB and the benchmarks built on its toolkit, VOT) and for GOT-10k
(its authors, got-10k/toolkit issue #6), 0-based for NfS (siamtrack.datasets.ONE_BASED).
`BenchmarkTracker` converts at the tracker's edge: it hands the tracker the 0-based first box and returns
every box in the benchmark's own convention, so result files line up with the ground truth for got10k and
for any tool that reads them.
"""
from __future__ import annotations

import contextlib
import copy
import glob
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from got10k.datasets import TColor128
from got10k.experiments import (ExperimentDTB70, ExperimentGOT10k, ExperimentNfS, ExperimentOTB,
                                ExperimentUAV123, ExperimentVOT)
from got10k.trackers import Tracker
from got10k.utils.metrics import poly_iou

from .datasets import DATASETS, ONE_BASED, detect_layout, from_zero_based, load_sequences, to_zero_based
from .errors import EvaluationError, SiamtrackError
from .metrics import IOU_THRESHOLDS, PIXEL_THRESHOLDS

NFS_FPS = 30           # NfS ships 240 and 30 fps versions; trackers are usually compared on 30
VOT_VERSION = 2018     # names the results folder only; any VOT folder laid out as got10k reads it works
GOT10K_EVAL_SPLITS = ("val", "test")  # the GOT-10k splits a benchmark runs on (test: results only)
VOT_FAILURE = "2"      # got10k's VOT record files mark each failure frame with a line '2'


@contextlib.contextmanager
def quiet():
    """got10k prints a line per sequence; the caller (the CLI) owns the terminal instead."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


# --- got10k datasets and experiments, without their downloads, and fixed where numpy 2 broke them

class FolderDataset:
    """siamtrack.datasets sequences (any OTB-layout folder, any names) as a got10k dataset.

    got10k reads `seq_names`, len() and items (frame paths, ground truth in the file's own convention).
    """

    def __init__(self, sequences):
        self.sequences = sequences
        self.seq_names = [seq.name for seq in sequences]

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index):
        seq = self.sequences[self.seq_names.index(index) if isinstance(index, str) else index]
        return [str(path) for path in seq.frames], seq.to_source(seq.boxes)


class FolderExperiment(ExperimentOTB):
    """got10k's OTB experiment (run, record, report) over a given dataset and results folder name."""

    def __init__(self, dataset, name: str, result_dir: str, report_dir: str):
        # ExperimentOTB.__init__ would build got10k's OTB dataset, which downloads the 100 named
        # sequences unless all are present; set the attributes its methods use instead
        self.dataset = dataset
        self.result_dir = os.path.join(result_dir, name)
        self.report_dir = os.path.join(report_dir, name)
        self.nbins_iou = len(IOU_THRESHOLDS)
        self.nbins_ce = len(PIXEL_THRESHOLDS)


class ExperimentVOTNumpy2(ExperimentVOT):
    """got10k 0.1.3's ExperimentVOT made to run on numpy 2: the one place siamtrack patches got10k.

    Its run loops time skipped frames as `np.NaN`, an alias numpy 2 removed, so the alias is put back
    (it is numpy's own nan). Its `_calc_iou` builds one array from 1-element IoU arrays and scalar
    NaNs, which numpy 2 rejects as ragged; this one builds a flat float array, with the same burn-in.
    """

    def __init__(self, *args, **kwargs):
        if not hasattr(np, "NaN"):
            np.NaN = np.nan
        super().__init__(*args, **kwargs)

    def _calc_iou(self, boxes, anno, bound, burnin=False):
        ious = np.full(len(anno), np.nan)
        scored = np.array([len(box) > 1 for box in boxes])
        if burnin:  # frames right after each (re-)initialisation are too easy to count
            for start in (i for i, box in enumerate(boxes) if box == [1.0]):
                scored[start:start + self.burnin] = False
        for i in np.flatnonzero(scored):
            ious[i] = poly_iou(np.array(boxes[i]), anno[i], bound)[0]
        return ious


def _otb_experiment(root: Path, dirs: dict) -> ExperimentOTB:
    if detect_layout(root) != "otb":
        raise EvaluationError(f"{root}: not an OTB-layout folder (NAME/img/*.jpg, NAME/groundtruth_rect.txt)")
    return FolderExperiment(FolderDataset(load_sequences(root)), "OTB", **dirs)


def _got10k_split(root: Path) -> tuple[Path, str]:
    """(GOT-10k top folder, split) from the top folder (val preferred) or a split folder itself."""
    if root.name in GOT10K_EVAL_SPLITS and (root / "list.txt").is_file():
        return root.parent, root.name
    for split in GOT10K_EVAL_SPLITS:
        if (root / split / "list.txt").is_file():
            return root, split
    raise EvaluationError(f"{root}: no GOT-10k split here (val/list.txt or test/list.txt)")


def _got10k_experiment(root: Path, dirs: dict) -> ExperimentGOT10k:
    top, split = _got10k_split(root)
    return ExperimentGOT10k(str(top), subset=split, **dirs)


def _vot_experiment(root: Path, dirs: dict) -> ExperimentVOT:
    # got10k downloads VOT unless list.txt and every folder it lists are present: never let it try
    list_file = root / "list.txt"
    names = list_file.read_text().split() if list_file.is_file() else []
    missing = [name for name in names if not (root / name).is_dir()]
    if not names or missing:
        raise EvaluationError(f"{root}: not a VOT folder (list.txt naming sequence folders"
                              + (f"; missing {', '.join(missing[:3])})" if missing else ")"))
    return ExperimentVOTNumpy2(str(root), version=VOT_VERSION, experiments="supervised", **dirs)


_EXPERIMENTS = {
    "otb": _otb_experiment,
    "got10k": _got10k_experiment,
    "vot": _vot_experiment,
    "uav123": lambda root, dirs: ExperimentUAV123(str(root), **dirs),
    "dtb70": lambda root, dirs: ExperimentDTB70(str(root), **dirs),
    # got10k's TColor128 downloads unless the folder holds over 100 entries
    "tcolor128": lambda root, dirs: FolderExperiment(TColor128(str(root), download=False), "TColor128",
                                                     **dirs),
    "nfs": lambda root, dirs: ExperimentNfS(str(root), fps=NFS_FPS, **dirs),
}


# --- running one sequence through got10k with a 0-based tracker

class BenchmarkTracker(Tracker):
    """Any siamtrack-style tracker (init/update with 0-based boxes) as a got10k Tracker, boxes in and out
    in the benchmark's convention: got10k's experiments run it unchanged."""

    def __init__(self, tracker, name: str, one_based: bool = False):
        super().__init__(name=name, is_deterministic=getattr(tracker, "is_deterministic", True))
        self.tracker = tracker
        self.one_based = one_based

    def init(self, image, box) -> None:
        self.tracker.init(image, to_zero_based(box, self.one_based))

    def update(self, image) -> np.ndarray:
        return from_zero_based(self.tracker.update(image), self.one_based)


class OneSequence:
    """A got10k dataset narrowed to one sequence, so that got10k's run loop runs just that one."""

    def __init__(self, dataset, index: int):
        self.dataset, self.index = dataset, index
        self.seq_names = [dataset.seq_names[index]]

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index):
        if index not in (0, self.seq_names[0]):
            raise IndexError(index)
        return self.dataset[self.index]

    def __getattr__(self, name):  # whatever else got10k reads (return_meta, _corner2rect)
        return getattr(self.dataset, name)


# --- a benchmark: one got10k experiment, its box convention and our output folder

@dataclass
class Benchmark:
    name: str                # one of DATASETS
    experiment: object       # the got10k experiment: dataset, run loop, result layout, report
    one_based: bool
    out_dir: Path

    @property
    def seq_names(self) -> list[str]:
        return list(self.experiment.dataset.seq_names)

    @property
    def results_name(self) -> str:
        """The experiment's folder under results/ (OTB, GOT-10k, VOT2018, NfS/30, ...)."""
        return os.path.relpath(self.experiment.result_dir, self.out_dir / "results")

    def tracker_results(self, tracker: str) -> Path:
        return Path(self.experiment.result_dir) / tracker

    def marker(self, tracker: str, sequence: str) -> Path:
        return self.out_dir / "progress" / self.results_name / tracker / sequence

    def is_vot(self) -> bool:
        return isinstance(self.experiment, ExperimentVOT)

    def is_got10k(self) -> bool:
        return isinstance(self.experiment, ExperimentGOT10k)

    def has_ground_truth(self) -> bool:
        """False for GOT-10k test, whose ground truth is withheld (results are submitted instead)."""
        return not (self.is_got10k() and self.experiment.subset == "test")

    def run_sequence(self, tracker, name: str, index: int) -> None:
        """got10k's own run loop over sequence `index` with `tracker`, results under `name`; then a marker."""
        # without its marker, a sequence's result files are those of an interrupted run, maybe cut short:
        # got10k would keep any it finds, so they go first
        records, times = self.result_files(name, self.seq_names[index])
        for path in [*records, times]:
            Path(path).unlink(missing_ok=True)
            # got10k makes these folders with a check-then-create that races between workers
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        view = copy.copy(self.experiment)
        view.dataset = OneSequence(self.experiment.dataset, index)
        with quiet():
            view.run(BenchmarkTracker(tracker, name, self.one_based))
        marker = self.marker(name, self.seq_names[index])
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()

    def report(self, trackers: list[str]) -> dict:
        """got10k's report (its files in its report folder), leaving no figure open: got10k opens two
        per call and never closes them, which adds up in a long-lived process."""
        import matplotlib.pyplot as plt
        before = set(plt.get_fignums())
        with quiet():
            report = self.experiment.report(list(trackers))
        for number in set(plt.get_fignums()) - before:
            plt.close(number)
        return report

    def ground_truth(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Ground truth of a sequence in its file's convention, and the frames to score: finite, of
        positive size and, on GOT-10k, with the target visible (cover > 0, as got10k scores it)."""
        dataset = copy.copy(self.experiment.dataset)
        if self.is_got10k():
            dataset.return_meta = True
        item = dataset[index]
        truth = np.asarray(item[1], dtype=np.float64)
        valid = np.isfinite(truth).all(axis=1) & (truth[:, 2] > 0) & (truth[:, 3] > 0)
        if self.is_got10k():
            valid &= np.asarray(item[2]["cover"]) > 0
        return truth, valid

    def records(self, tracker: str, sequence: str) -> list[np.ndarray]:
        """A tracker's boxes on a sequence, one array per repetition, in the benchmark's convention."""
        return [np.loadtxt(path, delimiter=",", ndmin=2) for path in self.result_files(tracker, sequence)[0]]

    def failures(self, tracker: str, sequence: str) -> float:
        """VOT: a tracker's failures on a sequence, per repetition."""
        return float(np.mean([Path(path).read_text().split().count(VOT_FAILURE)
                              for path in self.result_files(tracker, sequence)[0]]))

    def seconds(self, tracker: str, sequence: str) -> np.ndarray:
        """A tracker's seconds per frame on a sequence (all repetitions), without got10k's NaN for
        skipped frames."""
        path = self.result_files(tracker, sequence)[1]
        if not os.path.isfile(path):
            return np.zeros(0)
        times = np.loadtxt(path, delimiter=",", ndmin=1).ravel()
        return times[np.isfinite(times) & (times > 0)]

    def result_files(self, tracker: str, sequence: str) -> tuple[list[str], str]:
        """got10k's record files of a sequence (one per repetition) and its times file."""
        folder = self.tracker_results(tracker)
        if self.is_vot():
            folder = folder / "baseline" / sequence
        elif self.is_got10k():
            folder = folder / sequence
        else:
            return [str(folder / f"{sequence}.txt")], str(folder / "times" / f"{sequence}_time.txt")
        return sorted(glob.glob(str(folder / f"{sequence}_[0-9]*.txt"))), str(folder / f"{sequence}_time.txt")


def open_benchmark(dataset: str, root: str | Path, out_dir: str | Path) -> Benchmark:
    """The got10k experiment for `dataset` over the folder `root`, writing under `out_dir`.

    Every sequence is read once here, so that a folder got10k cannot read fails now, in one line.
    """
    if dataset not in _EXPERIMENTS:
        raise EvaluationError(f"unknown dataset '{dataset}' (choose from {', '.join(DATASETS)})")
    root, out_dir = Path(root), Path(out_dir)
    if not root.is_dir():
        raise EvaluationError(f"dataset folder not found: {root}")
    dirs = {"result_dir": str(out_dir / "results"), "report_dir": str(out_dir / "reports")}
    try:
        with quiet():
            experiment = _EXPERIMENTS[dataset](root, dirs)
            for index in range(len(experiment.dataset)):
                experiment.dataset[index]
    except SiamtrackError:
        raise
    except Exception as exc:  # got10k signals a bad folder with bare asserts and Exception
        detail = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise EvaluationError(f"{root}: not laid out as got10k reads {dataset} ({detail})") from None
    if not len(experiment.dataset):
        raise EvaluationError(f"{root}: no {dataset} sequences found")
    return Benchmark(dataset, experiment, ONE_BASED[dataset], out_dir)

