"""got10k's benchmark experiments over local folders: no downloads, numpy 2, our box convention.

Each benchmark is a got10k experiment: got10k runs every sequence and writes, then reads, the result
and report files, so they are exactly what its tools and other toolkits expect. This is the one
module that knows those files:

    OUT/results/<BENCHMARK>/<tracker>/...          got10k result files (boxes, times)
    OUT/reports/<BENCHMARK>/<first tracker>/...    got10k performance.json (and its plots)
    OUT/reports/TrackingNet/<tracker>.zip          TrackingNet's submission: one result file per sequence
    OUT/progress/<BENCHMARK>/<tracker>/<sequence>  our marker of a finished sequence, for resuming

A job runs got10k's loop over one sequence in a private folder (`Benchmark.track`) and hands back the
files it wrote; the process that owns the output keeps them (`Benchmark.store`), each written under a
temporary name and renamed, then the sequence's marker: a run stopped at any moment (Ctrl-C, SIGTERM, a
lost node) leaves no half-written result under a result's name, and a resumed one redoes exactly the
sequences without a marker. LaSOT and TrackingNet, which got10k cannot read, run through got10k's OTB
loop over siamtrack.datasets' readers; their scores are siamtrack.evaluation's.

Box conventions. Our trackers take and return 0-based x, y, w, h. Benchmark ground truth is 1-based
where it comes from a MATLAB toolkit (OTB and the benchmarks built on its toolkit, VOT, LaSOT) and for
GOT-10k (its authors, got-10k/toolkit issue #6), 0-based for NfS and TrackingNet (siamtrack.datasets.ONE_BASED).
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
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from got10k.datasets import TColor128
from got10k.experiments import (ExperimentDTB70, ExperimentGOT10k, ExperimentNfS, ExperimentOTB,
                                ExperimentUAV123, ExperimentVOT)
from got10k.trackers import Tracker
from got10k.utils.metrics import poly_iou

from .datasets import (DATASETS, ONE_BASED, TRACKINGNET_TEST, detect_layout, find_lasot, find_otb,
                       find_trackingnet_chunk, from_zero_based, read_frames, to_zero_based, trackingnet_chunks)
from .errors import EvaluationError, SiamtrackError
from .metrics import IOU_THRESHOLDS, PIXEL_THRESHOLDS

NFS_FPS = 30           # NfS ships 240 and 30 fps versions; trackers are usually compared on 30
VOT_VERSION = 2018     # names the results folder only; any VOT folder laid out as got10k reads it works
GOT10K_EVAL_SPLITS = ("val", "test")  # the GOT-10k splits a benchmark runs on (test: results only)
VOT_FAILURE = "2"      # got10k's VOT record files mark each failure frame with a line '2'
PARTIAL = ".partial"   # a file being written; never read as a result, removed when a run starts
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)  # every archive member's date: the same results, the same archive bytes


@contextlib.contextmanager
def quiet():
    """got10k prints a line per sequence; the caller (the CLI) owns the terminal instead."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


# --- messages and files

def one_line(exc: BaseException) -> str:
    """An exception as one line: its message's first line, or its type where it has none."""
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def write_atomic(path: Path, data: bytes) -> None:
    """`data` as the file `path`, complete or not there at all: written under a temporary name, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}{PARTIAL}")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


# --- got10k datasets and experiments, without their downloads, and fixed where numpy 2 broke them

class FolderDataset:
    """siamtrack.datasets sequences (OTB-layout folders, LaSOT, TrackingNet) as a got10k dataset.

    got10k reads `seq_names`, len() and items (frame paths, ground truth in the file's own convention).
    Each item is read from disk when asked for, so that the dataset stays small to send to workers.
    """

    def __init__(self, sequences):
        self.sequences = sequences  # siamtrack.datasets.SequenceFiles
        self.seq_names = [files.name for files in sequences]

    def __len__(self) -> int:
        return len(self.sequences)

    def sequence(self, index: int):
        return self.sequences[index].load()

    def __getitem__(self, index):
        seq = self.sequence(self.seq_names.index(index) if isinstance(index, str) else index)
        return [str(path) for path in seq.frames], seq.to_source(seq.boxes)


class FolderExperiment(ExperimentOTB):
    """got10k's OTB experiment (run, record, report) over a given dataset and results folder name;
    `truth_hidden`: the dataset gives first boxes only (TrackingNet's test chunk)."""

    def __init__(self, dataset, name: str, result_dir: str, report_dir: str, truth_hidden: bool = False):
        # ExperimentOTB.__init__ would build got10k's OTB dataset, which downloads the 100 named
        # sequences unless all are present; set the attributes its methods use instead
        self.dataset = dataset
        self.result_dir = os.path.join(result_dir, name)
        self.report_dir = os.path.join(report_dir, name)
        self.nbins_iou = len(IOU_THRESHOLDS)
        self.nbins_ce = len(PIXEL_THRESHOLDS)
        self.truth_hidden = truth_hidden


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


def _layout(root: Path) -> str | None:
    try:
        return detect_layout(root)
    except SiamtrackError:
        return None


def _otb_experiment(root: Path, dirs: dict) -> ExperimentOTB:
    if _layout(root) != "otb":
        raise EvaluationError(f"{root}: not an OTB-layout folder (NAME/img/*.jpg, NAME/groundtruth_rect.txt)")
    return FolderExperiment(FolderDataset(find_otb(root)), "OTB", **dirs)


def _lasot_experiment(root: Path, dirs: dict) -> ExperimentOTB:
    if _layout(root) != "lasot":
        raise EvaluationError(f"{root}: not a LaSOT folder (CLASS/CLASS-N/img/*.jpg, CLASS/CLASS-N/groundtruth.txt)")
    return FolderExperiment(FolderDataset(find_lasot(root, "test")), "LaSOT", **dirs)


def _trackingnet_experiment(root: Path, dirs: dict) -> ExperimentOTB:
    """A TrackingNet chunk folder (frames/, anno/), or the top folder, whose TEST chunk it runs."""
    layout = _layout(root)
    if layout == "trackingnet_root" and trackingnet_chunks(root, "test"):
        root = root / TRACKINGNET_TEST
    elif layout != "trackingnet":
        raise EvaluationError(f"{root}: not a TrackingNet folder ({TRACKINGNET_TEST}/ or a chunk folder "
                              "holding frames/NAME/*.jpg and anno/NAME.txt)")
    return FolderExperiment(FolderDataset(find_trackingnet_chunk(root)), "TrackingNet",
                            truth_hidden=root.name == TRACKINGNET_TEST, **dirs)


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
    "lasot": _lasot_experiment,
    "trackingnet": _trackingnet_experiment,
}
GOT10K_REPORTS = frozenset(_EXPERIMENTS) - {"lasot", "trackingnet"}  # the benchmarks got10k itself scores


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

    def track(self, img_files, box, visualize=False):
        """got10k's one-pass loop (Tracker.track) with the frames decoded as the tracker consumes them, a few
        ahead (siamtrack.datasets.read_frames), and each frame's time that of init or update alone."""
        boxes = np.zeros((len(img_files), 4))
        boxes[0] = box
        times = np.zeros(len(img_files))
        for index, frame in enumerate(read_frames(img_files)):
            start = time.perf_counter()
            if index == 0:
                self.init(frame, box)
            else:
                boxes[index] = self.update(frame)
            times[index] = time.perf_counter() - start
        return boxes, times


class DatasetView:
    """A got10k dataset narrowed to some of its sequences, so that got10k's run loop or report sees only those."""

    def __init__(self, dataset, indices: list[int]):
        self.dataset = copy.copy(dataset)  # got10k's report switches `return_meta` on: on a copy of its own
        self.indices = list(indices)
        self.seq_names = [dataset.seq_names[index] for index in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index):
        position = self.seq_names.index(index) if isinstance(index, str) else index
        if not 0 <= position < len(self.indices):
            raise IndexError(index)  # ends got10k's `for ... in dataset` loops
        return self.dataset[self.indices[position]]

    @property
    def return_meta(self) -> bool:
        return self.dataset.return_meta

    @return_meta.setter
    def return_meta(self, value: bool) -> None:
        self.dataset.return_meta = value

    def __getattr__(self, name):  # whatever else got10k reads (_corner2rect)
        return getattr(self.dataset, name)


# --- a benchmark: one got10k experiment, its box convention and our output folder

@dataclass
class Benchmark:
    name: str                # one of DATASETS
    experiment: object       # the got10k experiment: dataset, run loop, result layout, report
    one_based: bool
    out_dir: Path
    broken: dict[str, str] = field(default_factory=dict)  # sequence -> why it cannot be read (no job runs it)

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

    def is_lasot(self) -> bool:
        return self.name == "lasot"

    def has_ground_truth(self) -> bool:
        """False for GOT-10k test and TrackingNet's test chunk, whose ground truth is withheld (results are
        submitted instead)."""
        return not ((self.is_got10k() and self.experiment.subset == "test")
                    or getattr(self.experiment, "truth_hidden", False))

    def track(self, tracker, name: str, index: int) -> dict[str, bytes]:
        """got10k's own run loop over sequence `index` with `tracker`, results under `name`, in a private
        folder: the files it wrote, by their path under the results folder, for `store` to keep."""
        with tempfile.TemporaryDirectory(prefix="siamtrack-job-") as private:
            view = copy.copy(self.experiment)
            view.dataset = DatasetView(self.experiment.dataset, [index])
            view.result_dir = private
            with quiet():
                view.run(BenchmarkTracker(tracker, name, self.one_based))
            return {path.relative_to(private).as_posix(): path.read_bytes()
                    for path in sorted(Path(private).rglob("*")) if path.is_file()}

    def store(self, tracker: str, sequence: str, files: dict[str, bytes]) -> None:
        """Keep a job's result files (`track`), each whole or not at all, then mark the sequence finished."""
        # without its marker, a sequence's result files are those of an interrupted run: got10k would
        # keep any it finds beside the new ones, so they go first
        records, times = self.result_files(tracker, sequence)
        for path in [*records, times]:
            Path(path).unlink(missing_ok=True)
        for relative, data in files.items():
            write_atomic(Path(self.experiment.result_dir) / relative, data)
        write_atomic(self.marker(tracker, sequence), b"")

    def run_sequence(self, tracker, name: str, index: int) -> None:
        """Run sequence `index` with `tracker` and keep its results under `name`, in this process."""
        self.store(name, self.seq_names[index], self.track(tracker, name, index))

    def discard_partial_files(self) -> None:
        """Files a stopped run was writing: never results, so removed before a run (re)starts."""
        for folder in (self.out_dir / "results", self.out_dir / "progress", self.out_dir / "reports"):
            for path in folder.rglob(f"*{PARTIAL}") if folder.is_dir() else ():
                path.unlink(missing_ok=True)

    def report(self, trackers: list[str], sequences: list[str]) -> dict | None:
        """got10k's report over `sequences` (its files in its report folder), for the benchmarks got10k
        scores itself; None for the others. It leaves no figure open: got10k opens two per call and never
        closes them, which adds up in a long-lived process."""
        if self.name not in GOT10K_REPORTS:
            return None
        import matplotlib.pyplot as plt
        before = set(plt.get_fignums())
        view = copy.copy(self.experiment)
        view.dataset = DatasetView(self.experiment.dataset, [self.seq_names.index(name) for name in sequences])
        with quiet():
            report = view.report(list(trackers))
        for number in set(plt.get_fignums()) - before:
            plt.close(number)
        return report

    def write_submissions(self, trackers: list[str], sequences: list[str]) -> list[Path]:
        """TrackingNet: per tracker, the archive its evaluation server takes, one result file per sequence
        (NAME.txt, a line x,y,w,h per frame) at the archive's top level; none for other benchmarks."""
        if self.name != "trackingnet":
            return []
        written = []
        for tracker in trackers:
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w") as archive:
                for name in sequences:
                    member = zipfile.ZipInfo(f"{name}.txt", date_time=ZIP_TIMESTAMP)
                    member.compress_type = zipfile.ZIP_DEFLATED
                    archive.writestr(member, Path(self.result_files(tracker, name)[0][0]).read_bytes())
            path = Path(self.experiment.report_dir) / f"{tracker}.zip"
            write_atomic(path, buffer.getvalue())
            written.append(path)
        return written

    def attributes(self, index: int) -> tuple[str, ...]:
        """The challenges a sequence is labelled with (LaSOT); none for benchmarks without such labels."""
        dataset = self.experiment.dataset
        return dataset.sequence(index).attributes if isinstance(dataset, FolderDataset) else ()

    def ground_truth(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Ground truth of a sequence in its file's convention, and the frames to score: finite, of
        positive size, with the target visible (LaSOT: neither fully occluded nor out of view; GOT-10k:
        cover > 0, as got10k scores it)."""
        if isinstance(self.experiment.dataset, FolderDataset):
            seq = self.experiment.dataset.sequence(index)
            return seq.to_source(seq.boxes), ~seq.absent & (seq.boxes[:, 2] > 0) & (seq.boxes[:, 3] > 0)
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


def _unreadable(dataset) -> dict[str, str]:
    """Each sequence of a got10k dataset that cannot be read, with why in one line."""
    broken = {}
    for index, name in enumerate(dataset.seq_names):
        try:
            with quiet():
                dataset[index]
        except Exception as exc:  # ours raise SourceError; got10k's readers bare asserts, loadtxt's ValueError
            broken[name] = one_line(exc)
    return broken


def open_benchmark(dataset: str, root: str | Path, out_dir: str | Path) -> Benchmark:
    """The got10k experiment for `dataset` over the folder `root`, writing under `out_dir`.

    Every sequence is read once here: a folder got10k cannot read fails now, in one line, and a sequence
    that cannot be read (a malformed ground-truth line, missing frames) is set aside in `broken`, so that
    the others still run. `root` is kept absolute: workers elsewhere (a cluster's nodes) read it too.
    """
    if dataset not in _EXPERIMENTS:
        raise EvaluationError(f"unknown dataset '{dataset}' (choose from {', '.join(DATASETS)})")
    root, out_dir = Path(root).absolute(), Path(out_dir)
    if not root.is_dir():
        raise EvaluationError(f"dataset folder not found: {root}")
    dirs = {"result_dir": str(out_dir / "results"), "report_dir": str(out_dir / "reports")}
    try:
        with quiet():
            experiment = _EXPERIMENTS[dataset](root, dirs)
    except SiamtrackError:
        raise
    except Exception as exc:  # got10k signals a bad folder with bare asserts and Exception
        raise EvaluationError(f"{root}: not laid out as got10k reads {dataset} ({one_line(exc)[:120]})") from None
    if not len(experiment.dataset):
        raise EvaluationError(f"{root}: no {dataset} sequences found")
    broken = _unreadable(experiment.dataset)
    if len(broken) == len(experiment.dataset):
        name, reason = next(iter(broken.items()))
        raise EvaluationError(f"{root}: not laid out as got10k reads {dataset} ({name}: {reason[:120]})")
    return Benchmark(dataset, experiment, ONE_BASED[dataset], out_dir, broken)

