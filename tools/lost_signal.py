"""Choose the lost signal (track.verifier) by cross-validation on cached cues.

`record` tracks every sequence of the --data folders (OTB layout, or long-term folders in LaSOT's layout
from tools/make_longterm.py) with each --config and caches, per update, the IoU of the box with the ground
truth, whether the target is absent, the score and the verifier's cues (siamtrack.config.LOST_CUES). By
default the tracker computes the cues but never judges a target lost and does not search (the cues of every
frame); with --deployed it runs the config's verifier and search (and --set overrides), and each update
also records whether it searched for a lost target and the IoU of the candidate it weighed: the frames a
verifier meets when it is in use. One .npz per config, --tag and folder in --cache.

`fit` learns, on the --train folders' cues, the lost classifier (a tracked frame is failed where the
target is absent or IoU < 0.1, tracked where IoU >= 0.5; the threshold flags at most --tracked-flagged of
the tracked frames) and, from a --deployed recording, the found classifier (a candidate is the target at
IoU >= 0.5, not it where absent or IoU < 0.1; the threshold takes back candidates of which at least
--accept-precision are the target). For each, the cues (every subset up to --max-cues, each weight of the
sign its cue calls for) and the L2 penalty are chosen by 5-fold cross-validation with folds by host
sequence (a long-term sequence and its host's other version fall in one fold). It prints the config
(track.verifier) and scores each --validate folder at that setting beside the score rule (track.lost_ratio,
lost_drop, lost_window): absent and tracked frames flagged, and the flag's precision and recall against the
frames where the target is there and the box failed (issue 23). Choose on training data and validate on
val_long, never on otb_mini.

`rule` chooses the score rule's track.lost_ratio and lost_drop (lost_window as the config has it) on the
--train folders' recordings, the rule replayed on the recorded scores (the boxes do not depend on it while
the search is off): of the settings that flag at most --tracked-flagged of each folder's tracked frames
(short-term folders too: there a flag can only be a failure or a false alarm), the one flagging the most
absent frames (the mean over the long-term folders). It prints the long-term measures
(siamtrack.evaluation.longterm) of the config's setting and the chosen one on every --train and --validate
folder.

`onset` chooses track.verifier.onset_drop for a classifier (the config's, or one `fit` printed, given with
--set), the rule and it judging (kind both), the verifier replayed on the recorded cues: of the settings under
which no sequence of any --train folder loses F-score against the rule alone, the one flagging the most absent
frames. A flag moves no box while the search is off, so the short-term folders' success AUC cannot change;
their F-score counts the false alarms.

`returns` tells, from a --deployed recording, how each return of the target fared: recovered (as eval counts
it), failed before (the box had left the target before it went), refused (the search held a candidate on the
target and did not take it back), or not found; counted by the kind of sequence (cut, skip).

    python tools/lost_signal.py record --config siamfc_lite0_fast --data runs/lt_train
    python tools/lost_signal.py fit --config siamfc_lite0_fast --train lt_train --max-cues 5
    python tools/lost_signal.py record --deployed --tag c1 --config siamfc_lite0_fast --data runs/lt_train \
        --set track.verifier.kind=both ...
    python tools/lost_signal.py fit --config siamfc_lite0_fast --tag c1 --train lt_train --kind both
    python tools/lost_signal.py rule --config siamfc_lite0 --train lt_train lt_val_long --validate val_long
    python tools/lost_signal.py onset --config siamfc_lite0_fast --train lt_train lt_val_long val_long val_motion
    python tools/lost_signal.py returns --config siamfc_lite0_fast --tag c1 --data lt_train
"""
from __future__ import annotations

import argparse
import itertools
from collections import Counter, deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from siamtrack.config import LOST_CUES, TrackConfig, load_config
from siamtrack.core.frame_loop import track_frames
from siamtrack.core.targets import ScoreHistory
from siamtrack.core.tracker import SiamFCTracker
from siamtrack.core.verifier import Verifier, logistic
from siamtrack.datasets import load_sequences, read_frames
from siamtrack.evaluation.longterm import (COLUMNS, FAILED_IOU, TRACKED_IOU, LongTermCounts, after_return, counts_of,
                                           recovered, returns_of)
from siamtrack.evaluation.metrics import overlaps
from siamtrack.process import use_threads

RECORDING = ("track.verifier.kind=classifier", "track.verifier.bias=-1000", "track.verifier.onset_drop=0",
             "track.redetect.tiles=0")  # cues on every update, never lost (p(failed) about e^-1000), no search
FOLDS = 5
# not offered to the classifier: recorded with no flags, a target's recent scores take in its absent frames,
# whereas the tracker keeps a lost target's scores out of them, so this cue's recorded values are not its own
LEFT_OUT = ("score_vs_recent",)
PENALTIES = (0.01, 0.1, 1.0, 10.0)  # L2, on standardised cues, per frame
# the sign each cue's weight must have (towards failed, or not the target): a set whose fit gives one the other
# sign (cues that stand in for one another) is not chosen, so that no cue counts against what it measures
SIGNS = {"score_vs_first": -1, "score_vs_recent": -1, "sidelobe": 1, "sharpness": -1, "level_agreement": -1,
         "cosine": -1, "colour": -1, "jump": 1}
STEPS = 300  # Newton steps at most
RULE_RATIOS = (0.225, 0.3, 0.35, 0.375, 0.4, 0.425, 0.45, 0.5)  # track.lost_ratio, lost_drop: the rule's grid
RULE_DROPS = (0.5, 0.55, 0.575, 0.6, 0.625, 0.65)
ONSET_DROPS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75)  # track.verifier.onset_drop: its grid
F_TOLERANCE = 0.001  # the F-score a sequence may lose to a setting (rounding) and still count as holding


# --- record

class Recorder:
    """A tracker whose lost targets' candidates (their best peak in their tiles) are kept, taken or not."""

    def __init__(self, config: str, overrides: tuple[str, ...]):
        self.tracker = SiamFCTracker(config, device="cpu", overrides=overrides, quiet=True)
        self.candidate = None
        best = self.tracker.lost_found.redetector.best

        def keep(*args):
            found = best(*args)
            self.candidate = found[3][0]
            return found
        self.tracker.lost_found.redetector.best = keep


def record_folder(config: str, folder: Path, overrides: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Per update of every sequence of a folder: sequence index, frame, IoU of the box (0 where absent),
    absent, score, whether the update searched for the target (held by the update before it) and judged it
    lost, the IoU of its candidate (NaN unless it searched), and the cues."""
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
            searched = bool(tracker.lost_found.held(tracker.targets)[0])  # the next update searches for it
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

def load(cache: Path, config: str, folder: str, tag: str = "") -> dict[str, np.ndarray]:
    with np.load(cache_path(cache, config, folder, tag)) as data:
        found = dict(data)
    found["host"] = np.array([host_of(str(found["names"][s])) for s in found["sequence"]])
    return found


def host_of(name: str) -> str:
    """The sequence a long-term one was made from (cut-X, skip-X: X)."""
    kind, _, host = name.partition("-")
    return host if kind in ("cut", "skip") and host else name


def labels(data: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(failed, used): failed where absent or IoU < FAILED_IOU; used where failed or IoU >= TRACKED_IOU, the
    update tracked the target (a --deployed recording's updates that searched for it are candidates') and its
    cues were read (a --deployed recording with an onset_drop reads them only where the classifier's word counts)."""
    failed = data["absent"] | (data["iou"] < FAILED_IOU)
    tracking = ~data["searched"] if "searched" in data else np.ones(len(failed), dtype=bool)
    return failed, (failed | (data["iou"] >= TRACKED_IOU)) & tracking & np.isfinite(data["cues"]).all(axis=1)


def fit_logistic(x: np.ndarray, y: np.ndarray, penalty: float) -> np.ndarray:
    """Weights (bias last) of an L2-penalised logistic regression, by Newton's method; each class weighed as
    much as the other."""
    design = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    balance = np.where(y, 0.5 / max(y.sum(), 1), 0.5 / max((~y).sum(), 1))
    w = np.zeros(design.shape[1])
    ridge = penalty * np.eye(len(w)) / len(x)
    ridge[-1, -1] = 0.0
    for _ in range(STEPS):
        p = probability(design[:, :-1], w)
        gradient = design.T @ (balance * (p - y)) + ridge @ w
        hessian = (design * (balance * p * (1 - p))[:, None]).T @ design + ridge
        change = np.linalg.solve(hessian + 1e-9 * np.eye(len(w)), gradient)
        w -= change
        if np.abs(change).max() < 1e-8:
            break
    return w


def standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.mean(axis=0), np.maximum(x.std(axis=0), 1e-9)


def probability(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The logistic p of each row of (standardised) cues, the bias last in `w`: the verifier's."""
    return logistic(x @ w[:-1] + w[-1])


def flag_at_most(allowed: float) -> Callable[[np.ndarray, np.ndarray], float]:
    """The lost classifier's threshold rule: the lowest p(failed) flagging at most `allowed` of the tracked
    frames (the negatives)."""
    def rule(p: np.ndarray, positive: np.ndarray) -> float:
        values = np.sort(p[~positive])[::-1]
        index = int(np.floor(allowed * len(values)))
        return float(values[index]) + 1e-12 if index < len(values) else 0.0
    return rule


def taken_at_least(precision: float) -> Callable[[np.ndarray, np.ndarray], float]:
    """The found classifier's threshold rule: the highest p(not the target) under which at least `precision`
    of the candidates taken back are the target (the negatives)."""
    def rule(p: np.ndarray, positive: np.ndarray) -> float:
        order = np.argsort(p, kind="stable")
        right = np.cumsum(~positive[order]) / np.arange(1, len(order) + 1)
        reach = np.flatnonzero(right >= precision)
        return float(p[order][reach[-1]]) + 1e-12 if len(reach) else 0.0
    return rule


def folds_of(hosts: np.ndarray) -> np.ndarray:
    names = sorted(set(hosts.tolist()))
    order = np.random.default_rng(0).permutation(len(names))
    fold = {name: int(order[i] % FOLDS) for i, name in enumerate(names)}
    return np.array([fold[h] for h in hosts])


def held_out(x: np.ndarray, positive: np.ndarray, used: np.ndarray, hosts: np.ndarray, cues: list[int],
             penalty: float, threshold: Callable) -> np.ndarray:
    """Each used frame's decision (p >= the threshold) by the model fitted, and thresholded, on the other folds."""
    folds = folds_of(hosts)
    decided = np.zeros(len(x), dtype=bool)
    for k in range(FOLDS):
        train, test = (folds != k) & used, (folds == k) & used
        if not train.any() or not test.any():
            continue
        mean, scale = standardise(x[train][:, cues])
        w = fit_logistic((x[train][:, cues] - mean) / scale, positive[train], penalty)
        cut = threshold(probability((x[train][:, cues] - mean) / scale, w), positive[train])
        decided[test] = probability((x[test][:, cues] - mean) / scale, w) >= cut
    return decided


@dataclass
class Task:
    """One classifier to choose: the frames it learns from (positive: failed, or not the target), the cues it
    may weigh, how its threshold is set, and what it should make most of."""
    name: str
    x: np.ndarray
    positive: np.ndarray
    used: np.ndarray
    hosts: np.ndarray
    offered: list[int]
    threshold: Callable[[np.ndarray, np.ndarray], float]
    key: Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[float, str]]  # (decided, positive, used)

    def choose(self, max_cues: int) -> tuple[list[int], float, str]:
        """The cue set and penalty of the best cross-validated key, and what it scored."""
        best = None
        for r in range(1, max_cues + 1):
            for cues in tqdm(list(itertools.combinations(self.offered, r)), desc=f"{self.name}: {r} cues", leave=False):
                for penalty in PENALTIES:
                    raw, _, _ = self.fit(list(cues), penalty)
                    if any(SIGNS[LOST_CUES[c]] * w < 0 for c, w in zip(cues, raw)):
                        continue
                    decided = held_out(self.x, self.positive, self.used, self.hosts, list(cues), penalty, self.threshold)
                    key, said = self.key(decided, self.positive, self.used)
                    if best is None or key > best[0] + 1e-9:
                        best = (key, list(cues), penalty, said)
        return best[1], best[2], best[3]

    def fit(self, cues: list[int], penalty: float) -> tuple[np.ndarray, float, float]:
        """Weights on the raw cues, bias and threshold, fitted on every used frame."""
        x = self.x[self.used][:, cues]
        mean, scale = standardise(x)
        w = fit_logistic((x - mean) / scale, self.positive[self.used], penalty)
        raw, bias = w[:-1] / scale, w[-1] - float((w[:-1] * mean / scale).sum())
        return raw, bias, self.threshold(probability(x, np.append(raw, bias)), self.positive[self.used])


def lost_key(allowed: float):
    def key(flagged: np.ndarray, failed: np.ndarray, used: np.ndarray) -> tuple[float, str]:
        caught, false = share(flagged & failed & used, failed & used), share(flagged & ~failed & used, ~failed & used)
        return caught - 10 * max(0.0, false - allowed), f"failed flagged {caught:.3f}, tracked flagged {false:.3f}"
    return key


def found_key(precision: float):
    def key(rejected: np.ndarray, bad: np.ndarray, used: np.ndarray) -> tuple[float, str]:
        taken = used & ~rejected
        right, reach = share(taken & ~bad, taken), share(taken & ~bad, used & ~bad)
        return reach - 10 * max(0.0, precision - right), f"good candidates taken {reach:.3f}, of those taken good {right:.3f}"
    return key


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


def verdicts(data: dict[str, np.ndarray], track: TrackConfig) -> np.ndarray:
    """The tracker's verdicts (Verifier.verdict: the score rule at track.lost_ratio / lost_drop / lost_window, and
    where the kind lets it judge a tracked target, the classifier on the recorded cues, from an onset on with
    track.verifier.onset_drop), replayed on a recording: each sequence's first score its reference, a score
    judged lost kept out of the recent ones. While the search is off the boxes, and so the cues, do not depend on
    the verdicts; the recording's score_vs_recent does (LEFT_OUT), and no shipped classifier weighs it."""
    verifier = Verifier(track)
    failed = verifier.failed_probability(data["cues"]) if verifier.classifier else None
    flags = np.zeros(len(data["score"]), dtype=bool)
    for s in np.unique(data["sequence"]):
        rows = np.flatnonzero(data["sequence"] == s)
        reference, recent = data["score"][rows[:1]], deque(maxlen=track.lost_window)
        previous, was_lost = np.full(1, np.nan), np.zeros(1, dtype=bool)
        for i in rows:
            score = data["score"][i:i + 1]
            history = ScoreHistory(score, reference, [recent], previous, was_lost)
            flags[i] = verifier.verdict(history, None if failed is None else failed[i:i + 1])[0]
            if not flags[i]:
                recent.append(float(score[0]))
            previous, was_lost = score, flags[i:i + 1].copy()
    return flags


def with_verifier(track: TrackConfig, **changes) -> TrackConfig:
    """track with track.verifier's `changes` (kind="rule": the score rule alone judging)."""
    return replace(track, verifier=replace(track.verifier, **changes))


def tasks(train: list[dict[str, np.ndarray]], args: argparse.Namespace) -> list[Task]:
    """The lost classifier (tracked frames: failed or tracked) and, from a --deployed recording, the found one
    (the candidates of the updates that searched: not the target, or the target at IoU >= TRACKED_IOU)."""
    x = np.concatenate([d["cues"] for d in train])
    hosts = np.concatenate([d["host"] for d in train])
    failed, used = (np.concatenate(part) for part in zip(*map(labels, train)))
    deployed = all("searched" in d for d in train)  # its recent scores are the tracker's own
    offered = [i for i, cue in enumerate(LOST_CUES) if deployed or cue not in LEFT_OUT]
    found = [Task("lost", x, failed, used, hosts, offered, flag_at_most(args.tracked_flagged),
                  lost_key(args.tracked_flagged))]
    if deployed:
        searched, absent, candidate = (np.concatenate([d[k] for d in train]) for k in ("searched", "absent",
                                                                                       "candidate_iou"))
        good = searched & ~absent & (candidate >= TRACKED_IOU)
        bad = searched & (absent | (candidate < FAILED_IOU))
        found.append(Task("found", x, bad, good | bad, hosts, [i for i in offered if LOST_CUES[i] != "jump"],
                          taken_at_least(args.accept_precision), found_key(args.accept_precision)))
    return found


def fit(args: argparse.Namespace) -> None:
    for config in args.config:
        train = [load(args.cache, config, folder, args.tag) for folder in args.train]
        print(f"\n{Path(config).stem}: {' + '.join(args.train)}{' (' + args.tag + ')' if args.tag else ''}, "
              f"{FOLDS} folds by host sequence")
        config_lines = [f"kind: {args.kind}"]
        lost = None
        for task in tasks(train, args):
            print(f"  {task.name}: {task.used.sum()} frames, {task.positive[task.used].sum()} positive")
            cues, penalty, said = task.choose(args.max_cues)
            raw, bias, cut = task.fit(cues, penalty)
            print(f"    chosen: {', '.join(LOST_CUES[c] for c in cues)}, L2 {penalty}; cross-validated: {said}")
            weights = "{" + ", ".join(f"{LOST_CUES[c]}: {v:.4g}" for c, v in zip(cues, raw)) + "}"
            if task.name == "lost":
                lost = (cues, raw, bias, cut)
                config_lines += [f"weights: {weights}", f"bias: {bias:.4g}", f"threshold: {cut:.4g}"]
            else:
                config_lines += [f"found_weights: {weights}", f"found_bias: {bias:.4g}", f"accept: {cut:.4g}"]
        print("  config (track.verifier):\n" + "\n".join(f"    {line}" for line in config_lines))
        t = load_config(config).track
        cues, raw, bias, cut = lost
        for folder in args.validate:
            data = load(args.cache, config, folder, args.tag)
            f, u = labels(data)
            flags = probability(data["cues"][:, cues], np.append(raw, bias)) >= cut
            rule = verdicts(data, with_verifier(t, kind="rule"))
            print(f"  {folder} ({len(f)} updates, {data['absent'].sum()} absent, {(f & ~data['absent']).sum()} "
                  f"present failed): classifier " + fmt(scores(flags, f, u, data["absent"])))
            print(f"  {'':{len(folder)}} {'':{len(str(len(f)))}}   rule ({t.lost_ratio}/{t.lost_drop}/{t.lost_window}) "
                  + fmt(scores(rule, f, u, data["absent"])))


# --- rule and onset

def measures(data: dict[str, np.ndarray], track: TrackConfig) -> tuple[dict[str, float], dict[str, dict]]:
    """The long-term measures of the verifier at track's settings, replayed on a recording: pooled, and per
    sequence (by name)."""
    flags = verdicts(data, track)
    total, each = LongTermCounts(), {}
    for s in np.unique(data["sequence"]):
        rows = data["sequence"] == s  # frame 0, the given box, is not recorded: it leads, reported, IoU 1
        counts = counts_of(np.r_[1.0, data["iou"][rows]], np.r_[False, flags[rows]], np.r_[False, data["absent"][rows]])
        each[str(data["names"][s]) if "names" in data else str(s)] = counts.scores()
        total = total + counts
    return total.scores(), each


def choose_rule(args: argparse.Namespace) -> None:
    for config in args.config:
        t = with_verifier(load_config(config).track, kind="rule")
        train = {folder: load(args.cache, config, folder) for folder in args.train}
        measured = {(ratio, drop): [measures(data, replace(t, lost_ratio=ratio, lost_drop=drop))[0]
                                    for data in train.values()]
                    for ratio in RULE_RATIOS for drop in RULE_DROPS}
        allowed = [setting for setting, found in measured.items()
                   if all(m["tracked_flagged"] <= args.tracked_flagged for m in found)]
        if not allowed:
            print(f"{Path(config).stem}: no setting of the grid holds on {' + '.join(args.train)}")
            continue
        ratio, drop = max(allowed, key=lambda setting: np.nanmean([m["absent_flagged"] for m in measured[setting]]))
        print(f"\n{Path(config).stem}: chosen on {' + '.join(args.train)}: lost_ratio {ratio}, lost_drop {drop} "
              f"(lost_window {t.lost_window}; the config's: {t.lost_ratio} / {t.lost_drop})")
        settings = {f"config {t.lost_ratio} / {t.lost_drop}": t,
                    f"chosen {ratio} / {drop}": replace(t, lost_ratio=ratio, lost_drop=drop)}
        table(args, config, settings)


def choose_onset(args: argparse.Namespace) -> None:
    """track.verifier.onset_drop for the config's classifier (with --set), the rule and it judging (kind both): of
    the grid's settings under which no sequence of a --train folder loses more than F_TOLERANCE of F-score against
    the rule alone, the one flagging the most absent frames (the mean over the long-term folders)."""
    for config in args.config:
        base = load_config(config, tuple(args.overrides)).track
        both = with_verifier(base, kind="both")
        train = {folder: load(args.cache, config, folder) for folder in args.train}
        rule = {folder: measures(data, with_verifier(base, kind="rule")) for folder, data in train.items()}
        print(f"\n{Path(config).stem}: onset_drop on {' + '.join(args.train)}, against the rule alone")
        held = {}
        for drop in ONSET_DROPS:
            found = {folder: measures(data, with_verifier(both, onset_drop=drop)) for folder, data in train.items()}
            falls = [(rule[folder][1][name]["f_score"] - after["f_score"], name) for folder, (_, each) in found.items()
                     for name, after in each.items()]
            fall, name = max(falls)
            absent = np.nanmean([total["absent_flagged"] for total, _ in found.values()])
            print(f"  {drop}: absent flagged {absent:.3f}, the largest fall of a sequence's F {fall:.4f} ({name})")
            if fall <= F_TOLERANCE:
                held[drop] = absent
        if not held:
            print("  no setting of the grid holds")
            continue
        chosen = max(held, key=held.get)
        print(f"  chosen: kind both, onset_drop {chosen}")
        table(args, config, {"rule alone": with_verifier(base, kind="rule"),
                             f"both, onset_drop {chosen}": with_verifier(both, onset_drop=chosen)})


# --- returns

RETURN_FATES = ("recovered", "failed before", "refused", "not found")


def return_fate(data: dict[str, np.ndarray], rows: np.ndarray, back: int) -> str:
    """Of one return (`back`, an index into one sequence's `rows` of a --deployed recording): recovered (a frame
    reported at IoU >= TRACKED_IOU within RECOVERY_FRAMES, as eval counts it); else failed before (the box had
    already left the target, IoU < TRACKED_IOU, at the last update before the absence); refused (the search
    held a candidate on the target, IoU >= TRACKED_IOU, and did not take it back); or not found."""
    absent, iou = data["absent"][rows], data["iou"][rows]
    window, _ = after_return(absent, back)
    if recovered(iou, ~data["lost"][rows], window):
        return "recovered"
    present_before = np.flatnonzero(~absent[:back])
    if len(present_before) and iou[present_before[-1]] < TRACKED_IOU:
        return "failed before"
    if np.any(data["searched"][rows][window] & (data["candidate_iou"][rows][window] >= TRACKED_IOU)):
        return "refused"
    return "not found"


def returns(args: argparse.Namespace) -> None:
    """How each return of a --deployed recording fared, counted by the kind of the sequence (cut, skip)."""
    for config in args.config:
        print(f"| {Path(config).stem} {args.tag} | returns | " + " | ".join(RETURN_FATES) + " |")
        print("|---|---|" + "---|" * len(RETURN_FATES))
        for folder in args.data:
            data = load(args.cache, config, folder, args.tag)
            fates = Counter()
            for s in np.unique(data["sequence"]):
                rows = np.flatnonzero(data["sequence"] == s)  # frame 0 is not recorded: a return is never it
                kind = str(data["names"][s]).partition("-")[0]
                fates.update((kind, return_fate(data, rows, back)) for back in returns_of(data["absent"][rows]))
            for kind in sorted({k for k, _ in fates}):
                counts = [fates[kind, fate] for fate in RETURN_FATES]
                print(f"| {folder} | {kind}: {sum(counts)} | " + " | ".join(map(str, counts)) + " |")


def table(args: argparse.Namespace, config: str, settings: dict[str, TrackConfig]) -> None:
    """The long-term measures of each named setting on every --train and --validate folder, a Markdown table."""
    print("| folder | setting | " + " | ".join(COLUMNS) + " |")
    print("|---|---|" + "---|" * len(COLUMNS))
    for folder in [*args.train, *args.validate]:
        data = load(args.cache, config, folder)
        for name, track in settings.items():
            found = measures(data, track)[0]
            print(f"| {folder} | {name} | " + " | ".join(f"{found[c]:.3f}" for c in COLUMNS) + " |")


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
    learn.add_argument("--tag", default="", help="the recording's (record --tag)")
    learn.add_argument("--kind", choices=("classifier", "both"), default="classifier",
                       help="the verifier's kind the printed config names (both: with the score rule)")
    learn.add_argument("--max-cues", type=int, default=len(LOST_CUES), help="cues in a set, at most")
    learn.add_argument("--accept-precision", type=float, default=0.9,
                       help="--deployed recordings: the share of candidates taken back that must be the target "
                            "(default 0.9)")
    rule = sub.add_parser("rule", help="choose the score rule's lost_ratio and lost_drop on cached scores")
    rule.add_argument("--train", nargs="+", required=True, help="cached folder names to choose on")
    rule.add_argument("--validate", nargs="*", default=[], help="cached folder names to score at the chosen setting")
    rule.add_argument("--tracked-flagged", type=float, default=0.02,
                      help="the share of each folder's tracked frames a setting may flag (default 0.02)")
    onset = sub.add_parser("onset", help="choose the classifier's onset_drop on cached cues")
    onset.add_argument("--train", nargs="+", required=True, help="cached folder names to choose on")
    onset.add_argument("--validate", nargs="*", default=[], help="cached folder names to score at the chosen setting")
    onset.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="the classifier to judge with (track.verifier.weights=..., bias, threshold) instead of "
                            "the config's: a mapping adds to the config's weights, so give a cue left out 0")
    fates = sub.add_parser("returns", help="how each return of a --deployed recording fared")
    fates.add_argument("--data", nargs="+", required=True, help="cached folder names")
    fates.add_argument("--tag", default="", help="the recording's (record --tag)")
    for command in (rec, learn, rule, onset, fates):
        command.add_argument("--config", nargs="+", required=True, help="shipped config names or YAML paths")
        command.add_argument("--cache", type=Path, default=Path("/tmp/lost_signal"), help="where the cues are kept")
    args = parser.parse_args()
    use_threads(1)
    torch.manual_seed(0)
    {"record": record, "fit": fit, "rule": choose_rule, "onset": choose_onset, "returns": returns}[args.command](args)


if __name__ == "__main__":
    main()
