"""Choose a tracker setting by families of sequences, not by one mean (issue 33; the successor of fusion_cv.py
and of cross_validate.py's `settings`).

Every row (a config with `--set` values, or an OpenCV baseline) tracks every sequence of every folder, nothing
trained. Printed: per folder and per family (tools/families.yaml's tags and the families measured on the ground
truth, siamtrack.evaluation.families), each row's mean success AUC and its change against the baseline row;
each row's verdict by the choice rule (no family with enough members, the folders counted as families too,
loses more than 0.02 AUC on average; more sequences better than worse); with --per-sequence, every sequence's
AUC. Folders: train_mini + train_more pooled, val_long, val_motion by default (otb_mini never: it is scored
once, after the choice, by `siamtrack eval`).

Each sequence's boxes are cached under --cache, keyed by the config's values that differ from the defaults
(so a config key added later, at its default, keeps every cached run), the backend and the sequence's path:
a row is tracked once however often the tables are printed, and a second run can share the work.

    OMP_NUM_THREADS=1 nice -n 10 python tools/choose.py --baseline default \
        --row default=siamfc_lite0 --row unfused=tools/configs/siamfc_lite0_unfused.yaml \
        --row fast=siamfc_lite0_fast --row csrt=csrt \
        --row adaptive_0.7=siamfc_lite0:track.fusion_weight=0.7 --per-sequence
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from siamtrack import TrackerSpec
from siamtrack.baselines import OPENCV_TRACKERS, OpenCVTracker
from siamtrack.config import Config, load_config
from siamtrack.core.backends import BACKENDS
from siamtrack.core.frame_loop import fps, track_frames
from siamtrack.datasets import load_sequences
from siamtrack.evaluation.families import (MIN_MEMBERS, combined_families, judge, load_tags, measured_families,
                                           members)
from siamtrack.evaluation.metrics import sequence_curves
from siamtrack.inputs import read_rgb

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FOLDERS = {"pooled": ["train_mini", "train_more"], "val_long": ["val_long"], "val_motion": ["val_motion"]}
FAMILIES = Path(__file__).with_name("families.yaml")


@dataclass(frozen=True)
class Row:
    name: str
    config: str  # a config name or YAML path, or an OpenCV tracker's name (csrt)
    sets: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Row:
        """`name=CONFIG[:a.b=1,c.d=2]`."""
        name, _, rest = text.partition("=")
        config, _, sets = rest.partition(":")
        return cls(name, config, tuple(kv for kv in sets.split(",") if kv))

    @property
    def opencv(self) -> bool:
        return self.config in OPENCV_TRACKERS

    def key(self, backend: str) -> list:
        """What decides the boxes: the config's values that differ from the defaults, and the backend."""
        if self.opencv:
            return [self.config]
        changed = {k: v for k, v in flatten(load_config(self.config, self.sets).to_dict()).items()
                   if DEFAULTS.get(k) != v}
        return [changed, backend]

    def tracker(self, backend: str):
        if self.opencv:
            return OpenCVTracker(self.config)
        return TrackerSpec(self.config, None, self.sets, "cpu", backend).build()


def flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k: v})
    return out


DEFAULTS = flatten(Config().to_dict())


def tracked(row: Row, backend: str, sequence, cache: Path) -> tuple[np.ndarray, float]:
    """The sequence's tracked boxes (its first frame left out) and the tracking seconds, cached."""
    key = json.dumps([row.key(backend), str(Path(sequence.frames[0]).parent.resolve())], sort_keys=True, default=str)
    path = cache / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.npz"
    if path.is_file():
        stored = np.load(path)
        return stored["boxes"], float(stored["seconds"])
    results = list(track_frames(row.tracker(backend), (read_rgb(p) for p in sequence.frames), sequence.boxes[0]))
    boxes = np.array([box for _, _, box, _ in results])[1:]
    seconds = sum(s for _, _, _, s in results[1:])
    partial = path.with_suffix(f".{os.getpid()}.npz")  # renamed when whole: runs sharing the cache read no half
    np.savez(partial, boxes=boxes, seconds=seconds)
    os.replace(partial, path)
    return boxes, seconds


def summary(aucs: np.ndarray, base: np.ndarray) -> str:
    """The mean per-sequence AUC change against the baseline, its standard error, and the count each way."""
    diff = aucs - base
    se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
    return f"{diff.mean():+.3f} +- {se:.3f} ({int((diff > 1e-3).sum())} / {int((diff < -1e-3).sum())})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--row", action="append", required=True, metavar="NAME=CONFIG[:KEY=VALUE,...]",
                        help="a config (name or YAML) with settings, or csrt; the first is the baseline unless named")
    parser.add_argument("--baseline", help="the row every other is judged against (default: the first)")
    parser.add_argument("--data", type=Path, default=DATA, help="the folder holding train_mini, val_long, ...")
    parser.add_argument("--folder", action="append", metavar="NAME=SUB[,SUB]",
                        help="a folder to report (default: pooled=train_mini,train_more val_long val_motion)")
    parser.add_argument("--families", type=Path, default=FAMILIES)
    parser.add_argument("--backend", default="torch", choices=BACKENDS)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/siamtrack_choose"))
    parser.add_argument("--per-sequence", action="store_true", help="also print every sequence's success AUC")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="track these rows only (share the work)")
    args = parser.parse_args()
    rows = [Row.parse(text) for text in args.row]
    folders = dict((n, s.split(",")) for n, _, s in (f.partition("=") for f in args.folder)) if args.folder else FOLDERS
    args.cache.mkdir(parents=True, exist_ok=True)
    sequences = [(folder, sub, seq) for folder, subs in folders.items() for sub in subs
                 for seq in load_sequences(args.data / sub)]
    print(f"backend {args.backend}, {torch.get_num_threads()} thread(s): " + ", ".join(
        f"{f} {sum(1 for g, *_ in sequences if g == f)} sequences" for f in folders), flush=True)
    aucs, precisions, speeds = {}, {}, {}
    for row in rows:
        if args.only and row.name not in args.only:
            continue
        runs = [tracked(row, args.backend, seq, args.cache)
                for _, _, seq in tqdm(sequences, desc=row.name, leave=False)]
        curves = [sequence_curves(boxes, seq.boxes[1:]) for (boxes, _), (_, _, seq) in zip(runs, sequences)]
        aucs[row.name] = np.array([c.success_auc for c in curves])
        precisions[row.name] = np.array([c.precision_score for c in curves])
        speeds[row.name] = fps(sum(len(seq) - 1 for *_, seq in sequences), sum(s for _, s in runs))
    tags = load_tags(args.families) if args.families.is_file() else {}
    families_of = [tags.get(f"{sub}/{seq.name}", set()) | measured_families(seq.boxes) | {f"folder:{folder}"}
                   for folder, sub, seq in sequences]
    families_of = [fams | combined_families(fams) for fams in families_of]
    report(aucs, precisions, speeds, sequences, families_of, args.baseline or rows[0].name, args.per_sequence)


def report(aucs: dict, precisions: dict, speeds: dict, sequences: list, families_of: list, baseline: str,
           per_sequence: bool) -> None:
    names = list(aucs)
    base = aucs.get(baseline)
    groups = members(families_of)
    judged = {f: i for f, i in groups.items() if len(i) >= MIN_MEMBERS}
    print("\n| family (sequences) | " + " | ".join(names) + " |\n" + "|---" * (len(names) + 1) + "|")
    for family, index in sorted(groups.items(), key=lambda kv: (not kv[0].startswith("folder:"), -len(kv[1]))):
        cells = []
        for name in names:
            cell = f"{aucs[name][index].mean():.3f}"
            if base is not None and name != baseline:
                cell += f" ({(aucs[name][index] - base[index]).mean():+.3f})"
            cells.append(cell)
        mark = "" if family in judged else ", not judged"
        print(f"| {family} ({len(index)}{mark}) | " + " | ".join(cells) + " |")
    print("\nper folder, precision@20: " + "; ".join(
        f"{name}: " + " ".join(f"{f.removeprefix('folder:')} {precisions[name][i].mean():.3f}"
                                for f, i in groups.items() if f.startswith("folder:")) + f" ({speeds[name]:.0f} fps)"
        for name in names))
    if base is not None:
        print(f"\nagainst {baseline} (the rule: no family of {MIN_MEMBERS}+ loses > 0.02 on average; "
              "more sequences better than worse):")
        for name in names:
            if name != baseline:
                print(f"  {name:24s} {judge(aucs[name], base, judged)}  [all: {summary(aucs[name], base)}]")
    if per_sequence:
        print("\n| sequence | families | " + " | ".join(names) + " |\n" + "|---" * (len(names) + 2) + "|")
        for i, ((folder, _, seq), fams) in enumerate(zip(sequences, families_of)):
            tags = ",".join(sorted(f for f in fams if not f.startswith("folder:")))
            print(f"| {folder}/{seq.name} | {tags} | " + " | ".join(f"{aucs[n][i]:.3f}" for n in names) + " |")


if __name__ == "__main__":
    main()
