import argparse
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import OTB_MINI, count_frames, read_boxes, require, write_otb, write_video
from got10k.utils.metrics import rect_iou
from PIL import Image

from siamtrack import spec
from siamtrack.cli import build_parser, main
from siamtrack.config import shipped_configs
from siamtrack.core.backends import DEFAULT_BACKEND
from siamtrack.core.checkpoint import build_net
from siamtrack.run import RunOptions, RunStats, run_summary
from siamtrack.sources import FrameSource
from siamtrack.synthetic import make_clip
from siamtrack.text import plural

FAST = ["--config", "siamfc_lite0_fast", "--threads", "1"]
FILE_ROUNDING_PX = 0.01  # the boxes file's resolution: runs within 1e-3 px may print one step apart





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
    """Repeated --bbox: one batched tracker, `frame,id,x,y,w,h,score,lost` rows, and each target's boxes
    those of a run with that target alone."""
    targets = [clip.boxes[0], [40, 40, 60, 50], [500, 250, 70, 60]]
    bboxes = [arg for box in targets for arg in ("--bbox", ",".join(str(v) for v in box))]
    together = tmp_path / "together.txt"
    assert main(["run", str(video), *bboxes, "--boxes", str(together), "--quiet", *FAST]) == 0
    rows = np.loadtxt(together, delimiter=",", ndmin=2)
    assert rows.shape == (len(clip.frames) * len(targets), 8)
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
    (["run", "VIDEO", "--bbox", "1,2,30,40", "--set", "track.nope=1"], "unknown config key 'track.nope'"),
    (["run", "VIDEO", "--bbox", "1,2,30,40", "--weights", "nope.pt"], "weights file not found: nope.pt"),
])
def test_bad_input_is_a_one_line_error(video, argv, message, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    argv = [str(video) if a == "VIDEO" else a for a in argv]
    assert main(argv + FAST) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_a_text_file_is_refused_as_not_a_video(tmp_path, capsys):
    """FFmpeg would render it as a video of its characters: a ground-truth file passed by mistake."""
    truth = tmp_path / "groundtruth_rect.txt"
    truth.write_text("22,87,66,55\n23,87,66,55\n" * 50)
    assert main(["run", str(truth), "--bbox", "22,87,66,55", *FAST]) == 2
    assert capsys.readouterr().err == (f"siamtrack: error: {truth}: a text file, not a video (give a video file, "
                                       "a folder of frames, a camera index or a stream URL)\n")


def test_a_file_no_decoder_reads_is_a_one_line_error(tmp_path, capsys):
    junk = tmp_path / "notes.mp4"
    junk.write_bytes(bytes(range(256)) * 64)
    assert main(["run", str(junk), "--bbox", "1,2,3,4", *FAST]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"siamtrack: error: {junk}: ") and len(err.splitlines()) == 1, err


def test_a_mistyped_option_is_an_error_that_names_it(video, capsys):
    """--box is not taken for --boxes: no option is read from a prefix of its name."""
    with pytest.raises(SystemExit) as exit:
        main(["run", str(video), "--box", "22,87,66,55", *FAST])
    assert exit.value.code == 2
    assert "unrecognized arguments: --box 22,87,66,55" in capsys.readouterr().err


def test_an_otb_sequence_folder_runs_from_its_first_ground_truth_box(tmp_path, capsys, monkeypatch):
    root = write_otb(tmp_path / "otb", sequences=1, frames=5)
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(root / "seq0"), "--quiet", "--set", "reference_fps=0", *FAST]) == 0
    truth = np.loadtxt(root / "seq0" / "groundtruth_rect.txt", delimiter=",")[0] - [1, 1, 0, 0]
    err = capsys.readouterr().err.splitlines()
    assert err[0] == ("siamtrack: no --bbox: starting from the sequence's ground truth in its first frame, "
                      + ",".join(f"{v:g}" for v in truth))
    assert err[1] == "siamtrack: no --output, --boxes or --show: writing the boxes to seq0.boxes.txt"
    rows = read_boxes(tmp_path / "seq0.boxes.txt")
    assert len(rows) == 5 and np.allclose(rows[0, 1:5], truth)


def test_an_existing_default_boxes_file_is_said_to_be_overwritten(video, clip, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "clip.boxes.txt").write_text("mine\n")
    bbox = ",".join(f"{v:g}" for v in clip.boxes[0])
    assert main(["run", str(video), "--bbox", bbox, "--quiet", "--set", "reference_fps=0", *FAST]) == 0
    assert capsys.readouterr().err == ("siamtrack: no --output, --boxes or --show: writing the boxes to "
                                       "clip.boxes.txt (it was there: overwriting it)\n")


def test_an_output_in_a_missing_folder_fails_before_any_frame_is_tracked(video, tmp_path, capsys, built_backends):
    out = tmp_path / "nowhere" / "out.mp4"
    assert main(["run", str(video), "--bbox", "1,2,30,30", "--output", str(out), *FAST]) == 2
    assert capsys.readouterr().err == f"siamtrack: error: {out}: its folder {out.parent} does not exist\n"
    assert built_backends == []  # no model was built


def test_a_box_reaching_past_the_frame_is_cut_to_it_and_said(video, tmp_path, capsys):
    boxes = tmp_path / "b.txt"
    assert main(["run", str(video), "--bbox=-10,300,50,100", "--boxes", str(boxes), "--quiet",
                 "--set", "reference_fps=0", *FAST]) == 0
    assert capsys.readouterr().err == ("siamtrack: box -10,300,50,100 reaches past the 640x360 frame: tracking its "
                                       "part inside, 0,300,40,60\n")
    assert np.allclose(read_boxes(boxes)[0, 1:5], [0, 300, 40, 60])


def test_run_help_lists_the_shipped_configs(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert all(name in help_text for name in shipped_configs())


@pytest.fixture
def built_backends(monkeypatch) -> list[str]:
    """The backend of each tracker the command builds, in order."""
    built, real = [], spec.SiamFCTracker

    def spy(*args, **kwargs):
        tracker = real(*args, **kwargs)
        built.append(tracker.model.backend.name)
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
            "'siamtrack.evaluation.experiments', 'siamtrack.evaluation.jobs'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.split() == []


def test_the_demos_clean_clip_is_the_clip_without_boxes(tmp_path, capsys):
    """Along the target's outline, where the annotated video has its boxes drawn, the clean clip's first
    frame differs from the synthetic clip's by the codec's error only: far less than the annotated one's."""
    import cv2
    out, source = tmp_path / "demo.mp4", tmp_path / "source.mp4"
    assert main(["demo", "--output", str(out), "--source-output", str(source), "--quiet", *FAST]) == 0
    clip = make_clip()
    x, y, w, h = clip.boxes[0].astype(int)
    outline = np.s_[y - 2:y + h + 2, x - 2:x + 2]

    def outline_error(video):
        capture = cv2.VideoCapture(str(video))
        first = cv2.cvtColor(capture.read()[1], cv2.COLOR_BGR2RGB)
        capture.release()
        return np.abs(first[outline].astype(int) - clip.frames[0][outline]).mean()

    assert outline_error(source) < outline_error(out) / 3


@pytest.mark.slow
def test_run_tracks_a_real_sequence_turned_into_an_mp4(tmp_path):
    seq = require(OTB_MINI) / "Crossing"
    frames = [np.asarray(Image.open(p).convert("RGB")) for p in sorted((seq / "img").glob("*.jpg"))]
    truth = np.loadtxt(seq / "groundtruth_rect.txt", delimiter=",") - [1, 1, 0, 0]  # OTB is 1-based
    video = write_video(tmp_path / "crossing.mp4", frames)
    boxes = tmp_path / "boxes.txt"
    x, y, w, h = truth[0]
    assert main(["run", str(video), "--bbox", f"{x},{y},{w},{h}", "--boxes", str(boxes), "--threads", "1"]) == 0
    rows = read_boxes(boxes)
    assert len(rows) == len(frames)
    assert rect_iou(rows[1:, 1:5], truth[1:]).mean() > 0.5


def test_a_run_with_nothing_to_keep_writes_the_boxes_beside_and_says_where(video, clip, tmp_path, capsys,
                                                                           monkeypatch):
    """No --output, --boxes or window: the boxes go to SOURCE's name + .boxes.txt in the current folder."""
    monkeypatch.chdir(tmp_path)
    x, y, w, h = clip.boxes[0]
    # reference_fps 0: no busy-machine note on a loaded machine, whose stderr this test reads whole
    assert main(["run", str(video), "--bbox", f"{x},{y},{w},{h}", "--quiet", "--set", "reference_fps=0", *FAST]) == 0
    out, err = capsys.readouterr()
    assert err.strip() == "siamtrack: no --output, --boxes or --show: writing the boxes to clip.boxes.txt"
    assert out.strip().endswith("; end of file -> clip.boxes.txt")
    assert read_boxes(tmp_path / "clip.boxes.txt").shape == (len(clip.frames), 6)



def test_the_summary_says_the_folder_ended_and_counts_one_frame_as_one(clip, tmp_path, capsys):
    Image.fromarray(clip.frames[0]).save(tmp_path / "0.png")
    x, y, w, h = clip.boxes[0]
    assert main(["run", str(tmp_path), "--bbox", f"{x},{y},{w},{h}", "--boxes", str(tmp_path / "b.txt"),
                 "--quiet", *FAST]) == 0
    summary = capsys.readouterr().out
    assert summary.startswith("tracked 1 frame at ") and "; end of folder -> " in summary, summary


def test_the_summary_gives_each_gap_a_stream_came_back_from_and_why_it_ended():
    stats = RunStats(frames=300, seconds=10.0)
    one = FrameSource("tcp://x", 30.0, None, is_live=True, gaps=[2.14], ended="stream ended")
    assert run_summary(one, stats, RunOptions(boxes="b.txt")) == (
        "tracked 300 frames at 30.0 fps; 1 gap in the stream (2.1 s); stream ended -> b.txt")
    two = FrameSource("tcp://x", 30.0, None, is_live=True, gaps=[1.0, 2.5])  # the user quit
    assert run_summary(two, stats, RunOptions(show=True)) == (
        "tracked 300 frames at 30.0 fps; 2 gaps in the stream (3.5 s in all, the longest 2.5 s); quit in the window")


def test_counts_take_their_noun_in_the_number_they_need():
    assert [plural(n, "epoch") for n in (0, 1, 2)] == ["0 epochs", "1 epoch", "2 epochs"]


def test_an_unknown_option_points_to_the_help_of_its_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "clip.mp4", "--sett", "track.window_influence=0.2"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == ("siamtrack run: error: unrecognized arguments: --sett "
                                               "track.window_influence=0.2 (see siamtrack run --help)")


@pytest.mark.parametrize("command", ["run", "demo", "eval", "train", "export", "vot"])
def test_help_shows_every_default(command):
    """Each option with a default says it in its help (`--output` of demo: demo.mp4, eval's --workers...)."""
    for action in build_parser().commands[command]._actions:
        if action.default in (None, False, [], argparse.SUPPRESS):
            continue
        value = f"{action.default:g}" if isinstance(action.default, float) else str(action.default)
        assert re.search(rf"default:? {re.escape(value)}\b", action.help or ""), (action.dest, action.help)


def test_a_config_whose_weights_do_not_ship_says_how_to_get_them(video, capsys):
    assert main(["run", str(video), "--bbox", "1,2,30,40", "--config", "siamfc_alexnet", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("siamtrack: error: no weights ship for config 'siamfc_alexnet' (it names siamfc_alexnet.pt): "
                   "train them with `siamtrack train --config siamfc_alexnet --data DIR --out RUN_DIR` and pass "
                   "--weights RUN_DIR/best.pt, or pass --weights with a checkpoint of yours")


def test_building_the_model_shows_a_status_line_on_a_terminal(video, clip, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    bbox = ",".join(str(v) for v in clip.boxes[0])
    assert main(["run", str(video), "--bbox", bbox, "--boxes", str(tmp_path / "b.txt"), *FAST]) == 0
    assert "building the model (siamfc_lite0_fast, torch backend)" in capsys.readouterr().err
    # reference_fps 0: no busy-machine note on a loaded machine, whose stderr this test reads whole
    assert main(["run", str(video), "--bbox", bbox, "--boxes", str(tmp_path / "b.txt"), "--quiet",
                 "--set", "reference_fps=0", *FAST]) == 0
    assert capsys.readouterr().err == ""


def test_export_says_what_input_its_graphs_take_and_they_take_it(tmp_path, capsys, monkeypatch):
    """RGB 0-255 crops, normalised inside: the exported search branch gives the torch network's features
    for the raw crop. On a terminal, a status line shows while it exports."""
    ort = pytest.importorskip("onnxruntime")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main(["export", "--format", "onnx", "--config", "siamfc_lite0_fast", "--out", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert ("input: float32 NCHW RGB crops with 0-255 pixel values (exemplar Nx3x127x127, search Nx3x255x255), "
            "normalised inside the graph ((x - [127 127 127]) / [128 128 128])") in out
    assert "exporting siamfc_lite0_fast to ONNX" in err
    crop = np.random.default_rng(0).uniform(0, 255, (1, 3, 255, 255)).astype(np.float32)
    session = ort.InferenceSession(str(tmp_path / "search.onnx"))
    exported = session.run(None, {session.get_inputs()[0].name: crop})[0]
    _, net, _ = build_net("siamfc_lite0_fast", None)
    with torch.no_grad():
        expected = net.eval().embed_search(torch.from_numpy(crop)).numpy()
    assert np.abs(exported - expected).max() < 1e-3 * np.abs(expected).max()


@pytest.mark.parametrize("reference, said", [(1e6, True), (0, False)])
def test_a_run_far_below_its_models_idle_fps_says_why(video, clip, tmp_path, capsys, reference, said):
    bbox = ",".join(str(v) for v in clip.boxes[0])
    assert main(["run", str(video), "--bbox", bbox, "--boxes", str(tmp_path / "b.txt"), "--quiet",
                 "--set", f"reference_fps={reference}", *FAST]) == 0
    err = capsys.readouterr().err
    assert ("under a third of the 1e+06 fps siamfc_lite0_fast makes on an idle 2-core CPU" in err) == said
    assert ("load average" in err) == said and len(err.strip().splitlines()) == int(said)
