"""Readers for tracking datasets on disk (GOT-10k, OTB, VOT layouts), shared by training and evaluation.

Every reader returns `Sequence`s with 0-based x, y, w, h boxes. OTB (and UAV123, DTB70, which use
its layout), VOT and GOT-10k ground truth is 1-based (GOT-10k: got-10k/toolkit issue #6). `Sequence.one_based`
records the file's own convention so results can be written back in it (`to_source`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from .errors import SourceError

# the benchmarks `siamtrack eval` scores (siamtrack.experiments), each with its ground truth's convention:
# 1-based from MATLAB toolkits (OTB and those built on it, VOT) and for GOT-10k (got-10k/toolkit#6),
# 0-based for NfS. Here, so that the command line can list them without importing got10k's experiments.
ONE_BASED = {"otb": True, "got10k": True, "vot": True, "uav123": True, "dtb70": True, "tcolor128": True,
             "nfs": False}
DATASETS = tuple(ONE_BASED)
_ONE_BASED_SHIFT = np.array([1.0, 1.0, 0.0, 0.0])  # added to 0-based x, y, w, h to make them 1-based
FRAME_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
OTB_GT_GLOB = "groundtruth_rect*.txt"
GOT10K_TRAIN_SPLITS = ("train", "val")  # the GOT-10k splits with per-frame ground truth
_SEPARATORS = re.compile(r"[,\s]+")


@dataclass
class Sequence:
    name: str
    frames: list[Path]
    boxes: np.ndarray  # N x 4 float64, 0-based x, y, w, h; NaN where the source gives none
    absent: np.ndarray  # N bool: the target is not in the frame
    one_based: bool  # the ground-truth file's convention (True: OTB/VOT/GOT-10k, False: NfS)
    layout: str  # got10k | otb | vot
    cover: np.ndarray | None = None  # GOT-10k visible-ratio level per frame: 0 fully covered .. 8 fully visible

    def __len__(self) -> int:
        return len(self.frames)

    def to_source(self, boxes: np.ndarray) -> np.ndarray:
        """0-based x, y, w, h boxes in the convention of this sequence's ground-truth file."""
        return from_zero_based(boxes, self.one_based)


def to_zero_based(boxes, one_based: bool) -> np.ndarray:
    """x, y, w, h boxes of a file's convention as 0-based float64 boxes."""
    return np.asarray(boxes, dtype=np.float64) - (_ONE_BASED_SHIFT if one_based else 0)


def from_zero_based(boxes, one_based: bool) -> np.ndarray:
    """0-based x, y, w, h boxes in a file's convention, as float64."""
    return np.asarray(boxes, dtype=np.float64) + (_ONE_BASED_SHIFT if one_based else 0)


def natural_key(path: Path) -> tuple[list, str]:
    """Names sorted as people mean them, numbers as numbers: 2.jpg before 10.jpg without zero padding.

    The one frame order of siamtrack: folder sources, dataset readers and training all sort with it.
    Names equal but for padding (1.jpg, 01.jpg) fall back to plain order, so the order never depends
    on the file system's.
    """
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)], path.name


def list_frames(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES), key=natural_key)


def _data_lines(path: Path) -> list[str]:
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path}: cannot read ({exc.__class__.__name__})") from None
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def parse_boxes(path: Path) -> np.ndarray:
    """N x 4 axis-aligned boxes from 4-number rectangles or 8-number polygons, as written in the file."""
    rows = []
    for number, line in enumerate(_data_lines(path), start=1):
        try:
            values = [float(v) for v in _SEPARATORS.split(line.strip(" ,\t"))]
        except ValueError:
            values = []
        if len(values) == 8:
            xs, ys = values[0::2], values[1::2]
            values = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
        if len(values) != 4:
            raise SourceError(f"{path}:{number}: expected 4 or 8 numbers, got {line.strip()[:60]!r}")
        rows.append(values)
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


def parse_labels(path: Path) -> np.ndarray:
    """One integer per line (GOT-10k absence.label, cover.label)."""
    labels = []
    for number, line in enumerate(_data_lines(path), start=1):
        try:
            labels.append(int(line.strip()))
        except ValueError:
            raise SourceError(f"{path}:{number}: expected an integer, got {line.strip()[:60]!r}") from None
    return np.array(labels, dtype=np.int64)


def _check_count(path: Path, count: int, frames: list[Path], folder: Path) -> None:
    if not frames:
        raise SourceError(f"{folder}: no frames ({'/'.join(FRAME_SUFFIXES)})")
    if count != len(frames):
        raise SourceError(f"{path}: {count} lines for {len(frames)} frames in {folder}")


def make_sequence(name: str, frame_dir: Path, gt_path: Path, one_based: bool, layout: str) -> Sequence:
    """A sequence from its frames and ground truth; NaN boxes (UAV123 out-of-view) count as absent."""
    frames = list_frames(frame_dir)
    boxes = to_zero_based(parse_boxes(gt_path), one_based)
    _check_count(gt_path, len(boxes), frames, frame_dir)
    absent = ~np.isfinite(boxes).all(axis=1)
    return Sequence(name, frames, boxes, absent, one_based, layout)


def _listed_names(list_path: Path) -> list[str]:
    return [line.strip() for line in _data_lines(list_path) if line.strip()]


def _require_dir(path: Path, list_path: Path) -> Path:
    if not path.is_dir():
        raise SourceError(f"{list_path}: lists '{path.name}' but {path} is not a folder")
    return path


# --- GOT-10k: SPLIT/list.txt, SPLIT/NAME/00000001.jpg, groundtruth.txt, absence.label, cover.label

def _is_got10k_split(folder: Path) -> bool:
    names = _listed_names(folder / "list.txt") if (folder / "list.txt").is_file() else []
    return bool(names) and (folder / names[0] / "absence.label").is_file()


def _got10k_sequence(folder: Path) -> Sequence:
    seq = make_sequence(folder.name, folder, folder / "groundtruth.txt", one_based=ONE_BASED["got10k"],
                        layout="got10k")
    for label in ("absence", "cover"):
        path = folder / f"{label}.label"
        if path.is_file():
            values = parse_labels(path)
            _check_count(path, len(values), seq.frames, folder)
            if label == "absence":
                seq.absent |= values.astype(bool)
            else:
                seq.cover = values
    return seq


def load_got10k_split(folder: Path) -> list[Sequence]:
    list_path = folder / "list.txt"
    return [_got10k_sequence(_require_dir(folder / name, list_path)) for name in _listed_names(list_path)]


# --- OTB: NAME/img/*.jpg (or frames in NAME/), NAME/groundtruth_rect.txt (or .1.txt, .2.txt per target)

def _otb_sequences(folder: Path) -> list[Sequence]:
    frame_dir = folder / "img" if (folder / "img").is_dir() else folder
    gt_paths = sorted(folder.glob(OTB_GT_GLOB))
    # several targets in one video (Jogging: groundtruth_rect.1.txt, .2.txt) become several sequences
    suffixes = [p.name[len("groundtruth_rect"):-len(".txt")] for p in gt_paths]
    return [make_sequence(folder.name + suffix, frame_dir, p, one_based=ONE_BASED["otb"], layout="otb")
            for p, suffix in zip(gt_paths, suffixes)]


def _is_otb_sequence(folder: Path) -> bool:
    return any(folder.glob(OTB_GT_GLOB))


def load_otb(root: Path) -> list[Sequence]:
    """A folder of OTB sequences, or one OTB sequence folder."""
    if _is_otb_sequence(root):
        return _otb_sequences(root)
    folders = sorted((d for d in root.iterdir() if d.is_dir() and _is_otb_sequence(d)), key=natural_key)
    return [seq for folder in folders for seq in _otb_sequences(folder)]


# --- VOT: list.txt, NAME/*.jpg or NAME/color/*.jpg, NAME/groundtruth.txt (rectangles or polygons)

def _vot_sequence(folder: Path) -> Sequence:
    frame_dir = folder / "color" if (folder / "color").is_dir() else folder
    return make_sequence(folder.name, frame_dir, folder / "groundtruth.txt", one_based=ONE_BASED["vot"],
                         layout="vot")


def _is_vot(root: Path) -> bool:
    names = _listed_names(root / "list.txt") if (root / "list.txt").is_file() else []
    return bool(names) and (root / names[0] / "groundtruth.txt").is_file()


def load_vot(root: Path) -> list[Sequence]:
    list_path = root / "list.txt"
    return [_vot_sequence(_require_dir(root / name, list_path)) for name in _listed_names(list_path)]


# --- layout detection

def detect_layout(root: Path) -> str:
    """got10k | got10k_root | otb | vot, from the files present; SourceError if none fits."""
    if not root.is_dir():
        raise SourceError(f"dataset folder not found: {root}")
    if _is_got10k_split(root):
        return "got10k"
    if any(_is_got10k_split(root / split) for split in GOT10K_TRAIN_SPLITS):
        return "got10k_root"
    if _is_vot(root):
        return "vot"
    if _is_otb_sequence(root) or any(d.is_dir() and _is_otb_sequence(d) for d in root.iterdir()):
        return "otb"
    raise SourceError(f"{root}: matches no dataset layout (GOT-10k list.txt + absence.label, "
                      f"OTB NAME/{OTB_GT_GLOB}, VOT list.txt + NAME/groundtruth.txt)")


def load_sequences(root: str | Path, split: str = "train") -> list[Sequence]:
    """Every sequence under `root`, whatever its layout.

    A GOT-10k top folder (holding train/ and val/) reads the `split` sub-folder; pass the split
    folder itself (GOT-10k/val) to choose it by path instead. GOT-10k test has no per-frame ground
    truth and is not readable here.
    """
    root = Path(root)
    layout = detect_layout(root)
    if layout == "got10k_root":
        if split not in GOT10K_TRAIN_SPLITS or not _is_got10k_split(root / split):
            raise SourceError(f"{root}: no GOT-10k split '{split}' (list.txt + sequences)")
        return load_got10k_split(root / split)
    loaders = {"got10k": load_got10k_split, "otb": load_otb, "vot": load_vot}
    return loaders[layout](root)


def load_many(roots: Iterable[str | Path], split: str = "train") -> list[Sequence]:
    return [seq for root in roots for seq in load_sequences(root, split)]
