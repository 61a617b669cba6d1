"""Evaluation: metrics by hand and against got10k, benchmark layouts built in tmp_path from an OTB-layout
folder, box conventions, OpenCV baselines, parallel == serial, resume, and a short real run."""
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import OTB_MINI, require
from got10k.trackers import Tracker

from siamtrack import SiamFCTracker, TrackerSpec
from siamtrack.baselines import OPENCV_TRACKERS, OpenCVTracker
from siamtrack.config import load_config
from siamtrack.core.checkpoint import save_checkpoint
from siamtrack.datasets import ONE_BASED, load_sequences
from siamtrack.errors import EvaluationError, SiamtrackError
from siamtrack.evaluation import evaluate
from siamtrack.evaluation.benchmark import open_benchmark
from siamtrack.evaluation.jobs import Work, plan
from siamtrack.evaluation.metrics import overlaps, sequence_curves
from siamtrack.evaluation.registry import build_tracker
from siamtrack.evaluation.report import summary_markdown
from siamtrack.evaluation.scoring import summarize
from siamtrack.files import PARTIAL, write_atomic
from siamtrack.models import SiameseNet
from siamtrack.synthetic import make_clip

REPO = Path(__file__).resolve().parents[1]
FRAMES = 12  # per synthetic sequence: enough to move, short enough for a quick test
SUBPROCESS_TIMEOUT_S = 120  # a generous bound for a CLI process on a loaded 2-core machine
SEQUENCES = {"alpha": 0, "beta": 1}  # name -> seed of its synthetic clip


# --- benchmark folders, written on the fly

def write_otb(root: Path) -> Path:
    """Two synthetic sequences in OTB layout, ground truth 1-based as OTB writes it."""
    for name, seed in SEQUENCES.items():
        clip = make_clip(seed=seed)
        (root / name / "img").mkdir(parents=True)
        for i, frame in enumerate(clip.frames[:FRAMES], start=1):
            cv2.imwrite(str(root / name / "img" / f"{i:04d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        np.savetxt(root / name / "groundtruth_rect.txt", clip.boxes[:FRAMES] + [1, 1, 0, 0],
                   fmt="%g", delimiter=",")
    return root


def write_got10k_val(otb_root: Path, root: Path) -> Path:
    """The OTB-layout sequences as a GOT-10k val split (1-based boxes, labels, meta_info.ini)."""
    split = root / "val"
    split.mkdir(parents=True)
    sequences = load_sequences(otb_root)
    for seq in sequences:
        folder = split / seq.name
        folder.mkdir()
        for i, frame in enumerate(seq.frames, start=1):
            shutil.copy(frame, folder / f"{i:08d}.jpg")
        np.savetxt(folder / "groundtruth.txt", seq.boxes + [1, 1, 0, 0], fmt="%g", delimiter=",")
        for label, value in (("absence", 0), ("cut_by_image", 0), ("cover", 8)):
            np.savetxt(folder / f"{label}.label", np.full(len(seq), value), fmt="%d")
        height, width = cv2.imread(str(seq.frames[0])).shape[:2]
        (folder / "meta_info.ini").write_text(f"[METAINFO]\nresolution: ({width}, {height})\n")
    (split / "list.txt").write_text("\n".join(seq.name for seq in sequences) + "\n")
    return root


def write_vot(root: Path, frames: int) -> Path:
    """A VOT folder (list.txt, frames beside 1-based groundtruth.txt) of still synthetic scenes."""
    for name, seed in SEQUENCES.items():
        clip = make_clip(num_frames=1, seed=seed)
        (root / name).mkdir(parents=True)
        for i in range(1, frames + 1):
            cv2.imwrite(str(root / name / f"{i:08d}.jpg"), cv2.cvtColor(clip.frames[0], cv2.COLOR_RGB2BGR))
        np.savetxt(root / name / "groundtruth.txt", np.tile(clip.boxes[0] + [1, 1, 0, 0], (frames, 1)),
                   fmt="%g", delimiter=",")
    (root / "list.txt").write_text("\n".join(SEQUENCES) + "\n")
    return root


@pytest.fixture(scope="module")
def otb(tmp_path_factory) -> Path:
    return write_otb(tmp_path_factory.mktemp("otb"))


@pytest.fixture(scope="module")
def siam_options(tmp_path_factory) -> TrackerSpec:
    """A fixed, randomly initialised AlexNet checkpoint: the same network in every worker process."""
    torch.manual_seed(0)
    cfg = load_config("siamfc_alexnet", ['weights=""'])
    path = tmp_path_factory.mktemp("weights") / "alexnet_random.pt"
    save_checkpoint({"model": SiameseNet(cfg.model).state_dict(), "config": cfg.to_dict()}, path)
    return TrackerSpec(weights=str(path), device="cpu")


def record_texts(out: Path) -> dict[str, str]:
    """Every got10k box record under out/results (times excluded: they are measurements)."""
    return {str(p.relative_to(out)): p.read_text() for p in sorted((out / "results").rglob("*.txt"))
            if "time" not in p.name}


# --- metrics

def test_metrics_match_a_hand_computation():
    truth = np.tile([0.0, 0.0, 10.0, 10.0], (4, 1))
    boxes = truth + [[0, 0, 0, 0], [5, 0, 0, 0], [10, 0, 0, 0], [30, 0, 0, 0]]
    # IoU 1, 50/150, 0, 0; centre errors 0, 5, 10, 30 px; in box widths 0, 0.5, 1, 3
    assert np.allclose(overlaps(boxes, truth), [1, 1 / 3, 0, 0])
    curves = sequence_curves(boxes, truth)
    # success: IoU 1 beats 20 of the 21 thresholds 0, 0.05 .. 1; IoU 1/3 beats 7 (0 .. 0.3)
    assert curves.success_auc == pytest.approx((20 + 7) / (21 * 4))
    assert curves.precision_score == pytest.approx(3 / 4)  # 0, 5 and 10 px are within 20
    # normalized: 0 is within all 51 thresholds 0 .. 0.5; 0.5 within the last one only
    assert curves.norm_precision_score == pytest.approx((51 + 1) / (51 * 4))


def test_scores_equal_got10ks_own_on_the_same_result_files(otb, tmp_path):
    benchmark = open_benchmark("otb", otb, tmp_path)
    rng = np.random.default_rng(0)
    for tracker in ("noisy", "noisier"):
        for index, name in enumerate(benchmark.seq_names):
            _, truth = benchmark.experiment.dataset[index]
            jitter = rng.normal(0, 8 if tracker == "noisy" else 20, truth.shape)
            boxes = np.maximum(truth + jitter, 1)
            records, _ = benchmark.result_files(tracker, name)
            benchmark.experiment._record(records[0], boxes, np.full(len(boxes), 0.01))
    summary = summarize(benchmark, ["noisy", "noisier"])
    for tracker in ("noisy", "noisier"):
        theirs = summary.report[tracker]
        assert summary.overall[tracker]["success_auc"] == pytest.approx(theirs["overall"]["success_score"])
        assert summary.overall[tracker]["precision"] == pytest.approx(theirs["overall"]["precision_score"])
        for name in benchmark.seq_names:
            assert (summary.sequences[name][tracker]["success_auc"]
                    == pytest.approx(theirs["seq_wise"][name]["success_score"]))
    assert 0 < summary.overall["noisier"]["success_auc"] < summary.overall["noisy"]["success_auc"] < 1


def test_the_size_bound_scores_the_tracked_centres_with_the_true_sizes(otb, tmp_path):
    """A tracker with every centre right and every box twice too big: the size bound is a perfect score."""
    benchmark = open_benchmark("otb", otb, tmp_path)
    for index, name in enumerate(benchmark.seq_names):
        _, truth = benchmark.experiment.dataset[index]
        boxes = np.concatenate([truth[:, :2] - truth[:, 2:] / 2, truth[:, 2:] * 2], axis=1)
        records, _ = benchmark.result_files("oversized", name)
        benchmark.experiment._record(records[0], boxes, np.full(len(boxes), 0.01))
    scores = summarize(benchmark, ["oversized"]).overall["oversized"]
    assert scores["size_bound"] == pytest.approx(20 / 21)  # IoU 1 beats every threshold but 1
    assert scores["success_auc"] < 0.4 and scores["precision"] == 1.0


def test_eval_of_a_single_target_gives_the_boxes_of_the_tracker_run_alone(otb, tmp_path):
    """eval's single-target path is the tracker's own: the result files hold the boxes a plain
    init/update loop gives (which the pyramid test holds to the tracker before several targets)."""
    evaluate("otb", otb, ["siamfc_lite0_fast"], tmp_path / "out", TrackerSpec(device="cpu"))
    tracker = SiamFCTracker("siamfc_lite0_fast", device="cpu")
    for seq in load_sequences(otb):
        frames = [cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB) for path in seq.frames]
        tracker.init(frames[0], seq.boxes[0])
        alone = np.array([seq.boxes[0]] + [tracker.update(frame) for frame in frames[1:]])
        written = np.loadtxt(tmp_path / "out" / "results" / "OTB" / "siamfc_lite0_fast" / f"{seq.name}.txt",
                             delimiter=",")
        assert np.abs(written - seq.to_source(alone)).max() <= 1e-3  # got10k writes 3 decimals


# --- box conventions and benchmark layouts

def run_sequence(benchmark, tracker, name: str, index: int) -> None:
    """Run sequence `index` with `tracker` and keep its results under `name`, in this process, as a job would."""
    benchmark.store(name, benchmark.seq_names[index], benchmark.track(tracker, name, index))


class Probe(Tracker):
    """Remembers the box it was given and answers it shifted 3 px right."""

    def __init__(self):
        super().__init__(name="probe", is_deterministic=True)

    def init(self, image, box):
        self.given = np.asarray(box, dtype=np.float64)

    def update(self, image):
        return self.given + [3, 0, 0, 0]


@pytest.mark.parametrize("dataset", ["otb", "got10k"])
def test_trackers_get_0_based_boxes_and_results_keep_the_benchmarks_convention(otb, tmp_path, dataset):
    root = otb if dataset == "otb" else write_got10k_val(otb, tmp_path / "got10k")
    benchmark = open_benchmark(dataset, root, tmp_path / "out")
    probe = Probe()
    run_sequence(benchmark, probe, "probe", 0)
    truth_0_based = make_clip(seed=SEQUENCES[benchmark.seq_names[0]]).boxes[0]
    assert np.array_equal(probe.given, truth_0_based)
    records, _ = benchmark.result_files("probe", benchmark.seq_names[0])
    written = np.loadtxt(records[0], delimiter=",")
    shift = [1, 1, 0, 0] if ONE_BASED[dataset] else [0, 0, 0, 0]
    assert np.allclose(written[0], truth_0_based + shift)
    assert np.allclose(written[1], truth_0_based + [3, 0, 0, 0] + shift)


@pytest.mark.parametrize("dataset", ["otb", "got10k"])
def test_a_job_writes_nothing_where_results_go_and_the_driver_keeps_its_files_whole(otb, tmp_path, dataset):
    """A job (on a worker, a node) hands its files back; only `store` writes them, and then the marker."""
    root = otb if dataset == "otb" else write_got10k_val(otb, tmp_path / "got10k")
    benchmark = open_benchmark(dataset, root, tmp_path / "out")
    name = benchmark.seq_names[0]
    files = benchmark.track(Probe(), "probe", 0)
    assert not (tmp_path / "out").exists()
    benchmark.store("probe", name, files)
    records, times = benchmark.result_files("probe", name)
    assert {Path(path).relative_to(benchmark.experiment.result_dir).as_posix(): Path(path).read_bytes()
            for path in [*records, times]} == files
    assert benchmark.marker("probe", name).is_file()
    assert not list((tmp_path / "out").rglob(f"*{PARTIAL}"))


def test_a_file_is_written_whole_or_not_at_all_and_partial_files_are_discarded(tmp_path, monkeypatch):
    target = tmp_path / "results" / "seq.txt"

    def interrupted(self, data):  # Ctrl-C in the middle of writing the file
        Path.write_text(self, "1,2,")
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_bytes", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, b"1,2,3,4\n")
    monkeypatch.undo()
    assert list(target.parent.iterdir()) == []
    write_atomic(target, b"1,2,3,4\n")
    assert target.read_bytes() == b"1,2,3,4\n"
    left = tmp_path / "progress" / "OTB" / "kcf" / f".alpha.123{PARTIAL}"  # as a killed process leaves one
    left.parent.mkdir(parents=True)
    left.write_text("")
    benchmark = open_benchmark("otb", write_otb(tmp_path / "otb"), tmp_path)
    benchmark.discard_partial_files()
    assert not left.exists() and target.exists()


def test_otb_convention_agrees_with_the_dataset_reader(otb):
    assert all(seq.one_based == ONE_BASED["otb"] for seq in load_sequences(otb))


def test_got10k_val_layout_made_from_an_otb_sequence(otb, tmp_path):
    root = write_got10k_val(otb, tmp_path / "GOT-10k")
    summary = evaluate("got10k", root / "val", ["kcf"], tmp_path / "out")
    name = sorted(SEQUENCES)[0]
    assert (tmp_path / "out" / "results" / "GOT-10k" / "kcf" / name / f"{name}_001.txt").is_file()
    scores = summary.overall["kcf"]
    assert 0 < scores["ao"] <= 1 and 0 < scores["success_auc"] <= 1
    assert (tmp_path / "out" / "reports" / "GOT-10k" / "kcf" / "performance.json").is_file()


class Runaway(Tracker):
    """Stays put, and loses the target on the 13th update after each (re-)initialisation."""

    def __init__(self):
        super().__init__(name="runaway", is_deterministic=True)

    def init(self, image, box):
        self.box, self.updates = np.asarray(box, dtype=np.float64), 0

    def update(self, image):
        self.updates += 1
        return self.box + ([10_000, 0, 0, 0] if self.updates == 13 else 0)


def test_vot_runs_and_reports_failures_on_numpy_2(tmp_path):
    # long enough to score frames past VOT's 10-frame burn-in after initialisation
    benchmark = open_benchmark("vot", write_vot(tmp_path / "vot", frames=24), tmp_path / "out")
    for index in range(len(benchmark.seq_names)):
        run_sequence(benchmark, Runaway(), "runaway", index)
    summary = summarize(benchmark, ["runaway"])
    name = benchmark.seq_names[0]
    records, _ = benchmark.result_files("runaway", name)
    lines = Path(records[0]).read_text().split()
    # init at 0, failure at 13, frames 14-17 skipped, re-init at 18
    assert lines[0] == "1" and lines[13] == "2" and lines[14] == "0" and lines[18] == "1"
    assert summary.sequences[name]["runaway"]["failures"] == 1
    assert summary.overall["runaway"]["robustness"] > 0
    assert summary.overall["runaway"]["accuracy"] == pytest.approx(1)  # the scene is still


# --- LaSOT, as its toolkit scores it

def write_lasot(root: Path, sequences: dict[str, tuple[np.ndarray, dict[str, list[int]]]]) -> Path:
    """LaSOT sequences cat-N: blank frames, 1-based ground truth and the frames flagged in each flag file."""
    for name, (truth, flagged) in sequences.items():
        folder = root / "cat" / name
        (folder / "img").mkdir(parents=True)
        for i in range(1, len(truth) + 1):
            cv2.imwrite(str(folder / "img" / f"{i:08d}.jpg"), np.zeros((64, 80, 3), np.uint8))
        np.savetxt(folder / "groundtruth.txt", truth, fmt="%g", delimiter=",")
        for file in ("full_occlusion.txt", "out_of_view.txt"):
            marks = np.zeros(len(truth), int)
            marks[flagged.get(file, [])] = 1
            (folder / file).write_text(",".join(map(str, marks)) + "\n")
    return root


def test_lasot_scores_as_its_toolkit_absent_frames_fail_and_a_box_of_no_size_holds(tmp_path):
    visible = np.tile([11.0, 11.0, 20.0, 20.0], (10, 1))
    hidden = visible.copy()
    hidden[[3, 4, 5]] = 0  # LaSOT's boxes where the target is not visible
    sequences = {"cat-1": (hidden, {"full_occlusion.txt": [3, 4], "out_of_view.txt": [5]}), "cat-2": (visible, {})}
    benchmark = open_benchmark("lasot", write_lasot(tmp_path / "lasot", sequences), tmp_path / "out")
    for name in benchmark.seq_names:
        boxes = visible.copy()
        if name == "cat-1":
            boxes[[3, 4, 5]] = [300, 300, 5, 5]  # frames without a visible target fail, whatever the box
        boxes[7] = np.nan  # no box: the toolkit takes frame 6's, which is right
        benchmark.experiment._record(benchmark.result_files("exact", name)[0][0], boxes, np.full(10, 0.01))
    summary = summarize(benchmark, ["exact"])
    # cat-1: 7 of 10 frames visible, each with IoU 1 (above 20 of the 21 thresholds) and no centre error
    cat1, cat2 = (summary.sequences[name]["exact"] for name in ("cat-1", "cat-2"))
    assert cat1["success_auc"] == pytest.approx(7 / 10 * 20 / 21)
    assert cat1["precision"] == pytest.approx(7 / 10) and cat1["norm_precision_20"] == pytest.approx(7 / 10)
    assert cat2["success_auc"] == pytest.approx(20 / 21) and cat2["precision"] == 1
    assert summary.overall["exact"]["success_auc"] == pytest.approx((7 / 10 + 1) / 2 * 20 / 21)
    assert summary.columns == ["success_auc", "precision", "norm_precision_20", "size_bound", "fps"]
    # cat-1 has frames fully occluded and out of view: its attributes; cat-2 none
    assert summary.attributes == {attribute: {"sequences": 1, "exact": pytest.approx(cat1["success_auc"])}
                                  for attribute in ("Full Occlusion", "Out-of-View")}
    assert summary.report is None  # got10k does not score LaSOT: ours alone
    assert "## Success AUC per attribute" in summary_markdown(summary)


# --- baselines

@pytest.mark.parametrize("kind", sorted(OPENCV_TRACKERS))
def test_opencv_baselines_follow_the_synthetic_target(kind):
    clip = make_clip()
    tracker = build_tracker(kind, None)
    tracker.init(clip.frames[0], clip.boxes[0])
    boxes = np.array([tracker.update(frame) for frame in clip.frames[1:FRAMES]])
    assert boxes.shape == (FRAMES - 1, 4)
    assert overlaps(boxes, clip.boxes[1:FRAMES]).mean() > 0.5


def test_opencv_baseline_keeps_its_last_box_when_opencv_loses_the_target(monkeypatch):
    class Flaky:
        answers = iter([(True, (10, 12, 30, 20)), (False, (0, 0, 0, 0))])

        def init(self, frame, rect):
            pass

        def update(self, frame):
            return next(self.answers)

    monkeypatch.setitem(OPENCV_TRACKERS, "kcf", Flaky)
    tracker = OpenCVTracker("kcf")
    frame = np.zeros((60, 80, 3), np.uint8)
    tracker.init(frame, (5, 5, 20, 20))
    assert np.array_equal(tracker.update(frame), [10, 12, 30, 20])
    assert np.array_equal(tracker.update(frame), [10, 12, 30, 20])


# --- running

def test_parallel_results_equal_serial_ones(otb, tmp_path, siam_options):
    trackers = ["siamtrack", "csrt", "kcf"]  # mil is excluded: OpenCV's MIL is random and cannot be seeded
    evaluate("otb", otb, trackers, tmp_path / "serial", siam_options, workers=1, threads=1)
    evaluate("otb", otb, trackers, tmp_path / "parallel", siam_options, workers=2, threads=2)
    serial = record_texts(tmp_path / "serial")
    assert len(serial) == len(trackers) * len(SEQUENCES)
    assert record_texts(tmp_path / "parallel") == serial


def test_evaluation_leaves_no_figure_open(otb, tmp_path):
    import matplotlib.pyplot as plt
    mine = plt.figure()  # a caller's own figure stays open
    before = set(plt.get_fignums())
    evaluate("otb", otb, ["kcf"], tmp_path / "out")
    assert set(plt.get_fignums()) == before
    plt.close(mine)


def test_rerun_needs_resume_and_then_runs_only_unfinished_sequences(otb, tmp_path):
    out = tmp_path / "out"
    evaluate("otb", otb, ["kcf"], out)
    kept, redone = sorted(SEQUENCES)
    (out / "progress" / "OTB" / "kcf" / redone).unlink()  # as if the run had stopped before `redone`
    (out / "results" / "OTB" / "kcf" / f"{redone}.txt").unlink()
    kept_file = out / "results" / "OTB" / "kcf" / f"{kept}.txt"
    kept_mtime = kept_file.stat().st_mtime_ns
    with pytest.raises(EvaluationError, match="--resume"):
        evaluate("otb", otb, ["kcf"], out)
    assert [job.sequence for job in plan(open_benchmark("otb", otb, out), ["kcf"], resume=True)] == [redone]
    summary = evaluate("otb", otb, ["kcf"], out, resume=True)
    assert kept_file.stat().st_mtime_ns == kept_mtime
    assert set(summary.sequences) == set(SEQUENCES)


# --- bad input

def test_bad_input_is_a_one_line_error(otb, tmp_path):
    vot_missing = write_vot(tmp_path / "vot", frames=2)
    (vot_missing / "list.txt").write_text("alpha\nnot_there\n")  # got10k would try to download it
    cases = [
        (lambda: evaluate("otb100", otb, ["kcf"], tmp_path / "a"), "unknown dataset"),
        (lambda: evaluate("otb", tmp_path / "nowhere", ["kcf"], tmp_path / "b"), "not found"),
        (lambda: evaluate("otb", otb, ["kcf", "goturn"], tmp_path / "c"), "unknown tracker 'goturn'"),
        (lambda: evaluate("otb", otb, [], tmp_path / "d"), "no trackers"),
        (lambda: evaluate("got10k", otb, ["kcf"], tmp_path / "e"), "no GOT-10k split"),
        (lambda: evaluate("vot", vot_missing, ["kcf"], tmp_path / "f"), "missing not_there"),
        (lambda: evaluate("otb", vot_missing, ["kcf"], tmp_path / "g"), "not an OTB-layout"),
        (lambda: evaluate("uav123", otb, ["kcf"], tmp_path / "h"), "not laid out as got10k reads uav123"),
    ]
    for call, message in cases:
        with pytest.raises(SiamtrackError, match=message) as error:
            call()
        assert "\n" not in str(error.value)


def test_bad_data_fails_its_sequence_alone_reported_in_the_summary_and_resumable(otb, tmp_path, capsys):
    from siamtrack.cli import main
    root = tmp_path / "otb"
    shutil.copytree(otb, root)
    shutil.copytree(otb / "alpha", root / "gamma")
    truth = root / "alpha" / "groundtruth_rect.txt"
    good_truth = truth.read_text()
    lines = good_truth.splitlines()
    truth.write_text("\n".join(lines[:2] + ["1,2,x,4"] + lines[3:]) + "\n")  # a malformed line
    frame = root / "beta" / "img" / "0005.jpg"
    good_frame = frame.read_bytes()
    frame.write_bytes(b"not a jpeg")  # an unreadable frame, found by the job as it reaches it
    out = tmp_path / "out"
    args = ["eval", "--dataset", "otb", "--root", str(root), "--trackers", "kcf,csrt", "--out", str(out), "--quiet"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "not scored: alpha: " in err and "groundtruth_rect.txt:3: expected 4 or 8 numbers" in err
    assert "not scored: beta: " in err and "0005.jpg: cannot read the frame" in err and "(kcf, csrt)" in err
    summary_md = (out / "summary.md").read_text()
    assert "# OTB: 1 sequence" in summary_md and "## Not scored: 2 sequences failed" in summary_md
    assert "| gamma | kcf |" in summary_md and "| beta | csrt | " in summary_md
    gamma = out / "results" / "OTB" / "kcf" / "gamma.txt"
    gamma_mtime = gamma.stat().st_mtime_ns
    truth.write_text(good_truth)
    frame.write_bytes(good_frame)
    assert main(args + ["--resume"]) == 0
    assert gamma.stat().st_mtime_ns == gamma_mtime  # finished before: not run again
    assert "# OTB: 3 sequences" in (out / "summary.md").read_text()


@pytest.mark.parametrize("trackers, extra, message", [
    ("kcf,ALEXNET.yaml", [], "config file not found: ALEXNET.yaml"),
    ("siamfc_alexnet", [], "no weights ship for config 'siamfc_alexnet'"),
    ("siamtrack", ["--config", "siamfc_alexnet"], "no weights ship for config 'siamfc_alexnet'"),
])
def test_cli_eval_names_a_missing_config_file_or_unshipped_weights(otb, tmp_path, capsys, trackers, extra,
                                                                    message):
    from siamtrack.cli import main
    out = tmp_path / "out"
    assert main(["eval", "--dataset", "otb", "--root", str(otb), "--trackers", trackers, "--out", str(out),
                 "--quiet", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"siamtrack: error: {message}") and len(err.splitlines()) == 1, err
    assert not out.exists()


def test_several_siamtrack_models_run_side_by_side_under_their_config_names(otb, tmp_path):
    alexnet = tmp_path / "random_alexnet.yaml"
    alexnet.write_text('base: siamfc_alexnet\nweights: ""\n')
    summary = evaluate("otb", otb, ["siamfc_lite0_fast", str(alexnet), "kcf"], tmp_path / "out", workers=1)
    assert summary.trackers == ["siamfc_lite0_fast", "random_alexnet", "kcf"]
    assert (tmp_path / "out" / "results" / "OTB" / "random_alexnet").is_dir()
    # the shipped fast model follows the synthetic target; an untrained AlexNet gives a different result
    fast, untrained = (summary.overall[t]["success_auc"] for t in ("siamfc_lite0_fast", "random_alexnet"))
    assert fast > 0.5 and fast != untrained


# --- the real thing, kept short

def otb_mini_subset(root: Path, names: list[str], frames: int) -> Path:
    for name in names:
        source = require(OTB_MINI) / name
        (root / name / "img").mkdir(parents=True)
        for path in sorted((source / "img").iterdir())[:frames]:
            shutil.copy(path, root / name / "img" / path.name)
        lines = (source / "groundtruth_rect.txt").read_text().splitlines()[:frames]
        (root / name / "groundtruth_rect.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.mark.slow
def test_real_run_on_two_short_otb_mini_sequences(tmp_path):
    root = otb_mini_subset(tmp_path / "otb", ["Crossing", "DragonBaby"], frames=30)
    trackers = ["siamtrack", "csrt", "kcf", "mil"]
    summary = evaluate("otb", root, trackers, tmp_path / "out", TrackerSpec(device="cpu"), workers=2, threads=2)
    for tracker in trackers:
        scores = summary.overall[tracker]
        assert 0 <= scores["success_auc"] <= 1 and 0 <= scores["precision"] <= 1 and scores["fps"] > 0
        assert scores["success_auc"] == pytest.approx(summary.report[tracker]["overall"]["success_score"])
    table = (tmp_path / "out" / "summary.md").read_text()
    assert all(f"| {t} |" in table for t in trackers) and "| Crossing | csrt |" in table
    assert (tmp_path / "out" / "success.png").stat().st_size > 0
    assert (tmp_path / "out" / "precision.png").stat().st_size > 0
    report = json.loads((tmp_path / "out" / "reports" / "OTB" / "siamtrack" / "performance.json").read_text())
    assert set(report) == set(trackers)


def otb_mini_frames(name: str, frames: int) -> tuple[list[Path], np.ndarray]:
    """The first frames of an otb_mini sequence and their 1-based boxes."""
    seq = load_sequences(require(OTB_MINI) / name)[0]
    return seq.frames[:frames], seq.to_source(seq.boxes[:frames])


@pytest.mark.slow
def test_lasot_layout_made_from_otb_mini_frames(tmp_path):
    root = tmp_path / "LaSOT"
    for number, name in enumerate(["Crossing", "DragonBaby"], start=1):
        folder = root / "person" / f"person-{number}"
        (folder / "img").mkdir(parents=True)
        paths, boxes = otb_mini_frames(name, 30)
        for i, path in enumerate(paths, start=1):
            shutil.copy(path, folder / "img" / f"{i:08d}.jpg")
        np.savetxt(folder / "groundtruth.txt", boxes, fmt="%g", delimiter=",")
        occluded = np.zeros(30, int)
        occluded[10:13] = number == 1
        (folder / "full_occlusion.txt").write_text(",".join(map(str, occluded)) + "\n")
        (folder / "out_of_view.txt").write_text(",".join(["0"] * 30) + "\n")
    summary = evaluate("lasot", root, ["kcf"], tmp_path / "out")
    scores = summary.overall["kcf"]
    assert 0 < scores["success_auc"] <= 1 and 0 < scores["norm_precision_20"] <= 1 and scores["fps"] > 0
    assert summary.attributes == {"Full Occlusion": {
        "sequences": 1, "kcf": pytest.approx(summary.sequences["person-1"]["kcf"]["success_auc"])}}
    assert (tmp_path / "out" / "results" / "LaSOT" / "kcf" / "person-2.txt").is_file()
    assert "| Full Occlusion | 1 |" in (tmp_path / "out" / "summary.md").read_text()


@pytest.mark.slow
def test_trackingnet_test_chunk_gives_the_servers_archive_and_a_train_chunk_scores(tmp_path):
    root = tmp_path / "TrackingNet"
    names = ["Crossing", "DragonBaby"]
    for chunk in ("TEST", "TRAIN_0"):
        for name in names:
            paths, boxes = otb_mini_frames(name, 20)
            (root / chunk / "frames" / name).mkdir(parents=True)
            for i, path in enumerate(paths):  # TrackingNet numbers frames from 0
                shutil.copy(path, root / chunk / "frames" / name / f"{i}.jpg")
            zero_based = boxes - [1, 1, 0, 0]
            (root / chunk / "anno").mkdir(exist_ok=True)
            np.savetxt(root / chunk / "anno" / f"{name}.txt", zero_based[:1] if chunk == "TEST" else zero_based,
                       fmt="%g", delimiter=",")
    test = evaluate("trackingnet", root, ["kcf"], tmp_path / "test")  # the top folder: its TEST chunk
    assert test.columns == ["fps"] and test.submissions == [tmp_path / "test" / "reports" / "TrackingNet" / "kcf.zip"]
    with zipfile.ZipFile(test.submissions[0]) as archive:
        assert archive.namelist() == [f"{name}.txt" for name in names]
        for name in names:
            member = archive.read(f"{name}.txt")
            assert member == (tmp_path / "test" / "results" / "TrackingNet" / "kcf" / f"{name}.txt").read_bytes()
            rows = np.loadtxt(io.BytesIO(member), delimiter=",")
            given = np.loadtxt(root / "TEST" / "anno" / f"{name}.txt", delimiter=",")
            assert rows.shape == (20, 4) and np.allclose(rows[0], given)
    train = evaluate("trackingnet", root / "TRAIN_0", ["kcf"], tmp_path / "train")
    assert 0 < train.overall["kcf"]["success_auc"] <= 1 and "norm_precision" in train.columns


# --- command line and tools

def test_cli_eval_prints_the_table_and_resumes_only_when_asked(otb, tmp_path, capsys):
    from siamtrack.cli import main
    args = ["eval", "--dataset", "otb", "--root", str(otb), "--trackers", "kcf,csrt",
            "--out", str(tmp_path / "out"), "--quiet"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "| kcf |" in printed and "| csrt |" in printed and "summary.md" in printed
    assert main(args) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(args + ["--resume"]) == 0


def test_cli_eval_backend_reaches_every_siamtrack_model(otb, tmp_path, monkeypatch):
    from siamtrack.cli import main
    from siamtrack.evaluation import jobs
    built, real = [], jobs.build_tracker

    def spy(name, spec, model):
        tracker = real(name, spec, model)
        built.append((name, tracker.model.backend.name))
        return tracker

    monkeypatch.setattr(jobs, "build_tracker", spy)
    assert main(["eval", "--dataset", "otb", "--root", str(otb), "--trackers", "siamtrack,siamfc_lite0_fast",
                 "--config", "siamfc_lite0_fast", "--backend", "eager", "--out", str(tmp_path / "out"),
                 "--quiet"]) == 0
    assert set(built) == {("siamtrack", "eager"), ("siamfc_lite0_fast", "eager")}


def write_clips(root: Path, count: int, frames: int) -> Path:
    """`count` synthetic OTB sequences seq0, seq1, ... of `frames` frames each."""
    for seed in range(count):
        clip = make_clip(num_frames=frames, seed=seed)
        (root / f"seq{seed}" / "img").mkdir(parents=True)
        for i, frame in enumerate(clip.frames, start=1):
            cv2.imwrite(str(root / f"seq{seed}" / "img" / f"{i:04d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        np.savetxt(root / f"seq{seed}" / "groundtruth_rect.txt", clip.boxes + [1, 1, 0, 0], fmt="%g", delimiter=",")
    return root


@pytest.mark.slow
def test_sigterm_mid_run_keeps_no_half_written_file_and_resume_recomputes_nothing_finished(tmp_path):
    from siamtrack.cli import main
    count, frames = 6, 30
    root = write_clips(tmp_path / "otb", count, frames)
    out = tmp_path / "out"
    args = ["eval", "--dataset", "otb", "--root", str(root), "--trackers", "siamfc_lite0_fast", "--out", str(out),
            "--quiet"]
    markers = out / "progress" / "OTB" / "siamfc_lite0_fast"
    run = subprocess.Popen([sys.executable, "-m", "siamtrack", *args], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        deadline = time.monotonic() + SUBPROCESS_TIMEOUT_S
        while not (markers.is_dir() and any(markers.iterdir())):
            assert run.poll() is None and time.monotonic() < deadline, "the evaluation ended before a SIGTERM"
            time.sleep(0.05)
        run.send_signal(signal.SIGTERM)  # as `kill`, a scheduler's or a container's stop sends it
        _, err = run.communicate(timeout=SUBPROCESS_TIMEOUT_S)
    finally:
        run.kill()
    assert run.returncode == 130 and err.strip().endswith("siamtrack: interrupted"), err
    assert not list(out.rglob(f"*{PARTIAL}"))
    results = out / "results" / "OTB" / "siamfc_lite0_fast"
    kept = sorted(results.rglob("*.txt"))
    assert all(len(path.read_text().splitlines()) == frames for path in kept)  # whole, every one
    finished = {p.name: (results / f"{p.name}.txt").stat().st_mtime_ns for p in markers.iterdir()}
    assert 1 <= len(finished) < count
    assert main(args + ["--resume"]) == 0
    assert {p.name for p in markers.iterdir()} == {f"seq{s}" for s in range(count)}
    assert {name: (results / f"{name}.txt").stat().st_mtime_ns for name in finished} == finished


def test_each_job_sets_its_share_of_the_cpu_threads_and_the_callers_come_back(otb, tmp_path, monkeypatch):
    from siamtrack import process
    from siamtrack.evaluation import jobs
    calls, real = [], process.use_threads

    def spy(threads):
        calls.append(threads)
        real(threads)

    monkeypatch.setattr(process, "use_threads", spy)  # each job's, through process.set_up
    monkeypatch.setattr(jobs, "use_threads", spy)  # the caller's, put back
    before = torch.get_num_threads()
    evaluate("otb", otb, ["kcf"], tmp_path / "out", workers=1, threads=3)
    assert calls == [3] * len(SEQUENCES) + [before] and torch.get_num_threads() == before


def test_the_progress_bar_counts_the_nodes_that_ran_jobs(capsys):
    from siamtrack.cli.eval import progress_bar
    from siamtrack.evaluation.jobs import Job, JobResult
    results = [JobResult(Job("kcf", i, f"s{i}"), {}, None, node) for i, node in enumerate(["a1", "b2", "a1"])]
    assert list(progress_bar(iter(results), 3, quiet=False, show_nodes=True)) == results
    err = capsys.readouterr().err
    assert "3/3" in err and "2 nodes" in err


@pytest.mark.parametrize("dataset", ["otb", "got10k", "vot"])
def test_tools_scripts_run_the_same_evaluation(otb, tmp_path, dataset):
    roots = {"otb": lambda: otb, "got10k": lambda: write_got10k_val(otb, tmp_path / "got10k"),
             "vot": lambda: write_vot(tmp_path / "vot", frames=FRAMES)}
    script = Path(__file__).resolve().parents[1] / "tools" / f"eval_{dataset}.py"
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, str(script), "--root", str(roots[dataset]()), "--trackers", "kcf",
                           "--out", str(out), "--quiet"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "| kcf |" in done.stdout and (out / "summary.md").is_file()


def test_the_driver_builds_no_model_and_needs_no_gpu_when_the_jobs_run_elsewhere(otb, tmp_path, monkeypatch):
    """A cluster run with --device cuda: the driver checks the config and weights and builds nothing; here a
    runner stands in for the cluster's GPU nodes, running each job on the CPU in this process."""
    from dataclasses import replace

    from siamtrack.core.model import Model
    from siamtrack.evaluation.jobs import run_job
    devices, load = [], Model.load.__func__

    def recorded(cls, config=None, weights=None, device="auto", *args, **kwargs):
        devices.append(device)
        return load(cls, config, weights, device, *args, **kwargs)

    class GpuNodes:
        runs_here = False

        def run(self, benchmark, trackers, jobs):
            on_cpu = {label: spec and replace(spec, device="cpu") for label, spec in trackers.items()}
            assert trackers["siamfc_lite0_fast"].device == "cuda"  # as the driver hands them over
            work = Work(benchmark, on_cpu, threads=1)
            yield from (run_job(work, job) for job in jobs)

    monkeypatch.setattr(Model, "load", classmethod(recorded))
    summary = evaluate("otb", otb, ["siamfc_lite0_fast"], tmp_path / "out", TrackerSpec(device="cuda"),
                       runner=GpuNodes())
    assert set(devices) == {"cpu"} and len(summary.sequences) == len(SEQUENCES)
