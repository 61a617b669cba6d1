"""got10k's benchmark experiments over local folders: no downloads, numpy 2, our box convention.

Each benchmark is a got10k experiment: got10k runs every sequence and writes, then reads, the result
and report files, so they are exactly what its tools and other toolkits expect
(siamtrack.evaluation.benchmark keeps them). LaSOT and TrackingNet, which got10k cannot read, run through
got10k's OTB loop over siamtrack.datasets' readers.

Box conventions. Our trackers take and return 0-based x, y, w, h. Benchmark ground truth is 1-based
where it comes from a MATLAB toolkit (OTB and the benchmarks built on its toolkit, VOT, LaSOT) and for
GOT-10k (its authors, got-10k/toolkit issue #6), 0-based for NfS and TrackingNet (siamtrack.datasets.ONE_BASED).
`BenchmarkTracker` converts at the tracker's edge: it hands the tracker the 0-based first box and returns
every box in the benchmark's own convention, so result files line up with the ground truth for got10k and
for any tool that reads them.
"""
from __future__ import annotations

import contextlib
import copy
import io
import os
from pathlib import Path

import numpy as np
from got10k.datasets import TColor128
from got10k.experiments import (ExperimentDTB70, ExperimentGOT10k, ExperimentNfS, ExperimentOTB, ExperimentUAV123,
                                ExperimentVOT)
from got10k.trackers import Tracker
from got10k.utils.metrics import poly_iou

from ..core.frame_loop import track_frames
from ..datasets import (TRACKINGNET_TEST, detect_layout, find_lasot, find_otb, find_trackingnet_chunk, from_zero_based,
                        read_frames, to_zero_based, trackingnet_chunks)
from ..errors import EvaluationError, SiamtrackError
from .metrics import IOU_THRESHOLDS, PIXEL_THRESHOLDS

NFS_FPS = 30           # NfS ships 240 and 30 fps versions; trackers are usually compared on 30
VOT_VERSION = 2018     # names the results folder only; any VOT folder laid out as got10k reads it works
GOT10K_EVAL_SPLITS = ("val", "test")  # the GOT-10k splits a benchmark runs on (test: results only)


@contextlib.contextmanager
def quiet():
    """got10k prints a line per sequence; the caller (the CLI) owns the terminal instead."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


# --- got10k datasets and experiments, without their downloads, and fixed where numpy 2 broke them

class FolderDataset:
    """siamtrack.datasets sequences (OTB-layout folders, LaSOT, TrackingNet) as a got10k dataset.

    got10k reads `seq_names`, len() and items (frame paths, ground truth in the file's own convention).
    Each item is read from disk when asked for, so that the dataset stays small to send to workers.
    """

    def __init__(self, sequences):
        self.sequences = sequences  # siamtrack.datasets.SequenceFiles
        self.seq_names = [files.name for files in sequences]

    def __len__(self) -> int:
        return len(self.sequences)

    def sequence(self, index: int):
        return self.sequences[index].load()

    def __getitem__(self, index):
        seq = self.sequence(self.seq_names.index(index) if isinstance(index, str) else index)
        return [str(path) for path in seq.frames], seq.to_source(seq.boxes)


class FolderExperiment(ExperimentOTB):
    """got10k's OTB experiment (run, record, report) over a given dataset and results folder name;
    `truth_hidden`: the dataset gives first boxes only (TrackingNet's test chunk)."""

    def __init__(self, dataset, name: str, result_dir: str, report_dir: str, truth_hidden: bool = False):
        # ExperimentOTB.__init__ would build got10k's OTB dataset, which downloads the 100 named
        # sequences unless all are present; set the attributes its methods use instead
        self.dataset = dataset
        self.result_dir = os.path.join(result_dir, name)
        self.report_dir = os.path.join(report_dir, name)
        self.nbins_iou = len(IOU_THRESHOLDS)
        self.nbins_ce = len(PIXEL_THRESHOLDS)
        self.truth_hidden = truth_hidden


class ExperimentVOTNumpy2(ExperimentVOT):
    """got10k 0.1.3's ExperimentVOT made to run on numpy 2: the one place siamtrack patches got10k.

    Its run loops time skipped frames as `np.NaN`, an alias numpy 2 removed: every entry point puts it back
    (siamtrack.process.set_up). Its `_calc_iou` builds one array from 1-element IoU arrays and scalar
    NaNs, which numpy 2 rejects as ragged; this one builds a flat float array, with the same burn-in.
    """

    def _calc_iou(self, boxes, anno, bound, burnin=False):
        ious = np.full(len(anno), np.nan)
        scored = np.array([len(box) > 1 for box in boxes])
        if burnin:  # frames right after each (re-)initialisation are too easy to count
            for start in (i for i, box in enumerate(boxes) if box == [1.0]):
                scored[start:start + self.burnin] = False
        for i in np.flatnonzero(scored):
            ious[i] = poly_iou(np.array(boxes[i]), anno[i], bound)[0]
        return ious


def _layout(root: Path) -> str | None:
    try:
        return detect_layout(root)
    except SiamtrackError:
        return None


def _otb_experiment(root: Path, dirs: dict) -> ExperimentOTB:
    if _layout(root) != "otb":
        raise EvaluationError(f"{root}: not an OTB-layout folder (NAME/img/*.jpg, NAME/groundtruth_rect.txt)")
    return FolderExperiment(FolderDataset(find_otb(root)), "OTB", **dirs)


def _lasot_experiment(root: Path, dirs: dict, name: str = "LaSOT") -> ExperimentOTB:
    if _layout(root) != "lasot":
        raise EvaluationError(f"{root}: not a LaSOT folder (CLASS/CLASS-N/img/*.jpg, CLASS/CLASS-N/groundtruth.txt)")
    return FolderExperiment(FolderDataset(find_lasot(root, "test")), name, **dirs)


def _longterm_experiment(root: Path, dirs: dict) -> ExperimentOTB:
    """Long-term sequences in LaSOT's layout (tools/make_longterm.py), or an OTB-layout folder (the target
    always there: the lost flag against the frames where the box failed), scored by
    siamtrack.evaluation.longterm."""
    if _layout(root) == "otb":
        return FolderExperiment(FolderDataset(find_otb(root)), "LongTerm", **dirs)
    if _layout(root) != "lasot":
        raise EvaluationError(f"{root}: neither long-term sequences in LaSOT's layout (CLASS/CLASS-N/img/*.jpg, "
                              "groundtruth.txt; tools/make_longterm.py) nor an OTB-layout folder")
    return _lasot_experiment(root, dirs, "LongTerm")


def _trackingnet_experiment(root: Path, dirs: dict) -> ExperimentOTB:
    """A TrackingNet chunk folder (frames/, anno/), or the top folder, whose TEST chunk it runs."""
    layout = _layout(root)
    if layout == "trackingnet_root" and trackingnet_chunks(root, "test"):
        root = root / TRACKINGNET_TEST
    elif layout != "trackingnet":
        raise EvaluationError(f"{root}: not a TrackingNet folder ({TRACKINGNET_TEST}/ or a chunk folder "
                              "holding frames/NAME/*.jpg and anno/NAME.txt)")
    return FolderExperiment(FolderDataset(find_trackingnet_chunk(root)), "TrackingNet",
                            truth_hidden=root.name == TRACKINGNET_TEST, **dirs)


def _got10k_split(root: Path) -> tuple[Path, str]:
    """(GOT-10k top folder, split) from the top folder (val preferred) or a split folder itself."""
    if root.name in GOT10K_EVAL_SPLITS and (root / "list.txt").is_file():
        return root.parent, root.name
    for split in GOT10K_EVAL_SPLITS:
        if (root / split / "list.txt").is_file():
            return root, split
    raise EvaluationError(f"{root}: no GOT-10k split here (val/list.txt or test/list.txt)")


def _got10k_experiment(root: Path, dirs: dict) -> ExperimentGOT10k:
    top, split = _got10k_split(root)
    return ExperimentGOT10k(str(top), subset=split, **dirs)


def _vot_experiment(root: Path, dirs: dict) -> ExperimentVOT:
    # got10k downloads VOT unless list.txt and every folder it lists are present: never let it try
    list_file = root / "list.txt"
    names = list_file.read_text().split() if list_file.is_file() else []
    missing = [name for name in names if not (root / name).is_dir()]
    if not names or missing:
        raise EvaluationError(f"{root}: not a VOT folder (list.txt naming sequence folders"
                              + (f"; missing {', '.join(missing[:3])})" if missing else ")"))
    return ExperimentVOTNumpy2(str(root), version=VOT_VERSION, experiments="supervised", **dirs)


EXPERIMENTS = {
    "otb": _otb_experiment,
    "got10k": _got10k_experiment,
    "vot": _vot_experiment,
    "uav123": lambda root, dirs: ExperimentUAV123(str(root), **dirs),
    "dtb70": lambda root, dirs: ExperimentDTB70(str(root), **dirs),
    # got10k's TColor128 downloads unless the folder holds over 100 entries
    "tcolor128": lambda root, dirs: FolderExperiment(TColor128(str(root), download=False), "TColor128",
                                                     **dirs),
    "nfs": lambda root, dirs: ExperimentNfS(str(root), fps=NFS_FPS, **dirs),
    "lasot": _lasot_experiment,
    "longterm": _longterm_experiment,
    "trackingnet": _trackingnet_experiment,
}
GOT10K_REPORTS = frozenset(EXPERIMENTS) - {"lasot", "longterm", "trackingnet"}  # the benchmarks got10k itself scores


# --- running one sequence through got10k with a 0-based tracker

class BenchmarkTracker(Tracker):
    """Any siamtrack-style tracker (init/update with 0-based boxes) as a got10k Tracker, boxes in and out
    in the benchmark's convention: got10k's experiments run it unchanged. got10k records boxes and times;
    `lost` keeps, beside them, the tracker's `lost` flag of each frame of the last sequence tracked (False
    for the first frame, and for a tracker without the flag)."""

    def __init__(self, tracker, name: str, one_based: bool = False):
        super().__init__(name=name, is_deterministic=getattr(tracker, "is_deterministic", True))
        self.tracker = tracker
        self.one_based = one_based
        self.lost = np.zeros(0, dtype=bool)

    def init(self, image, box) -> None:
        self.tracker.init(image, to_zero_based(box, self.one_based))

    def update(self, image) -> np.ndarray:
        return from_zero_based(self.tracker.update(image), self.one_based)

    def track(self, img_files, box, visualize=False):
        """got10k's one-pass loop (Tracker.track) with the frames decoded as the tracker consumes them, a few
        ahead (siamtrack.datasets.read_frames), and each frame's time that of init or update alone."""
        boxes = np.zeros((len(img_files), 4))
        times = np.zeros(len(img_files))
        self.lost = np.zeros(len(img_files), dtype=bool)
        for index, _, found, seconds in track_frames(self, read_frames(img_files), box):
            boxes[index], times[index] = found, seconds
            self.lost[index] = index > 0 and bool(getattr(self.tracker, "lost", False))
        return boxes, times


class DatasetView:
    """A got10k dataset narrowed to some of its sequences, so that got10k's run loop or report sees only those."""

    def __init__(self, dataset, indices: list[int]):
        self.dataset = copy.copy(dataset)  # got10k's report switches `return_meta` on: on a copy of its own
        self.indices = list(indices)
        self.seq_names = [dataset.seq_names[index] for index in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index):
        position = self.seq_names.index(index) if isinstance(index, str) else index
        if not 0 <= position < len(self.indices):
            raise IndexError(index)  # ends got10k's `for ... in dataset` loops
        return self.dataset[self.indices[position]]

    @property
    def return_meta(self) -> bool:
        return self.dataset.return_meta

    @return_meta.setter
    def return_meta(self, value: bool) -> None:
        self.dataset.return_meta = value

    def __getattr__(self, name):  # whatever else got10k reads (_corner2rect)
        return getattr(self.dataset, name)


