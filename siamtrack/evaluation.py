"""Benchmark evaluation: run siamtrack and OpenCV baselines through got10k's experiments, sequences in
parallel and resumable, and score them.

    summary = evaluate("otb", "data/OTB", ["siamtrack", "csrt"], "runs/otb", TrackerSpec(weights=...),
                       workers=2, threads=2)

siamtrack.experiments wraps the got10k experiments (file layout, box conventions, result files);
siamtrack.registry names and builds the trackers; this module runs jobs, one tracker on one
sequence each, and scores the results.

For one-pass benchmarks the table gives success AUC, precision at 20 px and normalized precision
(siamtrack.metrics), averaged over sequences (over repetitions first, for a tracker got10k runs more
than once) and computed over the frames `Benchmark.ground_truth` marks to score. Frame 0 counts as the
given box, as in got10k's OTB report, whose success and precision scores these equal. fps is frames
over tracker seconds, pooled over sequences (got10k averages per-frame speeds instead, which a few
fast frames inflate). got10k's own headline numbers are kept beside ours: AO and SR0.5 on GOT-10k val,
accuracy and robustness (failures, with re-initialisation) on VOT.
"""
from __future__ import annotations

import multiprocessing
import signal
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator

import cv2
import numpy as np
import torch

from .errors import EvaluationError
from .experiments import Benchmark, open_benchmark
from .metrics import Curves, mean_curves, sequence_curves, with_true_sizes
from .registry import build_tracker, resolve_trackers
from .report import Summary, write_summary
from .spec import TrackerSpec


# --- running: one job is one tracker on one sequence

@dataclass(frozen=True)
class Job:
    tracker: str
    index: int
    sequence: str


def plan(benchmark: Benchmark, trackers: list[str], resume: bool = False) -> list[Job]:
    """The jobs still to run, sequence by sequence; without `resume`, earlier results are an error."""
    started = [t for t in trackers
               if benchmark.tracker_results(t).exists() or benchmark.marker(t, "").exists()]
    if started and not resume:
        raise EvaluationError(f"{benchmark.out_dir} already holds {benchmark.results_name} results of "
                              f"{', '.join(started)}: pass --resume to finish them, or choose another --out")
    return [Job(tracker, index, name)
            for index, name in enumerate(benchmark.seq_names) for tracker in trackers
            if not benchmark.marker(tracker, name).exists()]


Trackers = dict  # label -> TrackerSpec, or None for an OpenCV baseline (siamtrack.registry)
_worker: dict = {}  # per process: the benchmark, the trackers' specs, and each tracker once built


def _start_worker(benchmark: Benchmark, trackers: Trackers, threads: int) -> None:
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    _worker.update(benchmark=benchmark, specs=trackers, built={})


def _start_pool_worker(benchmark: Benchmark, trackers: Trackers, threads: int) -> None:
    # Ctrl-C reaches every process of the terminal's group: the parent stops the pool, and a worker
    # left to handle it too would only print its own traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _start_worker(benchmark, trackers, threads)


def _run_job(job: Job) -> Job:
    built = _worker["built"]
    if job.tracker not in built:
        built[job.tracker] = build_tracker(job.tracker, _worker["specs"][job.tracker])
    _worker["benchmark"].run_sequence(built[job.tracker], job.tracker, job.index)
    return job


def run_jobs(benchmark: Benchmark, jobs: list[Job], trackers: Trackers, workers: int = 1,
             threads: int = 2) -> Iterator[Job]:
    """Run the jobs, yielding each as it finishes.

    `threads` is the total CPU budget: each of the `workers` processes gets threads // workers (at
    least 1) for torch and OpenCV. A tracker's results depend only on its own thread count, so a
    parallel run equals a serial one given the same threads per process. With one worker the jobs
    run in this process, under those thread counts until they are done.
    """
    if workers < 1 or threads < 1:
        raise EvaluationError(f"workers and threads must be at least 1, got {workers} and {threads}")
    per_worker = max(1, threads // workers)
    if workers == 1 or len(jobs) <= 1:
        saved = torch.get_num_threads(), cv2.getNumThreads()
        _start_worker(benchmark, trackers, per_worker)
        try:
            yield from map(_run_job, jobs)
        finally:  # the caller's thread counts again
            torch.set_num_threads(saved[0])
            cv2.setNumThreads(saved[1])
        return
    # spawn, not fork: a forked copy of a process that has started torch's thread pools can hang
    context = multiprocessing.get_context("spawn")
    with context.Pool(min(workers, len(jobs)), _start_pool_worker, (benchmark, trackers, per_worker)) as pool:
        yield from pool.imap_unordered(_run_job, jobs)


# --- scoring

def _fps(times: np.ndarray) -> float:
    return float(len(times) / times.sum()) if len(times) else float("nan")


def _ope_curves(benchmark: Benchmark, tracker: str, index: int) -> tuple[Curves, Curves]:
    """The tracker's curves on one sequence, and those of its centres with the true box sizes."""
    truth, valid = benchmark.ground_truth(index)
    runs = benchmark.records(tracker, benchmark.seq_names[index])
    for boxes in runs:
        boxes[0] = truth[0]  # frame 0 is given, not tracked: it scores as given, as got10k scores it
    scored = [(boxes[valid], truth[valid]) for boxes in runs]
    return (mean_curves([sequence_curves(boxes, truth) for boxes, truth in scored]),
            mean_curves([sequence_curves(with_true_sizes(boxes, truth), truth) for boxes, truth in scored]))


def _curve_scores(curves: Curves) -> dict[str, float]:
    return {"success_auc": curves.success_auc, "precision": curves.precision_score,
            "norm_precision": curves.norm_precision_score}


def _columns(benchmark: Benchmark) -> tuple[list[str], list[str]]:
    """Columns of the overall and the per-sequence table."""
    if benchmark.is_vot():
        return ["accuracy", "robustness", "fps"], ["failures", "fps"]
    if not benchmark.has_ground_truth():
        return ["fps"], ["fps"]
    ope = ["success_auc", "precision", "norm_precision", "size_bound"]
    ope += ["ao", "sr50"] if benchmark.is_got10k() else []
    return ope + ["fps"], ope + ["fps"]


def _score_tracker(benchmark: Benchmark, tracker: str, summary: Summary) -> None:
    all_times, all_curves, all_bounds = [], [], []
    for index, name in enumerate(benchmark.seq_names):
        times = benchmark.seconds(tracker, name)
        all_times.append(times)
        scores = summary.sequences[name][tracker]
        scores["fps"] = _fps(times)
        if benchmark.is_vot():
            scores["failures"] = benchmark.failures(tracker, name)
        elif benchmark.has_ground_truth():
            curves, bound = _ope_curves(benchmark, tracker, index)
            all_curves.append(curves)
            all_bounds.append(bound)
            scores.update(_curve_scores(all_curves[-1]), size_bound=all_bounds[-1].success_auc)
    summary.overall[tracker]["fps"] = _fps(np.concatenate(all_times))
    if all_curves:
        summary.curves[tracker] = mean_curves(all_curves)
        summary.overall[tracker].update(_curve_scores(summary.curves[tracker]),
                                        size_bound=mean_curves(all_bounds).success_auc)


def _add_got10k_scores(benchmark: Benchmark, tracker: str, summary: Summary) -> None:
    """got10k's own headline numbers: accuracy and robustness on VOT, AO and SR0.5 on GOT-10k val."""
    report = summary.report
    if benchmark.is_vot():
        summary.overall[tracker].update(accuracy=report[tracker]["accuracy"],
                                        robustness=report[tracker]["robustness"])
    elif benchmark.is_got10k() and benchmark.has_ground_truth():
        overall = report[tracker]["overall"]
        summary.overall[tracker].update(ao=overall["ao"], sr50=overall["sr"])
        for name, scores in report[tracker]["seq_wise"].items():
            summary.sequences[name][tracker].update(ao=scores["ao"], sr50=scores["sr"])


def summarize(benchmark: Benchmark, trackers: list[str]) -> Summary:
    """Score finished results: got10k's report (its files kept in its report folder), then ours."""
    report = benchmark.report(trackers)
    columns, sequence_columns = _columns(benchmark)
    summary = Summary(benchmark.results_name, list(trackers), columns, sequence_columns,
                      overall={t: {} for t in trackers},
                      sequences={s: {t: {} for t in trackers} for s in benchmark.seq_names}, report=report)
    for tracker in trackers:
        _score_tracker(benchmark, tracker, summary)
        _add_got10k_scores(benchmark, tracker, summary)
    return summary


# --- all of it

def evaluate(dataset: str, root: str | Path, trackers: Iterable[str], out_dir: str | Path,
             siamtrack: TrackerSpec = TrackerSpec(device="cpu"), workers: int = 1, threads: int = 2,
             resume: bool = False,
             progress: Callable[[Iterator[Job], int], Iterable[Job]] = lambda jobs, total: jobs) -> Summary:
    """Run `trackers` over a benchmark folder, score them and write the summary files under `out_dir`.

    `siamtrack` describes the tracker named `siamtrack`; its device and backend apply to every
    siamtrack model (siamtrack.registry). `progress(jobs, total)` may wrap the stream of finished
    jobs, e.g. in a progress bar.
    """
    # the workers share out `threads` among themselves: no tracker sets its own
    specs = resolve_trackers(trackers, replace(siamtrack, threads=None))
    benchmark = open_benchmark(dataset, root, out_dir)
    for label, spec in specs.items():  # build each once here, so that a bad config or weights fails before any work
        build_tracker(label, spec)
    labels = list(specs)
    jobs = plan(benchmark, labels, resume)
    for _ in progress(run_jobs(benchmark, jobs, specs, workers, threads), len(jobs)):
        pass
    summary = summarize(benchmark, labels)
    write_summary(summary, out_dir)
    return summary
