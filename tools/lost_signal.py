"""Measure candidate `lost` signals as classifiers of frames where the box has failed (IoU < 0.1).

Tracks every sequence of the --data folders with each --config (CPU, one thread), keeping per update
the IoU with the ground truth, the raw peak score, the box's size and features of the response maps;
they are cached in --cache, one .npz per config and folder, so that rules are tried without tracking
again. Each candidate rule's setting is chosen on the --choose folders pooled; every folder is then
scored (a --choose folder leaving each sequence out of the choice): precision and recall against the
failed frames, and the share of Car1's frames flagged. The last rule is the one siamtrack implements
(track.lost_ratio, lost_drop, lost_window). Choose on training and validation data, never on otb_mini.

    python tools/lost_signal.py --config siamfc_lite0_fast siamfc_lite0 \
        --data ../shared/data/train_mini ../shared/data/train_more ../shared/data/val_long \
               ../shared/data/otb_mini --choose train_mini train_more val_long
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from siamtrack.core.frame_loop import track_frames
from siamtrack.core.response import bicubic_matrix
from siamtrack.core.tracker import SiamFCTracker
from siamtrack.datasets import load_sequences
from siamtrack.evaluation.metrics import overlaps
from siamtrack.inputs import read_rgb
from siamtrack.process import use_threads

FAILED_IOU = 0.1  # a box with less overlap than this has lost its target (issue 23)
PSR_EXCLUDE = (2, 4)  # response cells around the peak left out of the sidelobe, one PSR each
CAR1 = "Car1"
TARGETS = {"precision": 0.8, "recall": 0.5, "car1": 0.05}  # issue 23's


class SignalTracker(SiamFCTracker):
    """The tracker unchanged, keeping the features of each update's response maps (one target)."""

    def step(self, responses: torch.Tensor) -> None:
        self.features = response_features(responses[:, 0], self)
        super().step(responses)


def response_features(maps: torch.Tensor, tracker: SiamFCTracker) -> dict[str, float]:
    """Features of one target's S raw response maps, upsampled as the tracker does; the scale chosen as
    the tracker chooses it (the highest penalised peak)."""
    found_peaks = tracker.peaks.grid
    rows = bicubic_matrix(found_peaks.response_size, found_peaks.upscale_size)
    up = rows @ maps.float().cpu() @ rows.T
    peaks = up.amax(dim=(1, 2))
    best = int(torch.argmax(peaks * found_peaks.scale_penalties.cpu()))
    chosen = up[best]
    cell = found_peaks.upscale_size / found_peaks.response_size
    places = np.array([np.unravel_index(int(torch.argmax(m)), m.shape) for m in up]) / cell  # per scale, cells
    yy, xx = np.mgrid[0:found_peaks.upscale_size, 0:found_peaks.upscale_size] / cell
    distance = torch.from_numpy(np.hypot(yy - places[best, 0], xx - places[best, 1]))
    found = {"peak_over_mean": float(peaks[best] / chosen.mean()),
             "scale_spread": float(np.max(np.hypot(*(places[:, None] - places[None]).transpose(2, 0, 1)))),
             "scale_peak_ratio": float(peaks.min() / peaks.max())}
    for exclude in PSR_EXCLUDE:
        side = chosen[distance > exclude]
        found[f"psr{exclude}"] = float((peaks[best] - side.mean()) / side.std())
    return found


FEATURES = ("peak_over_mean", "scale_spread", "scale_peak_ratio", *(f"psr{e}" for e in PSR_EXCLUDE))


def track_folder(config: str, folder: Path) -> dict[str, np.ndarray]:
    """Per update of every sequence: sequence index, frame index, IoU, score, the box's side against the
    first box's (sqrt of the areas' ratio), the response features."""
    tracker = SignalTracker(config, device="cpu")
    sequences = load_sequences(folder)
    columns: dict[str, list] = {k: [] for k in ("sequence", "frame", "iou", "score", "size", *FEATURES)}
    start, frames = time.perf_counter(), 0
    for s, seq in enumerate(tqdm(sequences, desc=f"{config} {folder.name}", unit="seq")):
        images = (read_rgb(path) for path in seq.frames)
        for index, _, box, _ in track_frames(tracker, images, seq.boxes[0]):
            frames += 1
            if not index:
                continue
            columns["sequence"].append(s)
            columns["frame"].append(index)
            columns["iou"].append(float(overlaps(box, seq.boxes[index])[0]))
            columns["score"].append(tracker.score)
            columns["size"].append(np.sqrt(box[2] * box[3] / (seq.boxes[0, 2] * seq.boxes[0, 3])))
            for name in FEATURES:
                columns[name].append(tracker.features[name])
    arrays = {k: np.array(v) for k, v in columns.items()}
    arrays["names"] = np.array([seq.name for seq in sequences])
    arrays["fps"] = np.array(frames / (time.perf_counter() - start))
    return arrays


def cached_features(config: str, folder: Path, cache: Path, fresh: bool) -> dict[str, np.ndarray]:
    path = cache / f"{config}__{folder.name}.npz"
    if fresh or not path.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(path, **track_folder(config, folder))
    with np.load(path) as data:
        return dict(data)


# --- rules: each maps one sequence's updates (a dict of per-update arrays) and its settings to flags

Rule = Callable[..., np.ndarray]


def below_first(data: dict[str, np.ndarray], ratio: float) -> np.ndarray:
    """Today's rule: the score under `ratio` x the first update's."""
    return data["score"] < ratio * data["score"][0]


def below_first_sized(data: dict[str, np.ndarray], ratio: float) -> np.ndarray:
    """The score under `ratio` x the first update's, scaled down with the box where it shrinks (a smaller
    target, seen at a coarser resolution, scores lower)."""
    return data["score"] < ratio * data["score"][0] * np.minimum(1.0, data["size"])


def below_history(feature: str, window: int, frozen: bool) -> Rule:
    """The feature under `ratio` x its median over the last `window` updates, once MIN_HISTORY are there;
    `frozen`: an update flagged lost does not enter the history (the reference stays the tracked target's)."""
    def rule(data: dict[str, np.ndarray], ratio: float) -> np.ndarray:
        values = data[feature]
        flags = np.zeros(len(values), dtype=bool)
        history: list[float] = []
        for i, value in enumerate(values):
            flags[i] = len(history) >= MIN_HISTORY and value < ratio * np.median(history[-window:])
            if not (frozen and flags[i]):
                history.append(value)
        return flags
    return rule


def floor_or_drop(data: dict[str, np.ndarray], ratio: float, drop: float, window: float) -> np.ndarray:
    """siamtrack's rule since issue 23: the score under `ratio` x the first update's (a slow drift onto
    background), or under `drop` x the median of the last `window` updates not flagged (a sudden loss:
    occluded, out of the frame); 0 turns a part off."""
    scores = data["score"]
    flags = np.zeros(len(scores), dtype=bool)
    kept: list[float] = []
    for i, score in enumerate(scores):
        flags[i] = score < ratio * scores[0] or (bool(kept) and score < drop * np.median(kept[-int(window):]))
        if not flags[i]:
            kept.append(score)
    return flags


def below(feature: str) -> Rule:
    return lambda data, threshold: data[feature] < threshold


def above(feature: str) -> Rule:
    return lambda data, threshold: data[feature] > threshold


MIN_HISTORY = 5  # updates a history rule waits for
RATIOS = np.round(np.arange(0.1, 1.0, 0.025), 3)
FLOORS = np.round(np.concatenate([[0.0], np.arange(0.1, 0.55, 0.025)]), 3)  # of floor_or_drop; 0: off
DROPS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7)
DROP_WINDOW = 10  # track.lost_window: fixed, not chosen
TODAY = 0.5  # track.lost_ratio before issue 23


@dataclass
class Candidate:
    name: str
    rule: Rule
    settings: list[tuple[float, ...]]  # the rule's arguments after the data, one tuple per setting tried


def one(values) -> list[tuple[float, ...]]:
    return [(float(v),) for v in values]


def candidates(values: dict[str, np.ndarray]) -> list[Candidate]:
    """The rules tried; an absolute feature's thresholds are quantiles of its `values` (all data)."""
    def quantiles(feature: str, low: float, high: float) -> list[tuple[float, ...]]:
        return one(np.unique(np.quantile(values[feature], np.linspace(low, high, 40))))

    found = [Candidate(f"score < {TODAY} x first update's (today)", below_first, one([TODAY])),
             Candidate("score < r x first update's", below_first, one(RATIOS)),
             Candidate("score < r x first update's x min(1, size)", below_first_sized, one(RATIOS))]
    for window in (10, 25, 100):
        for frozen in (False, True):
            found.append(Candidate(f"score < r x median of last {window}{' (frozen)' if frozen else ''}",
                                   below_history("score", window, frozen), one(RATIOS)))
    found += [Candidate(f"{feature} < t", below(feature), quantiles(feature, 0.005, 0.6))
              for feature in ("psr2", "psr4", "peak_over_mean", "scale_peak_ratio")]
    found.append(Candidate("scale_spread > t", above("scale_spread"), quantiles("scale_spread", 0.4, 0.995)))
    found.append(Candidate(f"< r x first or < d x median of {DROP_WINDOW} kept (new)", floor_or_drop,
                           [(r, d, DROP_WINDOW) for r in FLOORS for d in DROPS]))
    return found


@dataclass
class Sequence:
    folder: str
    name: str
    data: dict[str, np.ndarray]

    @property
    def failed(self) -> np.ndarray:
        return self.data["iou"] < FAILED_IOU


def sequences_of(folder: str, data: dict[str, np.ndarray]) -> list[Sequence]:
    per_update = [k for k in data if k not in ("names", "fps")]
    return [Sequence(folder, str(name), {k: data[k][data["sequence"] == s] for k in per_update})
            for s, name in enumerate(data["names"])]


@dataclass
class Counts:
    """A rule's counts at each of its settings (rows) on each sequence (columns)."""
    flagged: np.ndarray
    hits: np.ndarray  # flagged and failed
    failed: np.ndarray  # per sequence
    tracked: np.ndarray  # per sequence: updates not failed

    @classmethod
    def of(cls, candidate: Candidate, sequences: list[Sequence]) -> Counts:
        flags = [[candidate.rule(seq.data, *setting) for seq in sequences] for setting in candidate.settings]
        failed = [seq.failed for seq in sequences]
        return cls(np.array([[f.sum() for f in row] for row in flags]),
                   np.array([[(f & fail).sum() for f, fail in zip(row, failed)] for row in flags]),
                   np.array([fail.sum() for fail in failed]), np.array([(~fail).sum() for fail in failed]))

    def chosen(self, on: np.ndarray) -> int:
        """The setting (row) of most recall on the sequences `on`, at precision >= the target and at most
        the target's share of the tracked updates flagged; failing that, of best F1."""
        flagged, hits = self.flagged[:, on].sum(1), self.hits[:, on].sum(1)
        failed, tracked = self.failed[on].sum(), self.tracked[on].sum()
        precision = np.divide(hits, flagged, out=np.zeros(len(hits)), where=flagged > 0)
        false_share = (flagged - hits) / max(tracked, 1)
        recall = hits / max(failed, 1)
        good = (precision >= TARGETS["precision"]) & (false_share <= TARGETS["car1"])
        if good.any():
            return int(np.argmax(np.where(good, recall + 1e-6 * precision, -1)))
        return int(np.argmax(2 * hits / np.maximum(flagged + failed, 1)))


@dataclass
class Scores:
    flagged: int
    hits: int
    failed: int
    car1: float | None  # share of Car1's updates flagged, where the folder holds Car1

    def __str__(self) -> str:
        precision = f"{self.hits / self.flagged:4.2f}" if self.flagged else "   -"
        car1 = "" if self.car1 is None else f" {100 * self.car1:4.1f}%"
        return f"{precision} {self.hits / max(self.failed, 1):4.2f}{car1}"


def measured(counts: Counts, sequences: list[Sequence], choosing: np.ndarray, folder: str) -> Scores:
    """A folder's scores, each sequence flagged at the setting chosen on the choosing sequences; where the
    folder is one of them, on those without any of its name (leave one sequence out)."""
    flagged = hits = failed = 0
    car1 = None
    for q, seq in enumerate(sequences):
        if seq.folder != folder:
            continue
        on = choosing & np.array([other.name != seq.name for other in sequences])
        row = counts.chosen(on)
        flagged, hits, failed = flagged + counts.flagged[row, q], hits + counts.hits[row, q], failed + counts.failed[q]
        if seq.name == CAR1:
            car1 = counts.flagged[row, q] / len(seq.failed)
    return Scores(int(flagged), int(hits), int(failed), car1)


def ceiling(counts: Counts, sequences: list[Sequence], folder: str) -> str:
    """The best precision of any setting at recall >= the target on the folder itself: what the rule could do
    there at best (a diagnosis, not a choice)."""
    on = np.array([seq.folder == folder for seq in sequences])
    flagged, hits, failed = counts.flagged[:, on].sum(1), counts.hits[:, on].sum(1), counts.failed[on].sum()
    reach = (hits >= TARGETS["recall"] * failed) & (flagged > 0)
    return f"{np.max(hits[reach] / flagged[reach]):.2f}" if reach.any() else "-"


def report(config: str, features: dict[str, dict[str, np.ndarray]], choose: list[str]) -> None:
    sequences = [seq for folder, data in features.items() for seq in sequences_of(folder, data)]
    choosing = np.array([seq.folder in choose for seq in sequences])
    print(f"\n{config}: settings chosen on {' + '.join(choose)} pooled (most recall at precision >= "
          f"{TARGETS['precision']} and <= {TARGETS['car1']:.0%} of the tracked updates flagged, else best F1); "
          f"a folder chosen on is scored leaving each sequence out of the choice (cv). Per folder: precision, "
          f"recall (IoU < {FAILED_IOU}) and Car1's updates flagged")
    for folder, data in features.items():
        print(f"  {folder}: {len(data['iou'])} updates, {int((data['iou'] < FAILED_IOU).sum())} failed, "
              f"median score {np.median(data['score']):.2f}, {float(data['fps']):.1f} fps")
    header = [f"{folder}{' (cv)' if folder in choose else ''}" for folder in features]
    print(f"  {'rule':50s} {'chosen':>9s}  " + "  ".join(f"{h:>17s}" for h in header))
    values = {k: np.concatenate([d[k] for d in features.values()]) for k in FEATURES}
    ceilings = []
    for candidate in candidates(values):
        counts = Counts.of(candidate, sequences)
        setting = "/".join(f"{v:.3g}" for v in candidate.settings[counts.chosen(choosing)])
        cells = [str(measured(counts, sequences, choosing, folder)) for folder in features]
        print(f"  {candidate.name:50s} {setting:>9s}  " + "  ".join(f"{c:>17s}" for c in cells), flush=True)
        ceilings.append((candidate.name, [ceiling(counts, sequences, folder) for folder in features]))
    print(f"  best precision at recall >= {TARGETS['recall']}, the setting picked on each folder itself (a diagnosis):")
    for name, cells in ceilings[1:]:
        print(f"  {name:50s} {'':9s}  " + "  ".join(f"{c:>17s}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", nargs="+", required=True, help="shipped config names or YAML paths")
    parser.add_argument("--data", nargs="+", required=True, type=Path, help="folders of OTB-layout sequences")
    parser.add_argument("--choose", nargs="+", required=True,
                        help="the --data folder names thresholds are chosen on (never the test set)")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/lost_signal"), help="where the features are kept")
    parser.add_argument("--fresh", action="store_true", help="track again even where features are cached")
    args = parser.parse_args()
    unknown = set(args.choose) - {folder.name for folder in args.data}
    if unknown:
        parser.error(f"--choose names folders not in --data: {', '.join(sorted(unknown))}")
    use_threads(1)
    for config in args.config:
        features = {folder.name: cached_features(config, folder, args.cache, args.fresh) for folder in args.data}
        report(config, features, args.choose)


if __name__ == "__main__":
    main()
