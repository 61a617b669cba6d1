"""A training run's history: its metrics log (JSON lines, append-only) and the plot of its loss curves."""
from __future__ import annotations

import json
from pathlib import Path

from matplotlib.figure import Figure

FIGURE_INCHES, DPI = (8, 4.5), 100


class MetricsLog:
    """One JSON object per line; appended to, never rewritten, so a resumed run keeps the old rows."""

    def __init__(self, path: Path, enabled: bool):
        self.path = path
        self.enabled = enabled

    def write(self, kind: str, **values) -> None:
        if self.enabled:
            with self.path.open("a") as f:
                f.write(json.dumps({"kind": kind, **values}) + "\n")


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def latest_by_step(rows: list[dict], kind: str) -> list[dict]:
    """Rows of one kind, one per step: a step re-run after a resume replaces the interrupted one."""
    by_step = {row["step"]: row for row in rows if row["kind"] == kind}
    return [by_step[s] for s in sorted(by_step)]


def plot_loss_curves(metrics: Path, png: Path) -> None:
    rows = read_rows(metrics)
    steps, epochs = latest_by_step(rows, "step"), latest_by_step(rows, "epoch")
    fig = Figure(figsize=FIGURE_INCHES, layout="tight")
    ax = fig.add_subplot()
    ax.plot([r["step"] for r in steps], [r["loss"] for r in steps], lw=0.8, alpha=0.6, label="train (interval)")
    ax.plot([r["step"] for r in epochs], [r["train_loss"] for r in epochs], "o-", label="train (epoch)")
    val = [r for r in epochs if r["val_loss"] is not None]
    if val:
        ax.plot([r["step"] for r in val], [r["val_loss"] for r in val], "s-", label="validation (epoch)")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(png, dpi=DPI)
