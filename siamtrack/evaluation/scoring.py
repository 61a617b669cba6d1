"""Scores of finished results: for one-pass benchmarks success AUC, precision at 20 px and normalized
precision (siamtrack.evaluation.metrics), averaged over the sequences every tracker finished (over repetitions
first, for a tracker got10k runs more than once) and computed over the frames `Benchmark.ground_truth` marks to
score.

Frame 0 counts as the given box, as in got10k's OTB report, whose success and precision scores these
equal. LaSOT follows its toolkit: frames of an absent target count as failures, a box of no size repeats
the one before, normalized precision is read at 0.2, and a table per attribute where its files say which.
fps is frames over tracker seconds, pooled over sequences (got10k averages per-frame speeds instead, which
a few fast frames inflate). got10k's own headline numbers are kept beside ours: AO and SR0.5 on GOT-10k
val, accuracy and robustness (failures, with re-initialisation) on VOT. Long-term folders add VOT-LT's
measures and the lost flag's (siamtrack.evaluation.longterm) to LaSOT's scores.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from ..core.frame_loop import fps
from ..datasets import LASOT_ATTRIBUTES
from .benchmark import Benchmark
from .longterm import COLUMNS as LONGTERM_COLUMNS, LongTermCounts, sequence_counts
from .metrics import Curves, hold_invalid, mean_curves, sequence_curves, with_true_sizes
from .report import Summary


def _fps(times: np.ndarray) -> float:
    return fps(len(times), float(times.sum())) if len(times) else float("nan")


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
    if benchmark.is_longterm():
        longterm = ["success_auc", *LONGTERM_COLUMNS, "fps"]
        return longterm, longterm
    ope = ["success_auc", "precision", _norm_precision_column(benchmark), "size_bound"]
    ope += ["ao", "sr50"] if benchmark.is_got10k() else []
    return ope + ["fps"], ope + ["fps"]


def _longterm_counts(benchmark: Benchmark, tracker: str, name: str, truth: np.ndarray,
                     valid: np.ndarray) -> LongTermCounts:
    """A tracker's long-term tallies on one sequence (its first repetition: long-term trackers run once)."""
    return sequence_counts(benchmark.records(tracker, name)[0], benchmark.lost(tracker, name), truth, ~valid)


def _score_tracker(benchmark: Benchmark, tracker: str, truths: dict[str, tuple], summary: Summary) -> None:
    all_times, all_curves, all_bounds, longterm = [], [], [], LongTermCounts()
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
            if benchmark.is_longterm():
                counts = _longterm_counts(benchmark, tracker, name, *truths[name])
                scores.update(counts.scores())
                longterm += counts
    summary.overall[tracker]["fps"] = _fps(np.concatenate(all_times)) if all_times else float("nan")
    if all_curves:
        summary.curves[tracker] = mean_curves(all_curves)
        summary.overall[tracker].update(_curve_scores(summary.curves[tracker], benchmark),
                                        size_bound=mean_curves(all_bounds).success_auc)
    if benchmark.is_longterm() and longterm.sequences:
        summary.overall[tracker].update(longterm.scores())


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
    if one_pass and not benchmark.is_longterm():  # a long-term folder's one attribute: every target leaves
        _attribute_scores(benchmark, summary)
    summary.submissions = benchmark.write_submissions(trackers, scored)
    return summary
