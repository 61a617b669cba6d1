"""Benchmark evaluation: run siamtrack and OpenCV baselines through got10k's experiments, one job per tracker
and sequence, on local processes or a cluster, resumable, and score them.

    summary = evaluate("otb", "data/OTB", ["siamtrack", "csrt"], "runs/otb", TrackerSpec(weights=...),
                       workers=2, threads=2)
    summary = evaluate("lasot", "data/LaSOT", ["siamtrack"], "runs/lasot", engine=RayCluster())

siamtrack.experiments wraps the got10k experiments (file layout, box conventions, result files);
siamtrack.registry names and builds the trackers. This module plans the jobs, has an engine run them
(`LocalProcesses` here; siamtrack.cluster.RayCluster on a Ray cluster), keeps every result in this
process and scores them. An engine only runs `run_job` somewhere and hands back `JobResult`s: the files a
job wrote, or why its sequence's data failed (an unreadable frame, a malformed line), which the summary
reports per sequence while the other jobs finish.

For one-pass benchmarks the table gives success AUC, precision at 20 px and normalized precision
(siamtrack.metrics), averaged over the sequences every tracker finished (over repetitions first, for a
tracker got10k runs more than once) and computed over the frames `Benchmark.ground_truth` marks to score.
Frame 0 counts as the given box, as in got10k's OTB report, whose success and precision scores these
equal. LaSOT follows its toolkit: frames of an absent target count as failures, a box of no size repeats
the one before, normalized precision is read at 0.2, and a table per attribute where its files say which.
fps is frames over tracker seconds, pooled over sequences (got10k averages per-frame speeds instead, which
a few fast frames inflate). got10k's own headline numbers are kept beside ours: AO and SR0.5 on GOT-10k
val, accuracy and robustness (failures, with re-initialisation) on VOT.
"""
from __future__ import annotations

import multiprocessing
import platform
import signal
import threading
import uuid
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Protocol

import numpy as np
import torch
from tqdm import tqdm

from .busy import slow_note
from .datasets import LASOT_ATTRIBUTES
from .errors import EvaluationError, SiamtrackError
from .experiments import Benchmark, one_line, open_benchmark
from .metrics import Curves, hold_invalid, mean_curves, sequence_curves, with_true_sizes
from .registry import build_tracker, resolve_trackers
from .report import Summary, write_summary
from .spec import TrackerSpec
from .threads import use_threads

NODE = platform.node()  # where a local job runs
# bad data in a sequence: its job fails and is reported, the others run (SourceError for our readers,
# OSError for a file that cannot be opened, ValueError for got10k's loadtxt of a malformed line)
DATA_ERRORS = (SiamtrackError, OSError, ValueError)


# --- jobs: one tracker on one sequence

@dataclass(frozen=True)
class Job:
    tracker: str
    index: int
    sequence: str


Trackers = dict  # label -> TrackerSpec, or None for an OpenCV baseline (siamtrack.registry)


@dataclass(frozen=True)
class Work:
    """What every job of one run needs, sent once to each worker: the benchmark, how to build each
    tracker, and the CPU threads a job uses."""
    benchmark: Benchmark
    trackers: Trackers
    threads: int
    run: str = field(default_factory=lambda: uuid.uuid4().hex)  # tells this run's trackers from an earlier run's


@dataclass(frozen=True)
class JobResult:
    job: Job
    files: dict[str, bytes]  # the result files, by their path under the benchmark's results folder
    error: str | None = None  # why the sequence's data failed; then no files
    node: str = NODE  # the machine, or cluster node, that ran it


class Engine(Protocol):
    runs_here: bool  # jobs run on this machine: their fps says how busy it is

    def run(self, benchmark: Benchmark, trackers: Trackers, jobs: list[Job]) -> Iterator[JobResult]:
        """Run every job, yielding each result as it comes; stop them all when closed early."""


def plan(benchmark: Benchmark, trackers: list[str], resume: bool = False) -> list[Job]:
    """The jobs still to run, sequence by sequence, none for a sequence that cannot be read; without
    `resume`, earlier results are an error."""
    started = [t for t in trackers
               if benchmark.tracker_results(t).exists() or benchmark.marker(t, "").exists()]
    if started and not resume:
        raise EvaluationError(f"{benchmark.out_dir} already holds {benchmark.results_name} results of "
                              f"{', '.join(started)}: pass --resume to finish them, or choose another --out")
    return [Job(tracker, index, name)
            for index, name in enumerate(benchmark.seq_names) if name not in benchmark.broken
            for tracker in trackers if not benchmark.marker(tracker, name).exists()]


_trackers: dict[tuple[str, str], object] = {}  # per process: (run, label) -> the tracker, built once


def _tracker(work: Work, label: str):
    key = (work.run, label)
    if key not in _trackers:
        for earlier in [k for k in _trackers if k[0] != work.run]:  # a long-lived worker drops past runs'
            del _trackers[earlier]
        _trackers[key] = build_tracker(label, work.trackers[label])
    return _trackers[key]


def run_job(work: Work, job: Job, node: str = NODE) -> JobResult:
    """Run one job in this process and hand back its result files, or why its sequence's data failed.
    A tracker that cannot be built fails the run instead: no sequence would fare better."""
    use_threads(work.threads)
    tracker = _tracker(work, job.tracker)
    try:
        files = work.benchmark.track(tracker, job.tracker, job.index)
    except DATA_ERRORS as exc:
        return JobResult(job, {}, one_line(exc), node)
    return JobResult(job, files, None, node)


# --- the local engine

_pool_work: list[Work] = []  # per pool worker process: the run's Work, sent once


def _start_pool_worker(work: Work) -> None:
    # tqdm (the status line of a tracker's build) makes a multiprocessing lock on first use, which a pool
    # ends its workers without releasing: the parent would warn of a leaked semaphore at exit
    tqdm.set_lock(threading.RLock())
    _pool_work.append(work)


def _run_pool_job(job: Job) -> JobResult:
    return run_job(_pool_work[0], job)


@contextmanager
def _sigint_ignored() -> Iterator[None]:
    """SIGINT ignored in this process for the block: processes started in it inherit that from the start."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class LocalProcesses:
    """Jobs on this machine: in this process with one worker, else in a pool of `workers` processes.

    `threads` is the total CPU budget: each worker gets threads // workers (at least 1) for torch and
    OpenCV. A tracker's results depend only on its own thread count, so a parallel run equals a serial one
    given the same threads per process.
    """
    runs_here = True

    def __init__(self, workers: int = 1, threads: int = 2):
        if workers < 1 or threads < 1:
            raise EvaluationError(f"workers and threads must be at least 1, got {workers} and {threads}")
        self.workers, self.threads = workers, threads

    def run(self, benchmark: Benchmark, trackers: Trackers, jobs: list[Job]) -> Iterator[JobResult]:
        work = Work(benchmark, trackers, max(1, self.threads // self.workers))
        if self.workers == 1 or len(jobs) <= 1:
            saved = torch.get_num_threads()
            try:
                yield from (run_job(work, job) for job in jobs)
            finally:  # the caller's thread count again
                use_threads(saved)
            return
        # spawn, not fork: a forked copy of a process that has started torch's thread pools can hang
        context = multiprocessing.get_context("spawn")
        # Ctrl-C reaches every process of the terminal's group: the parent stops the pool, and a worker that
        # handled it too would only print its own traceback. Workers started with SIGINT ignored keep it
        # ignored from their first instruction, even while they import
        with _sigint_ignored():
            pool = context.Pool(min(self.workers, len(jobs)), _start_pool_worker, (work,))
        with pool:
            yield from pool.imap_unordered(_run_pool_job, jobs)


# --- scoring

def _fps(times: np.ndarray) -> float:
    return float(len(times) / times.sum()) if len(times) else float("nan")


def _ope_curves(benchmark: Benchmark, tracker: str, name: str, truth: np.ndarray,
                valid: np.ndarray) -> tuple[Curves, Curves]:
    """The tracker's curves on one sequence, and those of its centres with the true box sizes."""
    lasot = benchmark.is_lasot()
    runs = [hold_invalid(boxes) if lasot else boxes for boxes in benchmark.records(tracker, name)]
    for boxes in runs:
        boxes[0] = truth[0]  # frame 0 is given, not tracked: it scores as given, as got10k scores it
    frames = len(truth) if lasot else None  # LaSOT divides by every frame, the target's absent ones too
    scored = [(boxes[valid], truth[valid]) for boxes in runs]
    return (mean_curves([sequence_curves(boxes, truth, frames) for boxes, truth in scored]),
            mean_curves([sequence_curves(with_true_sizes(boxes, truth), truth, frames) for boxes, truth in scored]))


def _norm_precision_column(benchmark: Benchmark) -> str:
    return "norm_precision_20" if benchmark.is_lasot() else "norm_precision"


def _curve_scores(curves: Curves, benchmark: Benchmark) -> dict[str, float]:
    norm = curves.norm_precision_20 if benchmark.is_lasot() else curves.norm_precision_score
    return {"success_auc": curves.success_auc, "precision": curves.precision_score,
            _norm_precision_column(benchmark): norm}


def _columns(benchmark: Benchmark) -> tuple[list[str], list[str]]:
    """Columns of the overall and the per-sequence table."""
    if benchmark.is_vot():
        return ["accuracy", "robustness", "fps"], ["failures", "fps"]
    if not benchmark.has_ground_truth():
        return ["fps"], ["fps"]
    ope = ["success_auc", "precision", _norm_precision_column(benchmark), "size_bound"]
    ope += ["ao", "sr50"] if benchmark.is_got10k() else []
    return ope + ["fps"], ope + ["fps"]


def _score_tracker(benchmark: Benchmark, tracker: str, truths: dict[str, tuple], summary: Summary) -> None:
    all_times, all_curves, all_bounds = [], [], []
    for name in summary.sequences:
        times = benchmark.seconds(tracker, name)
        all_times.append(times)
        scores = summary.sequences[name][tracker]
        scores["fps"] = _fps(times)
        if benchmark.is_vot():
            scores["failures"] = benchmark.failures(tracker, name)
        elif name in truths:
            curves, bound = _ope_curves(benchmark, tracker, name, *truths[name])
            all_curves.append(curves)
            all_bounds.append(bound)
            scores.update(_curve_scores(curves, benchmark), size_bound=bound.success_auc)
    summary.overall[tracker]["fps"] = _fps(np.concatenate(all_times)) if all_times else float("nan")
    if all_curves:
        summary.curves[tracker] = mean_curves(all_curves)
        summary.overall[tracker].update(_curve_scores(summary.curves[tracker], benchmark),
                                        size_bound=mean_curves(all_bounds).success_auc)


def _add_got10k_scores(benchmark: Benchmark, tracker: str, summary: Summary) -> None:
    """got10k's own headline numbers: accuracy and robustness on VOT, AO and SR0.5 on GOT-10k val."""
    report = summary.report
    if not report:
        return
    if benchmark.is_vot():
        summary.overall[tracker].update(accuracy=report[tracker]["accuracy"],
                                        robustness=report[tracker]["robustness"])
    elif benchmark.is_got10k() and benchmark.has_ground_truth():
        overall = report[tracker]["overall"]
        summary.overall[tracker].update(ao=overall["ao"], sr50=overall["sr"])
        for name, scores in report[tracker]["seq_wise"].items():
            summary.sequences[name][tracker].update(ao=scores["ao"], sr50=scores["sr"])


def _attribute_scores(benchmark: Benchmark, summary: Summary) -> None:
    """Success AUC per attribute (LaSOT): the mean over the sequences that have it, as its toolkit plots."""
    having = defaultdict(list)
    for name in summary.sequences:
        for attribute in benchmark.attributes(benchmark.seq_names.index(name)):
            having[attribute].append(name)
    order = {name: rank for rank, name in enumerate(LASOT_ATTRIBUTES)}
    for attribute in sorted(having, key=lambda a: (order.get(a, len(order)), a)):
        names = having[attribute]
        summary.attributes[attribute] = {
            "sequences": len(names),
            **{t: float(np.mean([summary.sequences[n][t]["success_auc"] for n in names])) for t in summary.trackers}}


def summarize(benchmark: Benchmark, trackers: list[str], failed: dict[str, dict[str, str]] | None = None) -> Summary:
    """Score finished results over the sequences no tracker failed on (`failed`: sequence -> tracker ->
    why): got10k's report (its files kept in its report folder), then ours."""
    failed = failed or {}
    scored = [name for name in benchmark.seq_names if name not in failed]
    columns, sequence_columns = _columns(benchmark)
    summary = Summary(benchmark.results_name, list(trackers), columns, sequence_columns,
                      overall={t: {} for t in trackers},
                      sequences={s: {t: {} for t in trackers} for s in scored},
                      report=benchmark.report(trackers, scored) if scored else None, failed=failed)
    one_pass = benchmark.has_ground_truth() and not benchmark.is_vot()
    truths = {name: benchmark.ground_truth(benchmark.seq_names.index(name)) for name in scored} if one_pass else {}
    for tracker in trackers:
        _score_tracker(benchmark, tracker, truths, summary)
        _add_got10k_scores(benchmark, tracker, summary)
    if one_pass:
        _attribute_scores(benchmark, summary)
    summary.submissions = benchmark.write_submissions(trackers, scored)
    return summary


# --- all of it

def _slow_notes(models: dict[str, tuple], summary: Summary) -> dict[str, str]:
    """The busy-machine note of each siamtrack model whose fps, measured here, is far below its own."""
    fps = {label: summary.overall[label]["fps"] for label in models}
    notes = {label: slow_note(fps[label], *model) for label, model in models.items() if np.isfinite(fps[label])}
    return {label: note for label, note in notes.items() if note}


def evaluate(dataset: str, root: str | Path, trackers: Iterable[str], out_dir: str | Path,
             siamtrack: TrackerSpec = TrackerSpec(device="cpu"), workers: int = 1, threads: int = 2,
             resume: bool = False,
             progress: Callable[[Iterator[JobResult], int], Iterable[JobResult]] = lambda results, total: results,
             engine: Engine | None = None) -> Summary:
    """Run `trackers` over a benchmark folder, score them and write the summary files under `out_dir`.

    `siamtrack` describes the tracker named `siamtrack`; its device and backend apply to every
    siamtrack model (siamtrack.registry). `engine` runs the jobs (default: LocalProcesses(workers,
    threads)); this process writes every result as it comes. `progress(results, total)` may wrap the
    stream of finished jobs' results, e.g. in a progress bar.
    """
    engine = engine or LocalProcesses(workers, threads)
    specs = resolve_trackers(trackers, siamtrack)
    benchmark = open_benchmark(dataset, root, out_dir)
    models = {}
    for label, spec in specs.items():  # build each once here, so that a bad config or weights fails before any work
        tracker = build_tracker(label, spec)
        if spec is not None:
            models[label] = (tracker.cfg, tracker.device.type, tracker.net.backend)
    labels = list(specs)
    jobs = plan(benchmark, labels, resume)
    benchmark.discard_partial_files()
    failed = {name: dict.fromkeys(labels, reason) for name, reason in benchmark.broken.items()}
    results = engine.run(benchmark, specs, jobs)
    try:
        for result in progress(results, len(jobs)):
            if result.error is None:
                benchmark.store(result.job.tracker, result.job.sequence, result.files)
            else:
                failed.setdefault(result.job.sequence, {})[result.job.tracker] = result.error
    finally:  # stopped here (Ctrl-C, SIGTERM, an error) or done: the engine stops its workers now
        results.close()
    summary = summarize(benchmark, labels, failed)
    summary.notes = _slow_notes(models, summary) if engine.runs_here else {}
    write_summary(summary, out_dir)
    return summary
