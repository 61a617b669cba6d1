"""Score tracker variants (`--set` lists, e.g. fused responses) of one model on every sequence of the given
folders, with nothing trained: the pooled short clips (train_mini + train_more) and the long sequences of
val_long each reported on their own, since drift over hundreds of frames shows only in the long ones.

Each sequence's boxes are cached under --cache, keyed by config, variant, backend and sequence, so that a
variant is tracked once however often the table is printed, and two runs (one thread each) can share the
work. The boxes are deterministic on one machine: the load changes the fps column only.

    OMP_NUM_THREADS=1 python tools/fusion_cv.py --config siamfc_lite0 \
        --pooled ../shared/data/train_mini ../shared/data/train_more --long ../shared/data/val_long \
        --variant blocks_0.7:model.fusion=blocks,track.fusion_weight=0.7 [--per-sequence]

Per variant: success AUC / precision@20 on each set, and against the first variant (the config as it is) the
mean per-sequence AUC difference with its standard error and the count of sequences better / worse.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from cross_validate import parse_variant, tracker_for
from tqdm import tqdm

from siamtrack.config import load_config
from siamtrack.core.backends import BACKENDS
from siamtrack.core.frame_loop import fps, track_frames
from siamtrack.datasets import load_sequences
from siamtrack.evaluation.metrics import mean_curves, sequence_curves
from siamtrack.inputs import read_rgb

BASELINE = "config"  # the first variant: the config as it is
TIE = 1e-9  # per-sequence AUC differences smaller than this count as neither better nor worse


def cache_path(cache: Path, config: str, sets: list[str], backend: str, sequence: Path) -> Path:
    """Keyed by the config's values with `sets` applied, not its name: a config edited since (the shipped
    default became fused) is a new key, so no stale boxes are read."""
    values = load_config(config, sets).to_dict()
    key = json.dumps([values, backend, str(sequence.resolve())], sort_keys=True, default=str)
    return cache / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.npz"


def tracked(config: str, sets: list[str], backend: str, sequence, cache: Path) -> tuple[np.ndarray, float]:
    """The sequence's tracked boxes (its first frame left out) and the tracking time in seconds, cached."""
    path = cache_path(cache, config, sets, backend, Path(sequence.frames[0]).parent)
    if path.is_file():
        stored = np.load(path)
        return stored["boxes"], float(stored["seconds"])
    tracker = tracker_for(config, None, sets, backend)
    frames = (read_rgb(p) for p in sequence.frames)
    results = list(track_frames(tracker, frames, sequence.boxes[0]))
    boxes = np.array([box for _, _, box, _ in results])[1:]
    seconds = sum(s for _, _, _, s in results[1:])
    partial = path.with_suffix(f".{os.getpid()}.npz")  # renamed when whole: runs sharing the cache read no half
    np.savez(partial, boxes=boxes, seconds=seconds)
    os.replace(partial, path)
    return boxes, seconds


def summary(aucs: np.ndarray, base: np.ndarray) -> str:
    diff = aucs - base
    se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
    return (f"{diff.mean():+.3f} +- {se:.3f} ({int((diff > TIE).sum())} better, "
            f"{int((diff < -TIE).sum())} worse)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--pooled", nargs="+", default=[], help="folders scored as one pool (short clips)")
    parser.add_argument("--long", nargs="*", default=[], help="folders of long sequences, scored on their own")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE[,KEY=VALUE]")
    parser.add_argument("--backend", default="torch", choices=BACKENDS)
    parser.add_argument("--cache", default="/tmp/siamtrack_fusion_cv", help="where each sequence's boxes are kept")
    parser.add_argument("--per-sequence", action="store_true", help="also print each sequence's success AUC")
    parser.add_argument("--only", nargs="+", help="track these variants only (names), to share the work between runs")
    args = parser.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    sets_of = {"pooled": args.pooled, "long": args.long}
    sequences = {kind: [s for root in roots for s in load_sequences(root)] for kind, roots in sets_of.items()}
    variants = [parse_variant(v) for v in [f"{BASELINE}:", *args.variant]]
    print(f"{args.config}, backend {args.backend}, {torch.get_num_threads()} threads: "
          + ", ".join(f"{kind} {len(seqs)} sequences ({sum(len(s) for s in seqs)} frames)"
                      for kind, seqs in sequences.items() if seqs), flush=True)
    scores: dict[str, dict[str, dict]] = {}
    for name, sets in variants:
        if args.only and name not in args.only:
            continue
        scores[name] = {}
        for kind, seqs in sequences.items():
            rows = [(seq.name, *tracked(args.config, sets, args.backend, seq, cache), seq.boxes[1:])
                    for seq in tqdm(seqs, desc=f"{name} {kind}", leave=False)]
            curves = [sequence_curves(boxes, truth) for _, boxes, _, truth in rows]
            frames = sum(len(truth) for *_, truth in rows)
            scores[name][kind] = {"names": [r[0] for r in rows], "aucs": np.array([c.success_auc for c in curves]),
                                  "mean": mean_curves(curves) if curves else None,
                                  "fps": fps(frames, sum(r[2] for r in rows))}
    report(scores, variants, args.per_sequence)


def report(scores: dict, variants: list, per_sequence: bool) -> None:
    base = scores.get(BASELINE)
    for name, sets in variants:
        if name not in scores:
            continue
        cells = []
        for kind, s in scores[name].items():
            if s["mean"] is None:
                continue
            cell = f"{kind} {s['mean'].success_auc:.3f} / {s['mean'].precision_score:.3f}"
            if base is not None and name != BASELINE:
                cell += f" [{summary(s['aucs'], base[kind]['aucs'])}]"
            cells.append(cell + f" {s['fps']:.0f} fps")
        print(f"{name:18s} " + "  ".join(cells) + f"  {' '.join(sets)}", flush=True)
    if per_sequence:
        for kind in next(iter(scores.values())):
            names = next(iter(scores.values()))[kind]["names"]
            print(f"\n{kind}: success AUC per sequence\n| sequence | " + " | ".join(scores) + " |")
            print("|---" * (len(scores) + 1) + "|")
            for i, seq in enumerate(names):
                print(f"| {seq} | " + " | ".join(f"{scores[v][kind]['aucs'][i]:.3f}" for v in scores) + " |")


if __name__ == "__main__":
    main()
