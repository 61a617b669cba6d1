"""Readers for tracking datasets on disk (GOT-10k, OTB, VOT, LaSOT, TrackingNet layouts), shared by training
and evaluation.

Every reader returns `Sequence`s with 0-based x, y, w, h boxes. OTB (and UAV123, DTB70, which use its
layout), VOT, LaSOT and GOT-10k ground truth is 1-based (MATLAB toolkits; GOT-10k: got-10k/toolkit issue #6),
TrackingNet's and NfS's 0-based. `Sequence.one_based` records the file's own convention so results can be
written back in it (`to_source`).

`find_sequences` lists a folder's sequences as `SequenceFiles` without reading them: a benchmark of
thousands of long sequences costs nothing until one is used, and each is read where it is used (an
evaluation worker, a node of a cluster). `read_frames` decodes a sequence's frames as they are consumed, a
few ahead, so that no sequence is ever held in memory whole.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from ..errors import SourceError
from .annotations import data_lines, from_zero_based, parse_boxes, parse_flags, parse_labels, to_zero_based
from .frames import FRAME_SUFFIXES, list_frames, natural_key

# the benchmarks `siamtrack eval` scores (siamtrack.evaluation.experiments), each with its ground truth's convention:
# 1-based from MATLAB toolkits (OTB and those built on it, VOT, LaSOT) and for GOT-10k (got-10k/toolkit#6),
# 0-based for NfS and TrackingNet. Here, so that the command line can list them without importing got10k.
ONE_BASED = {"otb": True, "got10k": True, "vot": True, "uav123": True, "dtb70": True, "tcolor128": True,
             "nfs": False, "lasot": True, "longterm": True, "trackingnet": False}
DATASETS = tuple(ONE_BASED)
OTB_GT_GLOB = "groundtruth_rect*.txt"
GOT10K_TRAIN_SPLITS = ("train", "val")  # the GOT-10k splits with per-frame ground truth
# LaSOT: per-frame flags beside groundtruth.txt (a frame flagged in either has no visible target), and the
# 14 per-sequence attributes of its toolkit's annos/att/NAME.txt files, in their order
LASOT_FRAME_FLAGS = {"Full Occlusion": "full_occlusion.txt", "Out-of-View": "out_of_view.txt"}
LASOT_ATTRIBUTES = ("Illumination Variation", "Partial Occlusion", "Deformation", "Motion Blur", "Camera Motion",
                    "Rotation", "Background Clutter", "Viewpoint Change", "Scale Variation", "Full Occlusion",
                    "Fast Motion", "Out-of-View", "Low Resolution", "Aspect Ratio Change")
LASOT_ATTRIBUTE_DIR = "att"  # ROOT/att/NAME.txt: the toolkit's attribute files, where a user put them
LASOT_TEST_LIST = "testing_set.txt"  # ROOT/testing_set.txt: LaSOT's 280 test sequences (protocol II)
TRACKINGNET_TEST = "TEST"  # TrackingNet's test chunk: first boxes only, the rest withheld
TRACKINGNET_TRAIN_GLOB = "TRAIN_*"


@dataclass
class Sequence:
    name: str
    frames: list[Path]
    boxes: np.ndarray  # N x 4 float64, 0-based x, y, w, h; NaN where the source gives none
    absent: np.ndarray  # N bool: the target is not in the frame (or, LaSOT, fully occluded)
    one_based: bool  # the ground-truth file's convention (True: OTB/VOT/GOT-10k/LaSOT, False: NfS/TrackingNet)
    layout: str  # got10k | otb | vot | lasot | trackingnet
    cover: np.ndarray | None = None  # GOT-10k visible-ratio level per frame: 0 fully covered .. 8 fully visible
    attributes: tuple[str, ...] = ()  # LaSOT: the challenges the sequence has (LASOT_ATTRIBUTES)

    def __len__(self) -> int:
        return len(self.frames)

    def to_source(self, boxes: np.ndarray) -> np.ndarray:
        """0-based x, y, w, h boxes in the convention of this sequence's ground-truth file."""
        return from_zero_based(boxes, self.one_based)


@dataclass(frozen=True)
class SequenceFiles:
    """Where one sequence lives: its name, frame folder, ground-truth file and layout, read only by `load`."""
    name: str
    frame_dir: Path
    truth: Path
    layout: str

    def load(self) -> Sequence:
        return _LOADERS[self.layout](self)


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
    return [line.strip() for line in data_lines(list_path) if line.strip()]


def _require_dir(path: Path, list_path: Path) -> Path:
    if not path.is_dir():
        raise SourceError(f"{list_path}: lists '{path.name}' but {path} is not a folder")
    return path


def _subfolders(folder: Path) -> list[Path]:
    return sorted((d for d in folder.iterdir() if d.is_dir()), key=natural_key)


# --- GOT-10k: SPLIT/list.txt, SPLIT/NAME/00000001.jpg, groundtruth.txt, absence.label, cover.label

def _is_got10k_split(folder: Path) -> bool:
    names = _listed_names(folder / "list.txt") if (folder / "list.txt").is_file() else []
    return bool(names) and (folder / names[0] / "absence.label").is_file()


def _load_got10k(files: SequenceFiles) -> Sequence:
    folder = files.frame_dir
    seq = make_sequence(files.name, folder, files.truth, one_based=ONE_BASED["got10k"], layout="got10k")
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


def find_got10k_split(folder: Path) -> list[SequenceFiles]:
    list_path = folder / "list.txt"
    return [SequenceFiles(name, _require_dir(folder / name, list_path), folder / name / "groundtruth.txt", "got10k")
            for name in _listed_names(list_path)]


# --- OTB: NAME/img/*.jpg (or frames in NAME/), NAME/groundtruth_rect.txt (or .1.txt, .2.txt per target)

def _otb_sequences(folder: Path) -> list[SequenceFiles]:
    frame_dir = folder / "img" if (folder / "img").is_dir() else folder
    # several targets in one video (Jogging: groundtruth_rect.1.txt, .2.txt) become several sequences
    return [SequenceFiles(folder.name + path.name[len("groundtruth_rect"):-len(".txt")], frame_dir, path, "otb")
            for path in sorted(folder.glob(OTB_GT_GLOB))]


def _is_otb_sequence(folder: Path) -> bool:
    return any(folder.glob(OTB_GT_GLOB))


def find_otb(root: Path) -> list[SequenceFiles]:
    """A folder of OTB sequences, or one OTB sequence folder."""
    if _is_otb_sequence(root):
        return _otb_sequences(root)
    return [files for folder in _subfolders(root) if _is_otb_sequence(folder) for files in _otb_sequences(folder)]


# --- VOT: list.txt, NAME/*.jpg or NAME/color/*.jpg, NAME/groundtruth.txt (rectangles or polygons)

def _is_vot(root: Path) -> bool:
    names = _listed_names(root / "list.txt") if (root / "list.txt").is_file() else []
    return bool(names) and (root / names[0] / "groundtruth.txt").is_file()


def find_vot(root: Path) -> list[SequenceFiles]:
    list_path = root / "list.txt"
    found = []
    for name in _listed_names(list_path):
        folder = _require_dir(root / name, list_path)
        frame_dir = folder / "color" if (folder / "color").is_dir() else folder
        found.append(SequenceFiles(name, frame_dir, folder / "groundtruth.txt", "vot"))
    return found


# --- LaSOT: CLASS/CLASS-N/img/00000001.jpg, groundtruth.txt, full_occlusion.txt, out_of_view.txt

def _is_lasot_sequence(folder: Path) -> bool:
    return (folder / "groundtruth.txt").is_file() and (folder / "img").is_dir()


def _is_lasot(root: Path) -> bool:
    return any(_is_lasot_sequence(folder) for group in _subfolders(root) for folder in _subfolders(group))


def _lasot_toolkit_attributes(files: SequenceFiles) -> tuple[str, ...] | None:
    """The sequence's attributes from the toolkit's att/NAME.txt under the dataset root, if there."""
    path = files.truth.parents[2] / LASOT_ATTRIBUTE_DIR / f"{files.name}.txt"
    if not path.is_file():
        return None
    flags = parse_flags(path)
    if len(flags) != len(LASOT_ATTRIBUTES):
        raise SourceError(f"{path}: {len(flags)} attribute flags, expected {len(LASOT_ATTRIBUTES)}")
    return tuple(name for name, flag in zip(LASOT_ATTRIBUTES, flags) if flag)


def _load_lasot(files: SequenceFiles) -> Sequence:
    seq = make_sequence(files.name, files.frame_dir, files.truth, one_based=ONE_BASED["lasot"], layout="lasot")
    folder, flagged = files.truth.parent, []
    for attribute, name in LASOT_FRAME_FLAGS.items():
        path = folder / name
        if path.is_file():
            flags = parse_flags(path)
            _check_count(path, len(flags), seq.frames, folder)
            seq.absent |= flags
            flagged += [attribute] if flags.any() else []
    # LaSOT gives a sequence the attributes full occlusion and out-of-view where any frame has them
    toolkit = _lasot_toolkit_attributes(files)
    seq.attributes = toolkit if toolkit is not None else tuple(flagged)
    return seq


def find_lasot(root: Path, split: str = "train") -> list[SequenceFiles]:
    """LaSOT's sequences of `split`: with ROOT/testing_set.txt, `test` is the sequences it lists and `train`
    the others; without it, every sequence is in both."""
    found = [SequenceFiles(folder.name, folder / "img", folder / "groundtruth.txt", "lasot")
             for group in _subfolders(root) for folder in _subfolders(group) if _is_lasot_sequence(folder)]
    list_path = root / LASOT_TEST_LIST
    if not list_path.is_file():
        return found
    listed = _listed_names(list_path)
    missing = sorted(set(listed) - {files.name for files in found})
    if missing:
        raise SourceError(f"{list_path}: lists '{missing[0]}' but no CLASS/{missing[0]}/ sequence folder has it"
                          + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    return [files for files in found if (files.name in listed) == (split == "test")]


# --- TrackingNet: CHUNK/frames/NAME/0.jpg, CHUNK/anno/NAME.txt (CHUNK: TEST, TRAIN_0 .. TRAIN_11)

def _is_trackingnet_chunk(folder: Path) -> bool:
    return (folder / "frames").is_dir() and (folder / "anno").is_dir()


def trackingnet_chunks(root: Path, split: str) -> list[Path]:
    """The chunk folders of a TrackingNet top folder: TEST for `test`, TRAIN_0 .. TRAIN_11 for `train`."""
    candidates = [root / TRACKINGNET_TEST] if split == "test" else sorted(root.glob(TRACKINGNET_TRAIN_GLOB),
                                                                        key=natural_key)
    return [folder for folder in candidates if _is_trackingnet_chunk(folder)]


def _load_trackingnet(files: SequenceFiles) -> Sequence:
    frames = list_frames(files.frame_dir)
    boxes = to_zero_based(parse_boxes(files.truth), ONE_BASED["trackingnet"])
    if len(boxes) == 1 and len(frames) > 1:  # the test chunk gives the first box only
        boxes = np.concatenate([boxes, np.full((len(frames) - 1, 4), np.nan)])
    _check_count(files.truth, len(boxes), frames, files.frame_dir)
    return Sequence(files.name, frames, boxes, ~np.isfinite(boxes).all(axis=1), ONE_BASED["trackingnet"],
                    "trackingnet")


def find_trackingnet_chunk(folder: Path) -> list[SequenceFiles]:
    return [SequenceFiles(path.stem, folder / "frames" / path.stem, path, "trackingnet")
            for path in sorted((folder / "anno").glob("*.txt"), key=natural_key)]


# --- layout detection

def _load_frames_and_boxes(files: SequenceFiles) -> Sequence:
    """OTB and VOT: frames and ground truth, nothing else."""
    return make_sequence(files.name, files.frame_dir, files.truth, ONE_BASED[files.layout], files.layout)


_LOADERS = {"got10k": _load_got10k, "otb": _load_frames_and_boxes, "vot": _load_frames_and_boxes,
            "lasot": _load_lasot, "trackingnet": _load_trackingnet}


def detect_layout(root: Path) -> str:
    """got10k | got10k_root | trackingnet | trackingnet_root | vot | otb | lasot, from the files present;
    SourceError if none fits."""
    if not root.is_dir():
        raise SourceError(f"dataset folder not found: {root}")
    if _is_got10k_split(root):
        return "got10k"
    if any(_is_got10k_split(root / split) for split in GOT10K_TRAIN_SPLITS):
        return "got10k_root"
    if _is_trackingnet_chunk(root):
        return "trackingnet"
    if trackingnet_chunks(root, "test") or trackingnet_chunks(root, "train"):
        return "trackingnet_root"
    if _is_vot(root):
        return "vot"
    if _is_otb_sequence(root) or any(d.is_dir() and _is_otb_sequence(d) for d in root.iterdir()):
        return "otb"
    if _is_lasot(root):
        return "lasot"
    raise SourceError(f"{root}: matches no dataset layout (GOT-10k list.txt + absence.label, "
                      f"OTB NAME/{OTB_GT_GLOB}, VOT list.txt + NAME/groundtruth.txt, "
                      "LaSOT CLASS/CLASS-N/groundtruth.txt + img/, TrackingNet CHUNK/frames + CHUNK/anno)")


def find_sequences(root: str | Path, split: str = "train") -> list[SequenceFiles]:
    """Every sequence under `root`, whatever its layout, unread.

    A GOT-10k top folder (holding train/ and val/) reads the `split` sub-folder; pass the split folder
    itself (GOT-10k/val) to choose it by path instead. GOT-10k test has no per-frame ground truth and is
    not readable here. A TrackingNet top folder reads its TRAIN_* chunks for `train`, TEST for `test`;
    LaSOT splits by its testing_set.txt (find_lasot).
    """
    root = Path(root)
    layout = detect_layout(root)
    if layout == "got10k_root":
        if split not in GOT10K_TRAIN_SPLITS or not _is_got10k_split(root / split):
            raise SourceError(f"{root}: no GOT-10k split '{split}' (list.txt + sequences)")
        return find_got10k_split(root / split)
    if layout == "trackingnet_root":
        chunks = trackingnet_chunks(root, split)
        if not chunks:
            raise SourceError(f"{root}: no TrackingNet {split} chunk ({TRACKINGNET_TEST}/ or "
                              f"{TRACKINGNET_TRAIN_GLOB}/ with frames/ and anno/)")
        return [files for chunk in chunks for files in find_trackingnet_chunk(chunk)]
    finders = {"got10k": find_got10k_split, "otb": find_otb, "vot": find_vot,
               "lasot": lambda folder: find_lasot(folder, split), "trackingnet": find_trackingnet_chunk}
    return finders[layout](root)


def load_sequences(root: str | Path, split: str = "train") -> list[Sequence]:
    """Every sequence under `root` (find_sequences), read."""
    return [files.load() for files in find_sequences(root, split)]


def load_many(roots: Iterable[str | Path], split: str = "train") -> list[Sequence]:
    return [seq for root in roots for seq in load_sequences(root, split)]
