import subprocess
import sys

import numpy as np
import pytest
from got10k.utils.metrics import rect_iou
from PIL import Image

from conftest import OTB_MINI, count_frames, read_boxes, require, write_video
from siamtrack import spec
from siamtrack.cli import main
from siamtrack.engines import DEFAULT_BACKEND
from siamtrack.synthetic import make_clip

FAST = ["--config", "siamfc_lite0_fast", "--threads", "2"]
FILE_ROUNDING_PX = 0.01  # the boxes file's resolution: runs within 1e-3 px may print one step apart


@pytest.fixture(scope="module")
def clip():
    return make_clip(num_frames=40)


@pytest.fixture(scope="module")
def video(clip, tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4", clip.frames)



def test_run_writes_video_and_one_box_line_per_frame(video, clip, tmp_path, capsys):
    out, boxes = tmp_path / "out.mp4", tmp_path / "boxes.txt"
    x, y, w, h = clip.boxes[0]
    assert main(["run", str(video), "--bbox", f"{x},{y},{w},{h}", "--output", str(out),
                 "--boxes", str(boxes), *FAST]) == 0
    assert count_frames(out) == len(clip.frames)
    rows = read_boxes(boxes)
    assert rows.shape == (len(clip.frames), 6)
    assert np.array_equal(rows[:, 0], np.arange(len(clip.frames)))
    assert rect_iou(rows[1:, 1:5], clip.boxes[1:]).mean() > 0.5
    assert f"tracked {len(clip.frames)} frames at" in capsys.readouterr().out


def test_run_tracks_several_targets_each_as_it_would_alone(video, clip, tmp_path):
    """Repeated --bbox: one batched tracker, `frame,id,x,y,w,h,score` rows, and each target's boxes
    those of a run with that target alone."""
    targets = [clip.boxes[0], [40, 40, 60, 50], [500, 250, 70, 60]]
    bboxes = [arg for box in targets for arg in ("--bbox", ",".join(str(v) for v in box))]
    together = tmp_path / "together.txt"
    assert main(["run", str(video), *bboxes, "--boxes", str(together), "--quiet", *FAST]) == 0
    rows = np.loadtxt(together, delimiter=",", ndmin=2)
    assert rows.shape == (len(clip.frames) * len(targets), 7)
    assert rows[:, 1].tolist() == list(range(len(targets))) * len(clip.frames)
    for target, box in enumerate(targets):
        alone = tmp_path / f"alone{target}.txt"
        assert main(["run", str(video), "--bbox", ",".join(str(v) for v in box), "--boxes", str(alone),
                     "--quiet", *FAST]) == 0
        mine = rows[rows[:, 1] == target]
        assert np.abs(np.delete(mine, 1, axis=1)[:, :5] - read_boxes(alone)[:, :5]).max() <= FILE_ROUNDING_PX + 1e-9


def test_a_bad_box_among_several_names_its_target(video, capsys):
    assert main(["run", str(video), "--bbox", "10,10,20,20", "--bbox", "9000,10,20,20", *FAST]) == 2
    assert capsys.readouterr().err.strip() == ("siamtrack: error: target 1: box [9000.0, 10.0, 20.0, 20.0] lies "
                                               "outside the 640x360 frame")


def test_run_reads_a_folder_of_frames(clip, tmp_path):
    for i, frame in enumerate(clip.frames[:8]):
        Image.fromarray(frame).save(tmp_path / f"{i:04d}.png")
    boxes = tmp_path / "boxes.txt"
    x, y, w, h = clip.boxes[0]
    assert main(["run", str(tmp_path), "--bbox", f"{x},{y},{w},{h}", "--boxes", str(boxes), *FAST]) == 0
    assert read_boxes(boxes).shape == (8, 6)


@pytest.mark.parametrize("argv, message", [
    (["run", "missing.mp4", "--bbox", "1,2,3,4"], "missing.mp4: no such file or folder"),
    (["run", "VIDEO", "--bbox", "1,2,3"], "--bbox must be four numbers"),
    (["run", "VIDEO", "--bbox", "1,2,0,4"], "positive width and height"),
    (["run", "VIDEO"], "no --bbox given and no display"),
    (["run", "VIDEO", "--bbox", "1,2,3,4", "--show"], "--show needs a display"),
    (["run", "VIDEO", "--bbox", "1,2,3,4", "--set", "track.nope=1"], "unknown config key 'track.nope'"),
    (["run", "VIDEO", "--bbox", "1,2,3,4", "--weights", "nope.pt"], "weights file not found: nope.pt"),
])
def test_bad_input_is_a_one_line_error(video, argv, message, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    argv = [str(video) if a == "VIDEO" else a for a in argv]
    assert main(argv + FAST) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_not_a_video_file(tmp_path, capsys):
    junk = tmp_path / "notes.mp4"
    junk.write_text("this is not a video")
    assert main(["run", str(junk), "--bbox", "1,2,3,4", *FAST]) == 2
    assert "notes.mp4" in capsys.readouterr().err


@pytest.fixture
def built_backends(monkeypatch) -> list[str]:
    """The backend of each tracker the command builds, in order."""
    built, real = [], spec.SiamFCTracker

    def spy(*args, **kwargs):
        tracker = real(*args, **kwargs)
        built.append(tracker.net.backend)
        return tracker

    monkeypatch.setattr(spec, "SiamFCTracker", spy)
    return built


def test_run_backend_option_builds_that_backend_with_the_same_boxes(video, clip, tmp_path, built_backends):
    bbox = ",".join(str(v) for v in clip.boxes[0])
    runs = {backend: tmp_path / f"{backend}.txt" for backend in ("eager", None)}
    for backend, boxes in runs.items():
        chosen = ["--backend", backend] if backend else []
        assert main(["run", str(video), "--bbox", bbox, "--boxes", str(boxes), "--quiet", *chosen, *FAST]) == 0
    assert built_backends == ["eager", DEFAULT_BACKEND] and DEFAULT_BACKEND != "eager"
    eager, default = (read_boxes(path) for path in runs.values())
    assert eager.shape == default.shape == (len(clip.frames), 6)
    assert np.abs(eager[:, 1:5] - default[:, 1:5]).max() <= FILE_ROUNDING_PX + 1e-9


def test_onnxruntime_backend_without_onnxruntime_is_a_one_line_error(video, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what an import finds when the package is absent
    assert main(["run", str(video), "--bbox", "1,2,30,40", "--backend", "onnxruntime", *FAST]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install 'siamtrack[onnx]'" in err and len(err.splitlines()) == 1, err


def test_the_parser_and_run_leave_the_benchmark_toolkit_unimported():
    """got10k's experiments load only for `siamtrack eval`, not to build the parser or for a run."""
    code = ("import sys; from siamtrack.cli import build_parser; build_parser().parse_args(['run', 'clip.mp4']); "
            "print(*(m for m in sys.modules if m.startswith(('got10k.experiments', 'got10k.datasets', "
            "'siamtrack.experiments', 'siamtrack.evaluation'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.split() == []


def test_demo_tracks_well_with_the_default_weights(tmp_path, capsys):
    out = tmp_path / "demo.mp4"
    assert main(["demo", "--output", str(out), "--threads", "2"]) == 0
    line = capsys.readouterr().out
    iou = float(line.split("mean IoU ")[1].split()[0])
    assert iou >= 0.6, line
    assert count_frames(out) == 150


@pytest.mark.slow
def test_run_tracks_a_real_sequence_turned_into_an_mp4(tmp_path):
    seq = require(OTB_MINI) / "Crossing"
    frames = [np.asarray(Image.open(p).convert("RGB")) for p in sorted((seq / "img").glob("*.jpg"))]
    truth = np.loadtxt(seq / "groundtruth_rect.txt", delimiter=",") - [1, 1, 0, 0]  # OTB is 1-based
    video = write_video(tmp_path / "crossing.mp4", frames)
    boxes = tmp_path / "boxes.txt"
    x, y, w, h = truth[0]
    assert main(["run", str(video), "--bbox", f"{x},{y},{w},{h}", "--boxes", str(boxes), "--threads", "2"]) == 0
    rows = read_boxes(boxes)
    assert len(rows) == len(frames)
    assert rect_iou(rows[1:, 1:5], truth[1:]).mean() > 0.5
