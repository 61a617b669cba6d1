"""An evaluation's scores as data (`Summary`), and as Markdown tables and success/precision plots."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..text import plural
from .metrics import IOU_THRESHOLDS, PIXEL_THRESHOLDS, Curves

COLUMN_TITLES = {
    "success_auc": "Success AUC", "precision": "Precision@20px", "norm_precision": "Norm. precision",
    "norm_precision_20": "Norm. precision@0.2",
    "size_bound": "AUC, true sizes at its centres",
    "ao": "AO (got10k)", "sr50": "SR0.5 (got10k)", "accuracy": "Accuracy (got10k)",
    "robustness": "Robustness (got10k)", "failures": "Failures", "fps": "FPS",
    "f_score": "F-score (LT)", "lt_precision": "Pr (LT)", "lt_recall": "Re (LT)",
    "absent_flagged": "Absent flagged", "tracked_flagged": "Tracked flagged",
    "failure_precision": "Lost precision (IoU<0.1)", "failure_recall": "Lost recall (IoU<0.1)",
    "recovered": "Recovered (30 fr)", "iou_after_return": "IoU after return",
}


@dataclass
class Summary:
    benchmark: str
    trackers: list[str]
    columns: list[str]                                   # of `overall`, in table order
    sequence_columns: list[str]                          # of `sequences`
    overall: dict[str, dict[str, float]]                 # tracker -> column -> value
    sequences: dict[str, dict[str, dict[str, float]]]    # sequence -> tracker -> column -> value
    curves: dict[str, Curves] = field(default_factory=dict)  # tracker -> mean curves (one-pass benchmarks)
    report: dict | None = None                           # got10k's performance (also in its report folder)
    failed: dict[str, dict[str, str]] = field(default_factory=dict)  # sequence -> tracker -> why: not scored
    attributes: dict[str, dict[str, float]] = field(default_factory=dict)  # attribute -> "sequences" and
                                                                           # tracker -> success AUC (LaSOT)
    notes: dict[str, str] = field(default_factory=dict)  # tracker -> the busy-machine note on its fps
    submissions: list[Path] = field(default_factory=list)  # archives for a benchmark's server (TrackingNet)
    files: list[Path] = field(default_factory=list)      # what write_summary wrote, and the submissions


def _cell(value: float) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.3f}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def overall_table(summary: Summary) -> str:
    return markdown_table(["Tracker"] + [COLUMN_TITLES[c] for c in summary.columns],
                          [[t] + [_cell(summary.overall[t].get(c)) for c in summary.columns]
                           for t in summary.trackers])


def sequence_table(summary: Summary) -> str:
    return markdown_table(["Sequence", "Tracker"] + [COLUMN_TITLES[c] for c in summary.sequence_columns],
                          [[name, t] + [_cell(scores[t].get(c)) for c in summary.sequence_columns]
                           for name, scores in summary.sequences.items() for t in summary.trackers])


def attribute_table(summary: Summary) -> str:
    return markdown_table(["Attribute", "Sequences"] + summary.trackers,
                          [[name, str(scores["sequences"])] + [_cell(scores[t]) for t in summary.trackers]
                           for name, scores in summary.attributes.items()])


def failure_table(summary: Summary) -> str:
    return markdown_table(["Sequence", "Tracker", "Why"],
                          [[name, tracker, why.replace("|", "/")]
                           for name, reasons in summary.failed.items() for tracker, why in reasons.items()])


def summary_markdown(summary: Summary) -> str:
    text = (f"# {summary.benchmark}: {plural(len(summary.sequences), 'sequence')}\n\n{overall_table(summary)}\n")
    if summary.attributes:
        text += f"\n## Success AUC per attribute\n\n{attribute_table(summary)}\n"
    text += f"\n## Per sequence\n\n{sequence_table(summary)}\n"
    if summary.failed:
        text += (f"\n## Not scored: {plural(len(summary.failed), 'sequence')} failed\n\n"
                 f"{failure_table(summary)}\n")
    return text


def _plot(curves: dict[str, np.ndarray], scores: dict[str, float], thresholds: np.ndarray,
          xlabel: str, ylabel: str, title: str, path: Path) -> Path:
    from matplotlib.figure import Figure  # no pyplot: no global state, no display backend needed
    figure = Figure(figsize=(6, 4.5))
    axes = figure.subplots()
    for name in sorted(curves, key=scores.get, reverse=True):
        axes.plot(thresholds, curves[name], label=f"{name} [{scores[name]:.3f}]")
    axes.set(xlabel=xlabel, ylabel=ylabel, title=title, xlim=(thresholds[0], thresholds[-1]), ylim=(0, 1))
    axes.grid(True)
    axes.legend(loc="best")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    return path


def plot_curves(summary: Summary, out_dir: Path) -> list[Path]:
    """Success and precision plots with every tracker on one figure each (one-pass benchmarks)."""
    if not summary.curves:
        return []
    curves = summary.curves
    return [
        _plot({t: c.success for t, c in curves.items()}, {t: c.success_auc for t, c in curves.items()},
              IOU_THRESHOLDS, "Overlap threshold", "Success rate", f"Success plot ({summary.benchmark})",
              out_dir / "success.png"),
        _plot({t: c.precision for t, c in curves.items()}, {t: c.precision_score for t, c in curves.items()},
              PIXEL_THRESHOLDS, "Location error threshold (px)", "Precision",
              f"Precision plot ({summary.benchmark})", out_dir / "precision.png"),
    ]


def write_summary(summary: Summary, out_dir: str | Path) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = out_dir / "summary.md"
    table.write_text(summary_markdown(summary))
    summary.files = [table] + plot_curves(summary, out_dir) + summary.submissions
    return summary.files
