"""Make long-term tracking sequences, where the target is known to be absent, out of OTB-layout folders.

Each host sequence is cut, at one or more points, by a stretch of frames from another sequence of the
folder (resized to the host's size, grey where the host is grey): the target is absent there, as after a
camera cut or behind a full occlusion. Two kinds:

- cut: the host goes on where it was cut (the target comes back where it left);
- skip: the host goes on some frames later, chosen so that the target comes back somewhere else (its
  centre at least --min-jump of its side away from where it left).

They are written in LaSOT's layout, so that LaSOT's reader (and `siamtrack eval --dataset lasot` or
`--dataset longterm`) takes them:

    OUT/cut/cut-Car1/img/00000001.jpg ...   the host's frame files as they are; the stretch's re-encoded
    OUT/cut/cut-Car1/groundtruth.txt        x,y,w,h, 1-based; NaN,NaN,NaN,NaN where the target is absent
    OUT/cut/cut-Car1/out_of_view.txt        0/1 per frame on one line (1: absent), as LaSOT writes them
    OUT/cut/cut-Car1/full_occlusion.txt     all 0: the stretch is another scene, not an occluder
    OUT/longterm.json                       the seed, the options and each sequence's pieces

Deterministic from --seed: the same folders and options give the same files.

    python tools/make_longterm.py --source ../shared/data/train_mini ../shared/data/train_more \
        --out /tmp/longterm/train --seed 0
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from siamtrack.datasets import Sequence, load_sequences
from siamtrack.datasets.layouts import LASOT_FRAME_FLAGS
from siamtrack.inputs import read_rgb

KINDS = ("cut", "skip")
JPEG_QUALITY = 95


@dataclass(frozen=True)
class Options:
    absent: tuple[int, int] = (15, 45)  # frames of each absent stretch, drawn between these (inclusive)
    min_present: int = 10  # host frames before the first absence, and after each return, at least
    period: int = 150  # one absence per this many host frames (at least one, at most max_absences)
    max_absences: int = 3
    min_jump: float = 1.0  # skip: the target's centre moves at least this many of its sides
    max_skip: int = 150  # skip: host frames left out at one return, at most


@dataclass
class Piece:
    """A run of frames in a made sequence: the host's frames start..end, or a donor's (absent target)."""
    source: str  # the host's or the donor's name
    start: int
    end: int  # exclusive
    absent: bool


def frame_count(seq: Sequence) -> int:
    return len(seq.frames)


def centre(box: np.ndarray) -> np.ndarray:
    return box[:2] + box[2:] / 2


def jump(seq: Sequence, left: int, back: int) -> float:
    """How far the target is at frame `back` from where it was at frame `left`, in its sides at `left`."""
    before, after = seq.boxes[left], seq.boxes[back]
    return float(np.hypot(*(centre(after) - centre(before))) / np.sqrt(before[2] * before[3]))


def plan_host(seq: Sequence, kind: str, options: Options, rng: np.random.Generator) -> list[tuple[int, int]] | None:
    """The host's kept runs (start, end), an absence between each two; None where the host is too short
    (or, skip, where its target never moves far enough)."""
    absences = int(np.clip(frame_count(seq) // options.period, 1, options.max_absences))
    for count in range(absences, 0, -1):
        runs = (cut_runs if kind == "cut" else skip_runs)(seq, count, options, rng)
        if runs is not None:
            return runs
    return None


def cut_runs(seq: Sequence, count: int, options: Options, rng: np.random.Generator) -> list[tuple[int, int]] | None:
    """`count` cut points, each run at least min_present frames, spread over the host with some jitter."""
    n, keep = frame_count(seq), options.min_present
    if n < (count + 1) * keep:
        return None
    bounds = np.linspace(0, n, count + 2)
    cuts = []
    for i in range(1, count + 1):
        low = max(int(bounds[i] - (bounds[1] - bounds[0]) / 3), (cuts[-1] if cuts else 0) + keep)
        high = min(int(bounds[i] + (bounds[1] - bounds[0]) / 3), n - (count - i + 1) * keep)
        if high < low:
            return None
        cuts.append(int(rng.integers(low, high + 1)))
    edges = [0, *cuts, n]
    return [(edges[i], edges[i + 1]) for i in range(count + 1)]


def skip_runs(seq: Sequence, count: int, options: Options, rng: np.random.Generator) -> list[tuple[int, int]] | None:
    """`count` (cut, return) pairs in order, each return frame's target at least min_jump sides from where it
    left, each run at least min_present frames; drawn at random among those that fit."""
    n, keep = frame_count(seq), options.min_present
    runs, start = [], 0
    for i in range(count):
        left_for_later = (count - i) * keep  # the runs after this return: this one's and the others'
        pairs = [(cut, back) for cut in range(start + keep, n - left_for_later)
                 for back in range(cut + 1, min(cut + options.max_skip, n - left_for_later) + 1)
                 if jump(seq, cut - 1, back) >= options.min_jump]
        if not pairs:
            return None
        cut, back = pairs[int(rng.integers(len(pairs)))]
        runs.append((start, cut))
        start = back
    runs.append((start, n))
    return runs if all(end - begin >= keep for begin, end in runs) else None


def donor_piece(host: Sequence, donors: list[Sequence], options: Options, rng: np.random.Generator) -> Piece:
    """An absent stretch: consecutive frames of another sequence, of a length drawn from options.absent
    (shorter where no donor is that long)."""
    others = [d for d in donors if d.name != host.name]
    length = int(rng.integers(options.absent[0], options.absent[1] + 1))
    long_enough = [d for d in others if frame_count(d) >= length] or [max(others, key=frame_count)]
    donor = long_enough[int(rng.integers(len(long_enough)))]
    length = min(length, frame_count(donor))
    start = int(rng.integers(0, frame_count(donor) - length + 1))
    return Piece(donor.name, start, start + length, absent=True)


def plan(host: Sequence, kind: str, donors: list[Sequence], options: Options,
         rng: np.random.Generator) -> list[Piece] | None:
    runs = plan_host(host, kind, options, rng)
    if runs is None:
        return None
    pieces = [Piece(host.name, *runs[0], absent=False)]
    for run in runs[1:]:
        pieces += [donor_piece(host, donors, options, rng), Piece(host.name, *run, absent=False)]
    return pieces


def is_grey(path: Path) -> bool:
    with Image.open(path) as image:
        return image.mode in ("L", "LA", "I", "I;16")


def write_sequence(folder: Path, host: Sequence, pieces: list[Piece], by_name: dict[str, Sequence]) -> None:
    """The frames, ground truth and flags of one made sequence."""
    images = folder / "img"
    images.mkdir(parents=True, exist_ok=True)
    size = read_rgb(host.frames[0]).shape[1::-1]
    grey = is_grey(host.frames[0])
    boxes, absent = [], []
    for piece in pieces:
        source = by_name[piece.source]
        for index in range(piece.start, piece.end):
            name = f"{len(boxes) + 1:08d}"
            if piece.absent:
                frame = cv2.resize(read_rgb(source.frames[index]), size, interpolation=cv2.INTER_AREA)
                if grey:
                    frame = cv2.cvtColor(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
                cv2.imwrite(str(images / f"{name}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                boxes.append(np.full(4, np.nan))
            else:
                path = source.frames[index]
                shutil.copyfile(path, images / f"{name}{path.suffix.lower()}")
                boxes.append(source.boxes[index])
            absent.append(piece.absent)
    one_based = np.array(boxes) + [1, 1, 0, 0]  # LaSOT's convention, as OTB's
    (folder / "groundtruth.txt").write_text(
        "".join(",".join("NaN" if np.isnan(v) else f"{v:.10g}" for v in row) + "\n" for row in one_based))
    flags = {LASOT_FRAME_FLAGS["Out-of-View"]: absent, LASOT_FRAME_FLAGS["Full Occlusion"]: [False] * len(absent)}
    for file, values in flags.items():
        (folder / file).write_text(",".join("1" if v else "0" for v in values) + "\n")


def make(sources: list[Path], out: Path, seed: int, kinds: tuple[str, ...] = KINDS,
         options: Options = Options()) -> dict:
    """Write every made sequence of `sources` (OTB-layout folders) under `out`; the manifest it writes too."""
    hosts = [seq for folder in sources for seq in load_sequences(folder)]
    if len(hosts) < 2:
        raise SystemExit(f"make_longterm: need at least 2 sequences to cut one with another, found {len(hosts)}")
    by_name = {seq.name: seq for seq in hosts}
    if len(by_name) != len(hosts):
        raise SystemExit("make_longterm: two sequences share a name across --source folders")
    rng = np.random.default_rng(seed)
    manifest = {"seed": seed, "sources": [str(s) for s in sources], "options": asdict(options),
                "sequences": {}, "left_out": {}}
    for kind in kinds:
        for host in tqdm(hosts, desc=f"making {kind} sequences", unit="seq"):
            pieces = plan(host, kind, hosts, options, rng)
            name = f"{kind}-{host.name}"
            if pieces is None:
                manifest["left_out"][name] = "too short" if kind == "cut" else "too short, or its target never moves far"
                continue
            write_sequence(out / kind / name, host, pieces, by_name)
            manifest["sequences"][name] = [asdict(p) for p in pieces]
    out.mkdir(parents=True, exist_ok=True)
    (out / "longterm.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", nargs="+", required=True, type=Path, help="OTB-layout folders of host sequences "
                                                                              "(the donors of absent stretches too)")
    parser.add_argument("--out", required=True, type=Path, help="the LaSOT-layout folder to write (must not exist)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    defaults = Options()
    parser.add_argument("--absent", nargs=2, type=int, default=list(defaults.absent), metavar=("MIN", "MAX"),
                        help=f"frames of each absent stretch (default: {defaults.absent[0]} {defaults.absent[1]})")
    parser.add_argument("--min-present", type=int, default=defaults.min_present,
                        help=f"host frames before the first absence and after each return (default: {defaults.min_present})")
    parser.add_argument("--period", type=int, default=defaults.period,
                        help=f"one absence per this many host frames (default: {defaults.period})")
    parser.add_argument("--max-absences", type=int, default=defaults.max_absences,
                        help=f"absences in one sequence at most (default: {defaults.max_absences})")
    parser.add_argument("--min-jump", type=float, default=defaults.min_jump,
                        help=f"skip: target sides between where it leaves and where it comes back (default: "
                             f"{defaults.min_jump})")
    parser.add_argument("--max-skip", type=int, default=defaults.max_skip,
                        help=f"skip: host frames left out at one return, at most (default: {defaults.max_skip})")
    args = parser.parse_args(argv)
    if args.out.exists():
        parser.error(f"{args.out} exists: choose a new folder (made sequences are never mixed)")
    if min(args.absent[0], args.min_present, args.period, args.max_absences, args.max_skip) < 1 \
            or args.absent[0] > args.absent[1]:
        parser.error("--absent MIN MAX, --min-present, --period, --max-absences and --max-skip must be positive, "
                     "MIN <= MAX")
    options = Options(tuple(args.absent), args.min_present, args.period, args.max_absences, args.min_jump,
                      args.max_skip)
    manifest = make(args.source, args.out, args.seed, tuple(args.kinds), options)
    absences = sum(p["absent"] for pieces in manifest["sequences"].values() for p in pieces)
    print(f"wrote {len(manifest['sequences'])} sequences ({absences} absences) to {args.out}; "
          f"{len(manifest['left_out'])} hosts left out (longterm.json says why)", file=sys.stderr)


if __name__ == "__main__":
    main()
