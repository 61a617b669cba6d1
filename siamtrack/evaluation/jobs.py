"""Evaluation's jobs: one tracker on one sequence, planned, resumable, and run in this process, in a pool of
local processes (`LocalProcesses`), or on a Ray cluster (siamtrack.evaluation.cluster.RayCluster).

A runner only runs `run_job` somewhere and hands back `JobResult`s: the files a job wrote, or why its
sequence's data failed (an unreadable frame, a malformed line), which the summary reports per sequence while
the other jobs finish. Every result comes back to the driver, which alone writes the output folder
(siamtrack.evaluation.benchmark).
"""
from __future__ import annotations

import multiprocessing
import platform
import signal
import threading
import uuid
from dataclasses import dataclass, field
from typing import Iterator, Protocol

import torch
from tqdm import tqdm

from ..errors import EvaluationError, SiamtrackError
from ..process import set_up, signal_handled, use_threads
from ..text import one_line
from .benchmark import Benchmark
from .registry import build_model, build_tracker

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


Trackers = dict  # label -> TrackerSpec, or None for an OpenCV baseline (siamtrack.evaluation.registry)


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


class Runner(Protocol):
    """What runs evaluation's jobs: LocalProcesses here, siamtrack.evaluation.cluster.RayCluster on a cluster."""
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


_models: dict[tuple[str, str], object] = {}  # per process: (run, label) -> its model, built once


def _model(work: Work, label: str):
    key = (work.run, label)
    if key not in _models:
        for earlier in [k for k in _models if k[0] != work.run]:  # a long-lived worker drops past runs'
            del _models[earlier]
        _models[key] = build_model(work.trackers[label])
    return _models[key]


def run_job(work: Work, job: Job, node: str = NODE) -> JobResult:
    """Run one job in this process and hand back its result files, or why its sequence's data failed.
    Each siamtrack model is built once per process and each job gets a tracker over it; a model that cannot
    be built fails the run instead: no sequence would fare better."""
    set_up(work.threads)
    tracker = build_tracker(job.tracker, work.trackers[job.tracker], _model(work, job.tracker))
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
    # the pool ends its workers with SIGTERM (after Ctrl-C, an error, or the last job): an exit rather than a
    # kill, so that a job cut short still removes its private folder (Benchmark.track) from the temp dir
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    _pool_work.append(work)


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(0)


def _run_pool_job(job: Job) -> JobResult:
    return run_job(_pool_work[0], job)


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
        with signal_handled(signal.SIGINT, signal.SIG_IGN):
            pool = context.Pool(min(self.workers, len(jobs)), _start_pool_worker, (work,))
        with pool:
            yield from pool.imap_unordered(_run_pool_job, jobs)
