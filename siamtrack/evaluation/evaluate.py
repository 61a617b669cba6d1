"""`evaluate`: trackers over a benchmark folder, run as jobs, scored, and the summary written.

    summary = evaluate("otb", "data/OTB", ["siamtrack", "csrt"], "runs/otb", TrackerSpec(weights=...),
                       workers=2, threads=2)
    summary = evaluate("lasot", "data/LaSOT", ["siamtrack"], "runs/lasot", runner=RayCluster())

siamtrack.evaluation.experiments wraps the got10k experiments, siamtrack.evaluation.benchmark their files;
siamtrack.evaluation.registry names and builds the trackers, siamtrack.evaluation.jobs runs them, and
siamtrack.evaluation.scoring scores what they wrote.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from ..busy import slow_note
from ..config import Config
from ..inputs import resolve_device
from ..process import set_up
from ..spec import TrackerSpec
from .benchmark import open_benchmark
from .jobs import JobResult, LocalProcesses, Runner, plan
from .registry import check_model, resolve_trackers
from .report import Summary, write_summary
from .scoring import summarize


def _slow_notes(configs: dict[str, Config], specs: dict[str, TrackerSpec], summary: Summary) -> dict[str, str]:
    """The busy-machine note of each siamtrack model whose fps, measured here, is far below its own."""
    fps = {label: summary.overall[label]["fps"] for label in configs}
    notes = {label: slow_note(fps[label], cfg, resolve_device(specs[label].device).type, specs[label].backend)
             for label, cfg in configs.items() if np.isfinite(fps[label])}
    return {label: note for label, note in notes.items() if note}


def evaluate(dataset: str, root: str | Path, trackers: Iterable[str], out_dir: str | Path,
             siamtrack: TrackerSpec = TrackerSpec(device="cpu"), workers: int = 1, threads: int = 2,
             resume: bool = False,
             progress: Callable[[Iterator[JobResult], int], Iterable[JobResult]] = lambda results, total: results,
             runner: Runner | None = None) -> Summary:
    """Run `trackers` over a benchmark folder, score them and write the summary files under `out_dir`.

    `siamtrack` describes the tracker named `siamtrack`; its device and backend apply to every
    siamtrack model (siamtrack.evaluation.registry). `runner` runs the jobs (default: LocalProcesses(workers,
    threads)), each process building each model once; this process builds none (its config and weights are
    checked here, so that a bad one fails before any work), and writes every result as it comes. `progress(results, total)` may wrap the
    stream of finished jobs' results, e.g. in a progress bar.
    """
    set_up()
    runner = runner or LocalProcesses(workers, threads)
    specs = resolve_trackers(trackers, siamtrack)
    benchmark = open_benchmark(dataset, root, out_dir)
    configs = {label: check_model(spec) for label, spec in specs.items() if spec is not None}
    labels = list(specs)
    jobs = plan(benchmark, labels, resume)
    benchmark.discard_partial_files()
    failed = {name: dict.fromkeys(labels, reason) for name, reason in benchmark.broken.items()}
    results = runner.run(benchmark, specs, jobs)
    try:
        for result in progress(results, len(jobs)):
            if result.error is None:
                benchmark.store(result.job.tracker, result.job.sequence, result.files)
            else:
                failed.setdefault(result.job.sequence, {})[result.job.tracker] = result.error
    finally:  # stopped here (Ctrl-C, SIGTERM, an error) or done: the runner stops its workers now
        results.close()
    summary = summarize(benchmark, labels, failed)
    summary.notes = _slow_notes(configs, {label: specs[label] for label in configs}, summary) \
        if runner.runs_here else {}
    write_summary(summary, out_dir)
    return summary
