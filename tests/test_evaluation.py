"""Evaluation: metrics by hand and against got10k, benchmark layouts built in tmp_path from an OTB-layout
folder, box conventions, OpenCV baselines, parallel == serial, resume, and a short real run."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from got10k.trackers import Tracker

from conftest import OTB_MINI, require
from siamtrack import SiamFCTracker, TrackerSpec
from siamtrack.baselines import OPENCV_TRACKERS, OpenCVTracker
from siamtrack.checkpoint import save_atomic
from siamtrack.config import load_config
from siamtrack.datasets import ONE_BASED, load_sequences
from siamtrack.errors import EvaluationError, SiamtrackError
from siamtrack.evaluation import evaluate, plan
from siamtrack.experiments import open_benchmark
from siamtrack.metrics import overlaps, sequence_curves
from siamtrack.models import SiameseNet
from siamtrack.registry import build_tracker
from siamtrack.synthetic import make_clip

FRAMES = 12  # per synthetic sequence: enough to move, short enough for a quick test
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
    save_atomic({"model": SiameseNet(cfg.model).state_dict(), "config": cfg.to_dict()}, path)
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
    from siamtrack.evaluation import summarize
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
    from siamtrack.evaluation import summarize
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
    benchmark.run_sequence(probe, "probe", 0)
    truth_0_based = make_clip(seed=SEQUENCES[benchmark.seq_names[0]]).boxes[0]
    assert np.array_equal(probe.given, truth_0_based)
    records, _ = benchmark.result_files("probe", benchmark.seq_names[0])
    written = np.loadtxt(records[0], delimiter=",")
    shift = [1, 1, 0, 0] if ONE_BASED[dataset] else [0, 0, 0, 0]
    assert np.allclose(written[0], truth_0_based + shift)
    assert np.allclose(written[1], truth_0_based + [3, 0, 0, 0] + shift)


@pytest.mark.parametrize("dataset", ["otb", "got10k"])
def test_result_folders_exist_before_got10k_makes_them(otb, tmp_path, dataset):
    # got10k's check-then-makedirs raced between two eval workers (FileExistsError on 'times')
    root = otb if dataset == "otb" else write_got10k_val(otb, tmp_path / "got10k")
    benchmark = open_benchmark(dataset, root, tmp_path / "out")
    _, times = benchmark.result_files("probe", benchmark.seq_names[0])
    seen = {}

    class FolderWitness(Probe):
        def init(self, image, box):
            seen["times folder"] = Path(times).parent.is_dir()
            super().init(image, box)

    benchmark.run_sequence(FolderWitness(), "probe", 0)
    assert seen == {"times folder": True}


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
        benchmark.run_sequence(Runaway(), "runaway", index)
    from siamtrack.evaluation import summarize
    summary = summarize(benchmark, ["runaway"])
    name = benchmark.seq_names[0]
    records, _ = benchmark.result_files("runaway", name)
    lines = Path(records[0]).read_text().split()
    # init at 0, failure at 13, frames 14-17 skipped, re-init at 18
    assert lines[0] == "1" and lines[13] == "2" and lines[14] == "0" and lines[18] == "1"
    assert summary.sequences[name]["runaway"]["failures"] == 1
    assert summary.overall["runaway"]["robustness"] > 0
    assert summary.overall["runaway"]["accuracy"] == pytest.approx(1)  # the scene is still


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
    from siamtrack import evaluation
    from siamtrack.cli import main
    built, real = [], evaluation.build_tracker

    def spy(name, spec):
        tracker = real(name, spec)
        built.append((name, tracker.net.backend))
        return tracker

    monkeypatch.setattr(evaluation, "build_tracker", spy)
    assert main(["eval", "--dataset", "otb", "--root", str(otb), "--trackers", "siamtrack,siamfc_lite0_fast",
                 "--config", "siamfc_lite0_fast", "--backend", "eager", "--out", str(tmp_path / "out"),
                 "--quiet"]) == 0
    assert set(built) == {("siamtrack", "eager"), ("siamfc_lite0_fast", "eager")}


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
