"""Choose the lost signal (track.verifier) by cross-validation on cached cues.

`record` tracks every sequence of the --data folders (OTB layout, or long-term folders in LaSOT's layout
from tools/make_longterm.py) with each --config, the verifier computing its cues on every update but never
judging a target lost, and the search off: per update the IoU with the ground truth, whether the target is
absent, the score and the cues (siamtrack.config.LOST_CUES). One .npz per config and folder in --cache.

`fit` learns the logistic classifier of the verifier on the --train folders' cues: a frame is failed where
the target is absent or the box's IoU < 0.1, tracked where its IoU >= 0.5 (the frames between are left
out). Cues are standardised, an L2 penalty and the cues used are chosen by cross-validation with folds by
host sequence (a long-term sequence and its host's other versions fall in one fold), and the threshold is
the lowest p(failed) flagging at most --tracked-flagged of the held-out tracked frames. Each --validate
folder is then scored at that setting (never chosen on), beside the rule siamtrack used before
(track.lost_ratio, lost_drop): absent frames flagged, tracked frames flagged, and the flag's precision and
recall against the frames where the target is there and the box failed (issue 23). It prints the weights
to put in the config (track.verifier).

    python tools/lost_signal.py record --config siamfc_lite0_fast siamfc_lite0 \
        --data /tmp/longterm/train /tmp/longterm/val_long ../shared/data/val_long
    python tools/lost_signal.py fit --config siamfc_lite0_fast --train train --validate val_long_lt val_long
"""
from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from siamtrack.config import LOST_CUES, load_config
from siamtrack.core.frame_loop import track_frames
from siamtrack.core.tracker import SiamFCTracker
from siamtrack.datasets import load_sequences, read_frames
from siamtrack.evaluation.longterm import FAILED_IOU, TRACKED_IOU
from siamtrack.evaluation.metrics import overlaps
from siamtrack.process import use_threads

RECORDING = ("track.verifier.kind=classifier", "track.verifier.bias=-1000", "track.redetect.tiles=0")  # cues
# on every update, never lost (p(failed) about e^-1000), no search
FOLDS = 5
# not offered to the classifier: recorded with no flags, a target's recent scores take in its absent frames,
# whereas the tracker keeps a lost target's scores out of them, so this cue's recorded values are not its own
LEFT_OUT = ("score_vs_recent",)
PENALTIES = (0.01, 0.1, 1.0, 10.0)  # L2, on standardised cues, per frame
STEPS = 300  # Newton steps at most


# --- record

class Recorder:
    """A tracker whose lost targets' candidates (their best peak in their tiles) are kept, taken or not."""

    def __init__(self, config: str, overrides: tuple[str, ...]):
        self.tracker = SiamFCTracker(config, device="cpu", overrides=overrides, quiet=True)
        self.candidate = None
        best = self.tracker.redetector.best

        def keep(*args):
            found = best(*args)
            self.candidate = found[3][0]
            return found
        self.tracker.redetector.best = keep


def record_folder(config: str, folder: Path, overrides: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Per update of every sequence of a folder: sequence index, frame, IoU of the box (0 where absent),
    absent, score, whether the update searched for the target (lost before it) and judged it lost, the IoU of
    its candidate (NaN unless it searched), and the cues."""
    recorder = Recorder(config, overrides)
    tracker = recorder.tracker
    sequences = load_sequences(folder, split="test")
    rows = []
    for s, seq in enumerate(tqdm(sequences, desc=f"{Path(config).stem} {folder.name}", unit="seq")):
        searched = False
        for index, _, box, _ in track_frames(tracker, read_frames(seq.frames), seq.boxes[0]):
            if index:
                truth = seq.boxes[index]
                iou = 0.0 if seq.absent[index] else float(overlaps(box, truth)[0])
                candidate = np.nan
                if searched:
                    centre, size = recorder.candidate, box[2:]
                    candidate = 0.0 if seq.absent[index] else float(overlaps([*(centre - size / 2), *size], truth)[0])
                rows.append([s, index, iou, seq.absent[index], tracker.score, searched, tracker.lost, candidate,
                             *tracker.targets.cues[0]])
            searched = bool(tracker.lost) and tracker.redetector.on
    table = np.array(rows, dtype=np.float64)
    return {"sequence": table[:, 0].astype(int), "frame": table[:, 1].astype(int), "iou": table[:, 2],
            "absent": table[:, 3].astype(bool), "score": table[:, 4], "searched": table[:, 5].astype(bool),
            "lost": table[:, 6].astype(bool), "candidate_iou": table[:, 7], "cues": table[:, 8:],
            "names": np.array([seq.name for seq in sequences])}


def cache_path(cache: Path, config: str, folder: str, tag: str = "") -> Path:
    return cache / f"{Path(config).stem}{'_' + tag if tag else ''}__{folder}.npz"


def record(args: argparse.Namespace) -> None:
    overrides = tuple(args.overrides) if args.deployed else RECORDING
    for config in args.config:
        for folder in args.data:
            path = cache_path(args.cache, config, folder.name, args.tag)
            if path.is_file() and not args.fresh:
                continue
            args.cache.mkdir(parents=True, exist_ok=True)
            np.savez(path, **record_folder(config, folder, overrides))


# --- fit

def load(cache: Path, config: str, folder: str) -> dict[str, np.ndarray]:
    with np.load(cache_path(cache, config, folder)) as data:
        found = dict(data)
    found["host"] = np.array([host_of(str(found["names"][s])) for s in found["sequence"]])
    return found


def host_of(name: str) -> str:
    """The sequence a long-term one was made from (cut-X, skip-X: X)."""
    kind, _, host = name.partition("-")
    return host if kind in ("cut", "skip") and host else name


def labels(data: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(failed, used): failed where absent or IoU < FAILED_IOU; used where failed or IoU >= TRACKED_IOU."""
    failed = data["absent"] | (data["iou"] < FAILED_IOU)
    return failed, failed | (data["iou"] >= TRACKED_IOU)


def fit_logistic(x: np.ndarray, y: np.ndarray, penalty: float) -> np.ndarray:
    """Weights (bias last) of an L2-penalised logistic regression, by Newton's method; each class weighed as
    much as the other."""
    design = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    balance = np.where(y, 0.5 / max(y.sum(), 1), 0.5 / max((~y).sum(), 1))
    w = np.zeros(design.shape[1])
    ridge = penalty * np.eye(len(w)) / len(x)
    ridge[-1, -1] = 0.0
    for _ in range(STEPS):
        p = 1 / (1 + np.exp(-design @ w))
        gradient = design.T @ (balance * (p - y)) + ridge @ w
        hessian = (design * (balance * p * (1 - p))[:, None]).T @ design + ridge
        change = np.linalg.solve(hessian + 1e-9 * np.eye(len(w)), gradient)
        w -= change
        if np.abs(change).max() < 1e-8:
            break
    return w


def standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.mean(axis=0), np.maximum(x.std(axis=0), 1e-9)


def threshold_for(p: np.ndarray, tracked: np.ndarray, allowed: float) -> float:
    """The lowest p(failed) threshold flagging at most `allowed` of the tracked frames."""
    values = np.sort(p[tracked])[::-1]
    index = int(np.floor(allowed * len(values)))
    return float(values[index]) + 1e-12 if index < len(values) else 0.0


def folds_of(hosts: np.ndarray) -> np.ndarray:
    names = sorted(set(hosts.tolist()))
    order = np.random.default_rng(0).permutation(len(names))
    fold = {name: int(order[i] % FOLDS) for i, name in enumerate(names)}
    return np.array([fold[h] for h in hosts])


def cross_validated(x: np.ndarray, y: np.ndarray, used: np.ndarray, hosts: np.ndarray, cues: list[int],
                    penalty: float, allowed: float) -> dict[str, float]:
    """Held-out scores of a cue set and penalty, each fold's threshold chosen on its own training folds."""
    folds = folds_of(hosts)
    flagged = np.zeros(len(y), dtype=bool)
    for k in range(FOLDS):
        train, test = (folds != k) & used, folds == k
        mean, scale = standardise(x[train][:, cues])
        w = fit_logistic((x[train][:, cues] - mean) / scale, y[train], penalty)
        p_train = 1 / (1 + np.exp(-(((x[train][:, cues] - mean) / scale) @ w[:-1] + w[-1])))
        cut = threshold_for(p_train, ~y[train], allowed)
        p = 1 / (1 + np.exp(-(((x[test][:, cues] - mean) / scale) @ w[:-1] + w[-1])))
        flagged[test] = p >= cut
    return scores(flagged, y, used)


def scores(flagged: np.ndarray, failed: np.ndarray, used: np.ndarray, absent: np.ndarray | None = None) -> dict:
    tracked = used & ~failed
    found = {"failed flagged": share(flagged & failed & used, failed & used),
             "tracked flagged": share(flagged & tracked, tracked)}
    if absent is not None:
        present_failed = failed & ~absent
        found.update({"absent flagged": share(flagged & absent, absent),
                      "precision (IoU<0.1)": share(flagged & present_failed, flagged & ~absent),
                      "recall (IoU<0.1)": share(flagged & present_failed, present_failed)})
    return found


def share(part: np.ndarray, whole: np.ndarray) -> float:
    return float(part.sum() / whole.sum()) if whole.sum() else float("nan")


def rule_flags(data: dict[str, np.ndarray], ratio: float, drop: float, window: int) -> np.ndarray:
    """The rule of track.lost_ratio / lost_drop / lost_window, replayed on the recorded scores."""
    flags = np.zeros(len(data["score"]), dtype=bool)
    for s in np.unique(data["sequence"]):
        rows = np.flatnonzero(data["sequence"] == s)
        scores_, kept = data["score"][rows], []
        for i, score in zip(rows, scores_):
            flags[i] = score < ratio * scores_[0] or (bool(kept) and score < drop * np.median(kept[-window:]))
            if not flags[i]:
                kept.append(score)
    return flags


def fit(args: argparse.Namespace) -> None:
    for config in args.config:
        train = [load(args.cache, config, folder) for folder in args.train]
        x = np.concatenate([d["cues"] for d in train])
        failed, used = (np.concatenate(part) for part in zip(*map(labels, train)))
        hosts = np.concatenate([d["host"] for d in train])
        print(f"\n{Path(config).stem}: {used.sum()} frames of {' + '.join(args.train)} ({failed[used].sum()} failed, "
              f"{(used & ~failed).sum()} tracked); {FOLDS} folds by host sequence; threshold: at most "
              f"{args.tracked_flagged:.0%} of the training folds' tracked frames flagged")
        offered = [i for i, cue in enumerate(LOST_CUES) if cue not in LEFT_OUT]
        subsets = [list(c) for r in range(1, args.max_cues + 1) for c in itertools.combinations(offered, r)]
        best = None
        for cues in tqdm(subsets, desc="cue sets", leave=False):
            for penalty in PENALTIES:
                found = cross_validated(x, failed, used, hosts, cues, penalty, args.tracked_flagged)
                key = found["failed flagged"] - 10 * max(0.0, found["tracked flagged"] - args.tracked_flagged)
                if best is None or key > best[0] + 1e-9:
                    best = (key, cues, penalty, found)
        _, cues, penalty, found = best
        names = [LOST_CUES[c] for c in cues]
        print(f"  chosen: {', '.join(names)}, L2 {penalty}; cross-validated: " + fmt(found))
        mean, scale = standardise(x[used][:, cues])
        w = fit_logistic((x[used][:, cues] - mean) / scale, failed[used], penalty)
        raw = w[:-1] / scale
        bias = w[-1] - float((w[:-1] * mean / scale).sum())
        p = 1 / (1 + np.exp(-(x[used][:, cues] @ raw + bias)))
        cut = threshold_for(p, ~failed[used], args.tracked_flagged)
        print("  config (track.verifier):")
        print("    kind: classifier\n    weights: {" + ", ".join(f"{n}: {v:.4g}" for n, v in zip(names, raw)) + "}")
        print(f"    bias: {bias:.4g}\n    threshold: {cut:.4g}")
        t = load_config(config).track
        for folder in args.validate:
            data = load(args.cache, config, folder)
            f, u = labels(data)
            flags = 1 / (1 + np.exp(-(data["cues"][:, cues] @ raw + bias))) >= cut
            rule = rule_flags(data, t.lost_ratio, t.lost_drop, t.lost_window)
            print(f"  {folder} ({len(f)} updates, {data['absent'].sum()} absent, {(f & ~data['absent']).sum()} "
                  f"present failed): classifier " + fmt(scores(flags, f, u, data["absent"])))
            print(f"  {'':{len(folder)}} {'':{len(str(len(f)))}}   rule ({t.lost_ratio}/{t.lost_drop}/{t.lost_window}) "
                  + fmt(scores(rule, f, u, data["absent"])))


def fmt(found: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in found.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="track and cache the cues")
    rec.add_argument("--data", nargs="+", required=True, type=Path)
    rec.add_argument("--fresh", action="store_true", help="track again even where cues are cached")
    rec.add_argument("--deployed", action="store_true", help="the config's own verifier and search (with --set), "
                                                             "not the recording's cues-only tracker")
    rec.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    rec.add_argument("--tag", default="", help="names the cache files of a --deployed recording")
    learn = sub.add_parser("fit", help="choose and fit the classifier on cached cues")
    learn.add_argument("--train", nargs="+", required=True, help="cached folder names to fit and cross-validate on")
    learn.add_argument("--validate", nargs="*", default=[], help="cached folder names to score at the chosen setting")
    learn.add_argument("--tracked-flagged", type=float, default=0.02,
                       help="the share of tracked frames the threshold may flag (default 0.02)")
    learn.add_argument("--max-cues", type=int, default=len(LOST_CUES), help="cues in a set, at most")
    for command in (rec, learn):
        command.add_argument("--config", nargs="+", required=True, help="shipped config names or YAML paths")
        command.add_argument("--cache", type=Path, default=Path("/tmp/lost_signal"), help="where the cues are kept")
    args = parser.parse_args()
    use_threads(1)
    torch.manual_seed(0)
    (record if args.command == "record" else fit)(args)


if __name__ == "__main__":
    main()
