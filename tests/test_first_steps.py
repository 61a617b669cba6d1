"""What a new user met following README from a fresh clone (issue #30): messages that said nothing, a caption
with a nan in it, a prefix printed twice, a stopped first epoch that left nothing to resume, outputs git
did not ignore."""
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import read_boxes
from test_training import TINY, synthetic_root  # noqa: F401 (a fixture)

from siamtrack import outputs
from siamtrack.cli import main
from siamtrack.config import load_config
from siamtrack.core.onnx import onnx_inputs
from siamtrack.core.tracker import Answers
from siamtrack.evaluation.report import Summary
from siamtrack.training import trainer

REPO = Path(__file__).resolve().parents[1]
FAST = ["--config", "siamfc_lite0_fast", "--threads", "1", "--quiet", "--set", "reference_fps=0"]


@pytest.mark.parametrize("bbox", ["386.88,139.38,34.88,82.88", "10,10.1,20,20.2"])
def test_a_decimal_box_inside_the_frame_is_tracked_as_given_without_a_word(video, tmp_path, capsys, bbox):
    """Every VOT and TLP ground truth is decimal: x + w - x is not always w in floating point, and such boxes
    were said to reach past the frame, 'cut' to themselves."""
    boxes = tmp_path / "b.txt"
    assert main(["run", str(video), "--bbox", bbox, "--boxes", str(boxes), *FAST]) == 0
    assert capsys.readouterr().err == ""
    assert np.allclose(read_boxes(boxes)[0, 1:5], [float(v) for v in bbox.split(",")])


def test_a_box_too_small_to_follow_is_said_to_be(video, tmp_path, capsys):
    assert main(["run", str(video), "--bbox", "300,200,1,1", "--boxes", str(tmp_path / "b.txt"), *FAST]) == 0
    assert capsys.readouterr().err == ("siamtrack: box 300,200,1,1 is under 4 px on a side: too little of a target "
                                       "to follow, it will likely drift; draw the whole object\n")


@pytest.mark.parametrize("ids, caption", [([0], "the given box"), ([0, 1], "2 targets given")])
def test_the_first_frame_of_an_annotated_video_shows_no_fps_and_no_nan(monkeypatch, ids, caption):
    captions = []
    monkeypatch.setattr(outputs, "draw_caption", lambda image, text: captions.append(text))
    n = len(ids)
    given = Answers(np.array(ids), np.tile([10.0, 10, 20, 20], (n, 1)), np.full(n, np.nan), np.zeros(n, bool))
    outputs.annotate(np.zeros((60, 80, 3), np.uint8), given, fps=62.8)
    tracked = Answers(np.array([0]), np.array([[10.0, 10, 20, 20]]), np.array([7.5]), np.array([False]))
    outputs.annotate(np.zeros((60, 80, 3), np.uint8), tracked, fps=62.8)
    assert captions == [caption, "62.8 fps  score 7.50"]


def test_eval_says_its_busy_machine_note_with_one_prefix(monkeypatch, capsys, tmp_path):
    summary = Summary("OTB", ["siamtrack"], [], [], {}, {}, notes={"siamtrack": "note: 5.0 fps is under a third"})
    monkeypatch.setattr("siamtrack.evaluation.evaluate", lambda *args, **kwargs: summary)
    monkeypatch.setattr("siamtrack.evaluation.report.overall_table", lambda summary: "")
    assert main(["eval", "--dataset", "otb", "--root", str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().err == "siamtrack: note on siamtrack: 5.0 fps is under a third\n"


def train_args(root: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--config", "siamfc_alexnet", "--data", str(root), "--out", str(out), "--quiet",
            *(a for o in [*TINY, "train.epochs=2"] for a in ("--set", o)), *extra]


def test_a_first_epoch_stopped_early_is_saved_and_resumed_from_where_it_stopped(synthetic_root, tmp_path,  # noqa: F811
                                                                                 monkeypatch, capsys):
    """Ctrl-C (or SIGTERM) in the first epoch's second step: last.pt keeps its first step, says how to go on,
    and --resume lands on the weights of a run that was never stopped."""
    stopped, whole = tmp_path / "stopped", tmp_path / "whole"
    step = trainer.Trainer._train_step
    calls = []

    def stop_at_the_second_step(self, batch):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return step(self, batch)

    monkeypatch.setattr(trainer.Trainer, "_train_step", stop_at_the_second_step)
    assert main(train_args(synthetic_root, stopped)) == 130
    assert capsys.readouterr().err.splitlines()[-2:] == [
        f"siamtrack: stopped: {stopped / 'last.pt'} keeps the run so far; the same command with --resume goes on "
        "from there", "siamtrack: interrupted"]
    saved = torch.load(stopped / "last.pt", weights_only=True)
    assert (saved["epoch"], saved["step"], saved["epoch_pairs"]) == (0, 1, 2)
    monkeypatch.setattr(trainer.Trainer, "_train_step", step)
    assert main(train_args(synthetic_root, stopped, "--resume")) == 0
    assert main(train_args(synthetic_root, whole)) == 0
    resumed, unbroken = (torch.load(p / "last.pt", weights_only=True) for p in (stopped, whole))
    assert resumed["epoch"] == unbroken["epoch"] == 2 and resumed["step"] == unbroken["step"] == 4
    assert all(torch.equal(resumed["model"][k], unbroken["model"][k]) for k in unbroken["model"])


def test_resume_with_nothing_to_resume_says_what_to_do(tmp_path, capsys):
    run = tmp_path / "runs" / "alexnet"
    run.mkdir(parents=True)
    assert main(["train", "--config", "siamfc_alexnet", "--data", str(tmp_path), "--out", str(run), "--resume"]) == 2
    assert capsys.readouterr().err == (f"siamtrack: error: nothing to resume: {run} holds no last.pt: the run stopped "
                                       "before it saved one; start the run again without --resume\n")


def test_the_export_description_names_the_fused_models_extra_outputs():
    text = onnx_inputs(load_config("siamfc_lite0"))
    assert "fusion_kernel" in text and "fusion_features" in text


def test_git_ignores_what_readmes_commands_write():
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    written = ["demo.mp4", "demo_source.mp4", "tracked.mp4", "boxes.txt", "two.txt", "frames/1.png",
               "frames.boxes.txt", "live.txt", "onnx/exemplar.onnx", "eval_otb/summary.md", "runs/alexnet/last.pt",
               "video.boxes.txt"]
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *written], cwd=REPO, capture_output=True,
                             text=True, check=False).stdout.split()
    assert ignored == written
