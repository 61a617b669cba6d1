"""A benchmark: one got10k experiment (siamtrack.evaluation.experiments), its box convention and our output
folder. This is the one module that knows those files:

    OUT/results/<BENCHMARK>/<tracker>/...          got10k result files (boxes, times)
    OUT/results/LongTerm/<tracker>/lost/<sequence>_lost.txt   long-term runs only: the tracker's lost flag, a
                                                   0/1 line per frame (got10k records boxes and times alone)
    OUT/reports/<BENCHMARK>/<first tracker>/...    got10k performance.json (and its plots)
    OUT/reports/TrackingNet/<tracker>.zip          TrackingNet's submission: one result file per sequence
    OUT/progress/<BENCHMARK>/<tracker>/<sequence>  our marker of a finished sequence, for resuming

A job runs got10k's loop over one sequence in a private folder (`Benchmark.track`) and hands back the
files it wrote; the process that owns the output keeps them (`Benchmark.store`), each written under a
temporary name and renamed (siamtrack.files), then the sequence's marker: a run stopped at any moment
(Ctrl-C, SIGTERM, a lost node) leaves no half-written result under a result's name, and a resumed one redoes
exactly the sequences without a marker.
"""
from __future__ import annotations

import copy
import glob
import io
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from got10k.experiments import ExperimentGOT10k, ExperimentVOT

from ..datasets import DATASETS, ONE_BASED
from ..errors import EvaluationError, SiamtrackError
from ..files import PARTIAL, write_atomic
from ..text import one_line
from .experiments import EXPERIMENTS, GOT10K_REPORTS, BenchmarkTracker, DatasetView, FolderDataset, quiet

VOT_FAILURE = "2"      # got10k's VOT record files mark each failure frame with a line '2'
LOST_DIR = "lost"      # long-term runs: beside got10k's times/, the lost flags
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)  # every archive member's date: the same results, the same archive bytes


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
        """Scored as LaSOT's toolkit scores: LaSOT, and long-term folders in its layout."""
        return self.name in ("lasot", "longterm")

    def is_longterm(self) -> bool:
        """Long-term sequences (tools/make_longterm.py): the lost flags recorded, VOT-LT's measures read."""
        return self.name == "longterm"

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
            benchmark_tracker = BenchmarkTracker(tracker, name, self.one_based)
            with quiet():
                view.run(benchmark_tracker)
            if self.is_longterm():
                flags = "".join(f"{int(flag)}\n" for flag in benchmark_tracker.lost)
                write_atomic(Path(private) / name / LOST_DIR / lost_name(self.seq_names[index]), flags.encode())
            return {path.relative_to(private).as_posix(): path.read_bytes()
                    for path in sorted(Path(private).rglob("*")) if path.is_file()}

    def store(self, tracker: str, sequence: str, files: dict[str, bytes]) -> None:
        """Keep a job's result files (`track`), each whole or not at all, then mark the sequence finished."""
        # without its marker, a sequence's result files are those of an interrupted run: got10k would
        # keep any it finds beside the new ones, so they go first
        records, times = self.result_files(tracker, sequence)
        for path in [*records, times, self.lost_file(tracker, sequence)]:
            Path(path).unlink(missing_ok=True)
        for relative, data in files.items():
            write_atomic(Path(self.experiment.result_dir) / relative, data)
        write_atomic(self.marker(tracker, sequence), b"")

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

    def lost_file(self, tracker: str, sequence: str) -> Path:
        return self.tracker_results(tracker) / LOST_DIR / lost_name(sequence)

    def lost(self, tracker: str, sequence: str) -> np.ndarray:
        """A tracker's lost flag on each frame of a sequence (long-term runs)."""
        path = self.lost_file(tracker, sequence)
        if not path.is_file():
            raise EvaluationError(f"{path}: no lost flags recorded (run the long-term protocol again with --resume "
                                  "after removing this tracker's results)")
        return np.loadtxt(path, dtype=np.int64, ndmin=1).astype(bool)

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


def lost_name(sequence: str) -> str:
    return f"{sequence}_lost.txt"


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
    if dataset not in EXPERIMENTS:
        raise EvaluationError(f"unknown dataset '{dataset}' (choose from {', '.join(DATASETS)})")
    root, out_dir = Path(root).absolute(), Path(out_dir)
    if not root.is_dir():
        raise EvaluationError(f"dataset folder not found: {root}")
    dirs = {"result_dir": str(out_dir / "results"), "report_dir": str(out_dir / "reports")}
    try:
        with quiet():
            experiment = EXPERIMENTS[dataset](root, dirs)
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

