"""K-fold cross-validation of a training recipe on a small dataset, where a held-out split is too small to trust.

The sequences are dealt into K folds. `train` trains one model per fold on the other folds' sequences
(plus one on all of them: the model to ship), several at once; `score` tracks every sequence with the
model that never saw it, so each sequence counts once, and prints the mean success AUC and precision
next to the same tracker without training. `score --scale-picks N` also asks each model, on N pairs of
its held-out sequences, which of 5 search scales around the true one holds the target: box size is what
SiamFC gets wrong, and a model whose responses cannot tell scales apart cannot size its box.

    python tools/cross_validate.py train --config siamfc_lite0 --data ../shared/data/train_mini \
        --out runs/cv_lite0 --set model.adjust=112 --set train.freeze_backbone=true
    python tools/cross_validate.py score --out runs/cv_lite0 --baseline tools/configs/imagenet_lite0.yaml

Tracker settings, which need no training, are chosen by tools/choose.py (family by family, on train_mini +
train_more, val_long and val_motion), never on the test set.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from siamtrack import TrackerSpec
from siamtrack.core.backends import BACKENDS
from siamtrack.core.crops import context_crop
from siamtrack.core.frame_loop import track_frames
from siamtrack.core.tracker import SiamFCTracker
from siamtrack.datasets import load_sequences
from siamtrack.evaluation.metrics import mean_curves, sequence_curves, with_true_sizes
from siamtrack.inputs import read_rgb
from siamtrack.training.pairs import pair_sources, sample_pair

FOLDS = "folds.json"
SCALE_OFFSETS = np.arange(-2, 3)  # the search scales of the scale check, in tracker scale steps


def deal_folds(names: list[str], k: int) -> list[list[str]]:
    """Sorted names dealt round-robin: the folds are fixed by the data, not by a seed."""
    names = sorted(names)
    return [names[i::k] for i in range(k)]


def link_sequences(data: Path, names: list[str], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        link = folder / name
        if not link.exists():
            link.symlink_to((data / name).resolve(), target_is_directory=True)


def train(args: argparse.Namespace) -> None:
    data, out = Path(args.data), Path(args.out)
    names = [seq.name for seq in load_sequences(data)]
    folds = deal_folds(names, args.folds)
    out.mkdir(parents=True, exist_ok=True)
    (out / FOLDS).write_text(json.dumps({"data": str(data.resolve()), "folds": folds}, indent=1))
    runs = {f"fold{k}": [n for n in names if n not in held] for k, held in enumerate(folds)}
    runs["all"] = names
    commands = {}
    for run, train_names in runs.items():
        link_sequences(data, train_names, out / run / "data")
        commands[run] = [sys.executable, "-m", "siamtrack", "train", "--config", args.config, "--quiet",
                         "--data", str(out / run / "data"), "--out", str(out / run / "run"), "--device", args.device,
                         *(a for kv in args.set for a in ("--set", kv))]
    logs = [out / run / "train.log" for run in commands]
    with ThreadPoolExecutor(args.parallel) as pool:  # threads only wait: the training runs in subprocesses
        codes = dict(zip(commands, pool.map(run_logged, commands.values(), logs)))
    for run, code in codes.items():
        print(f"{run}: exit {code}")
    failed = [run for run, code in codes.items() if code]
    if failed:
        sys.exit(f"error: training failed for {', '.join(failed)} (see their train.log)")


def run_logged(command: list[str], log_path: Path) -> int:
    with open(log_path, "w") as log:
        return subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode


def track_sequences(tracker: SiamFCTracker, sequences) -> list[tuple[np.ndarray, np.ndarray]]:
    """(tracked boxes, true boxes) of each sequence, the given first frame left out."""
    tracks = []
    for seq in sequences:
        frames = (read_rgb(path) for path in seq.frames)
        boxes = np.array([box for _, _, box, _ in track_frames(tracker, frames, seq.boxes[0])])
        tracks.append((boxes[1:], seq.boxes[1:]))
    return tracks


def scale_picks(tracker: SiamFCTracker, sequences, pairs: int, seed: int) -> np.ndarray:
    """For `pairs` exemplar/search frame pairs: the offset (in scale steps) of the search scale whose
    response peaks highest at the target, the search crops centred on it at SCALE_OFFSETS around its
    true size. 0 is right; a model blind to scale picks each offset about equally often."""
    t = tracker.cfg.track
    gap = tracker.cfg.train.max_gap
    sources = pair_sources(list(sequences), gap)
    rng = np.random.default_rng(seed)
    picks = []
    for _ in range(pairs):
        seq, i, j = sample_pair(sources, gap, rng)
        frame_z, frame_x = read_rgb(seq.frames[i]), read_rgb(seq.frames[j])
        z = context_crop(frame_z, seq.boxes[i], t.context, 1.0, t.exemplar_size)
        search = t.search_size / t.exemplar_size
        xs = np.stack([context_crop(frame_x, seq.boxes[j], t.context, search * t.scale_step ** o, t.search_size)
                       for o in SCALE_OFFSETS])
        with torch.inference_mode():
            backend = tracker.model.backend
            kernels = backend.embed_exemplar(torch.from_numpy(z.transpose(2, 0, 1)[None].astype(np.float32)))
            search = backend.embed_search(torch.from_numpy(xs.transpose(0, 3, 1, 2).astype(np.float32)))
            responses = backend.correlate(kernels, search)[0][:, 0]  # the deep level's
        c = (responses.shape[-1] - 1) // 2
        peaks = responses[:, c - 1:c + 2, c - 1:c + 2].amax(dim=(1, 2))  # at the target, give or take a cell
        picks.append(SCALE_OFFSETS[int(torch.argmax(peaks))])
    return np.array(picks)


def tracker_for(config: str | None, weights: Path | None, overrides: list[str], backend: str) -> SiamFCTracker:
    """A tracker from a config, or from the config a checkpoint stores, with `overrides` applied."""
    return TrackerSpec(config, weights and str(weights), tuple(overrides), "cpu", backend).build()


def score(args: argparse.Namespace) -> None:
    out = Path(args.out)
    plan = json.loads((out / FOLDS).read_text())
    sequences = {seq.name: seq for seq in load_sequences(args.data or plan["data"])}
    tracks = {"trained": [], "baseline": []}
    picks = {"trained": [], "baseline": []}
    base = tracker_for(args.baseline, None, args.set, args.backend) if args.baseline else None
    for k, held in enumerate(tqdm(plan["folds"], desc="folds")):
        seqs = [sequences[name] for name in held]
        model = tracker_for(None, out / f"fold{k}" / "run" / args.checkpoint, args.set, args.backend)
        for key, tracker in [("trained", model), ("baseline", base)]:
            if tracker is not None:
                tracks[key] += track_sequences(tracker, seqs)
                if args.scale_picks:
                    picks[key].append(scale_picks(tracker, seqs, args.scale_picks, seed=k))
    rows = [("trained, cross-validated", tracks["trained"])]
    if args.size_bound:
        rows.append(("trained, true sizes at its centres", [(with_true_sizes(b, t), t) for b, t in tracks["trained"]]))
    if base is not None:
        rows.append((f"baseline {args.baseline}", tracks["baseline"]))
    print(f"{len(sequences)} sequences in {len(plan['folds'])} folds, checkpoint {args.checkpoint}",
          f"backend {args.backend}", " ".join(args.set))
    for label, tracked in rows:
        m = mean_curves([sequence_curves(boxes, truth) for boxes, truth in tracked])
        print(f"{label:45s} success AUC {m.success_auc:.3f}  precision@20 {m.precision_score:.3f}")
    for key, folds in picks.items():
        if folds:
            chosen = np.concatenate(folds)
            shares = " ".join(f"{o:+d}: {np.mean(chosen == o):.2f}" for o in SCALE_OFFSETS)
            print(f"{key:9s} picks the true scale {np.mean(chosen == 0):.2f} of {len(chosen)} times "
                  f"(chance {1 / len(SCALE_OFFSETS):.2f}; by offset in steps {shares})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="one training run per fold, and one on all the data")
    p.add_argument("--config", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--parallel", type=int, default=1, help="training runs at once")
    p.add_argument("--device", default="auto")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p = sub.add_parser("score", help="track each sequence with the fold model that never saw it")
    p.add_argument("--out", required=True)
    p.add_argument("--data", help="where to read the sequences (default: the folder trained on)")
    p.add_argument("--checkpoint", default="best.pt", help="best.pt (lowest validation loss) or last.pt")
    p.add_argument("--baseline", help="a config to score on the same sequences, e.g. the untrained trunk")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="tracker settings for every model scored, e.g. track.scale_num=5")
    p.add_argument("--size-bound", action="store_true",
                   help="also score the tracked centres with the true box sizes: what box size costs")
    p.add_argument("--scale-picks", type=int, default=0, metavar="PAIRS",
                   help="also check, on PAIRS pairs of each fold's held-out sequences, how often the response "
                        "picks the true one of 5 search scales (the tracker's step apart)")
    p.add_argument("--backend", default="torch", choices=BACKENDS,
                   help="inference backend (default torch: eager's boxes, 3x faster)")
    args = parser.parse_args()
    {"train": train, "score": score}[args.command](args)


if __name__ == "__main__":
    main()
