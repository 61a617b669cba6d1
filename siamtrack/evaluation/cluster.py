"""Evaluation jobs on a running Ray cluster: one Ray task per (tracker, sequence) job.

    summary = evaluate("lasot", "/shared/LaSOT", ["siamtrack", "csrt"], "runs/lasot", runner=RayCluster())

The cluster is an existing one (`ray start --head` on one machine, `ray start --address=HEAD:6379` on each
other): `RayCluster()` joins the one RAY_ADDRESS names, else this machine's; `RayCluster("ray://HOST:10001")`
connects through Ray Client. Every node sees the dataset at the same path (a shared file system, as on
clusters) and has siamtrack installed: a task reads its sequence's frames there and hands its result files
back, and the driver writes them all (siamtrack.evaluation.jobs), so the output folder is the driver's alone.

A task asks for one CPU (its tracker runs on one thread) and, with device cuda, a share of a GPU for a
siamtrack model. A task whose node dies runs again on another, up to MAX_RETRIES times (Ray's own task
retries); a task that fails on its sequence's data returns that failure (siamtrack.evaluation.jobs.run_job),
which is never retried. Ray, the `cluster` extra, is imported only here, when a run starts.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import time
from dataclasses import replace
from pathlib import Path
from typing import Iterator

from ..errors import EvaluationError, SiamtrackError
from ..process import signal_handled
from ..text import one_line
from .benchmark import Benchmark
from .jobs import Job, JobResult, Trackers, Work, run_job

MAX_RETRIES = 3        # runs of a task beyond its first when the node running it dies
THREADS_PER_JOB = 1    # each task's CPU threads: the one CPU it asks Ray for
GPUS_PER_JOB = 0.25    # with --device cuda: a SiamFC job leaves most of a GPU idle (decoding and crops run on
                       # its CPU), so four share one
NODE_ID_CHARS = 8      # of a node's id, to tell nodes apart in progress (several may share an IP)
CONNECT_TIMEOUT_S = 10  # to reach the cluster's address at all: Ray itself waits minutes for a dead one
CONNECT_TRIES = 3      # Ray Client's server runs its own ray.init for each driver, and that can fail while the
CONNECT_PAUSE_S = 2.0  #   head is busy ("Initialization failure from server"): tried again, this far apart
EXTRA = "pip install 'siamtrack[cluster]'"


def _import_ray():
    try:
        import ray
    except ImportError:
        raise EvaluationError(f"--cluster ray needs Ray on this machine and on every node: {EXTRA}") from None
    return ray


def _check_reachable(address: str) -> None:
    """A one-line error at once when nothing answers at HOST:PORT (`ray://` or not); 'auto' Ray checks itself."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise EvaluationError(f"no Ray cluster answers at '{address}' ({exc.strerror or type(exc).__name__}): "
                              "start one with `ray start --head`, or check RAY_ADDRESS / --cluster") from None


def _connect(ray, address: str | None) -> None:
    """Join the running cluster at `address` (None: RAY_ADDRESS, else this machine's), never starting one."""
    address = address or os.environ.get("RAY_ADDRESS") or "auto"
    _check_reachable(address)
    for attempt in range(1, CONNECT_TRIES + 1):
        try:
            # ray.init makes SIGTERM exit at once; the caller's handling comes back after it
            with signal_handled(signal.SIGTERM, signal.getsignal(signal.SIGTERM)):
                ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
            return
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
            # a failed Ray Client connect leaves the process in client mode, where a later ray.init fails
            ray.shutdown()
            if not isinstance(exc, ConnectionAbortedError) or attempt == CONNECT_TRIES:
                reason = " ".join(str(exc).split())[:160] or type(exc).__name__  # the server's reason: line 2
                raise EvaluationError(f"no Ray cluster at '{address}' ({reason}): start one with "
                                      "`ray start --head`, or pass --cluster ray://HOST:PORT") from None
            time.sleep(CONNECT_PAUSE_S)


def _absolute(trackers: Trackers) -> Trackers:
    """The trackers with their config and weights files as absolute paths: tasks do not run where the
    driver was started."""
    def absolute(path: str | None) -> str | None:
        return str(Path(path).absolute()) if path and Path(path).is_file() else path

    return {label: spec if spec is None else replace(spec, config=absolute(spec.config), weights=absolute(spec.weights))
            for label, spec in trackers.items()}


def _run_task(work: Work, job: Job) -> JobResult:
    """One job on a worker of the cluster (its Work is fetched from Ray's object store once per task)."""
    import ray
    return run_job(work, job, node=ray.get_runtime_context().get_node_id()[:NODE_ID_CHARS])


class RayCluster:
    """An evaluation runner (siamtrack.evaluation.jobs.Runner) on a running Ray cluster."""
    runs_here = False  # fps are measured on the nodes: this machine's load says nothing of them

    def __init__(self, address: str | None = None, device: str = "cpu", gpus_per_job: float = GPUS_PER_JOB):
        self.address = address
        self.gpus_per_job = gpus_per_job if device == "cuda" else 0.0

    def run(self, benchmark: Benchmark, trackers: Trackers, jobs: list[Job]) -> Iterator[JobResult]:
        ray = _import_ray()
        _connect(ray, self.address)
        try:
            yield from self._run(ray, benchmark, trackers, jobs)
        finally:
            ray.shutdown()  # leaves the cluster; it runs on

    def _run(self, ray, benchmark: Benchmark, trackers: Trackers, jobs: list[Job]) -> Iterator[JobResult]:
        if self.gpus_per_job and not ray.cluster_resources().get("GPU"):
            raise EvaluationError("--device cuda, but the Ray cluster has no GPU")
        work = ray.put(Work(benchmark, _absolute(trackers), THREADS_PER_JOB))
        task = ray.remote(_run_task)
        pending = {}
        for job in jobs:
            gpus = self.gpus_per_job if trackers[job.tracker] is not None else 0.0  # OpenCV's run on the CPU
            options = task.options(num_cpus=1, num_gpus=gpus, max_retries=MAX_RETRIES, retry_exceptions=False)
            pending[options.remote(work, job)] = job
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    del pending[ref]
                    yield _result(ray, ref)
        finally:  # stopped early (Ctrl-C, an error): the rest is not needed
            for ref in pending:
                ray.cancel(ref, force=True)


def _result(ray, ref) -> JobResult:
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, SiamtrackError):  # bad input found on the node (a config, weights): one line
            raise exc.cause from None
        raise
    except ray.exceptions.RayError as exc:  # its node died more often than it may be retried, or the driver's link
        raise EvaluationError(f"a job was lost on the Ray cluster ({one_line(exc)[:160]})") from None
