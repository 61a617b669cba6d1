"""Robustness: bad input to `siamtrack run` and to the API, hard tracking states, damaged files and
interruptions. Every case is fed for real: files written broken, folders emptied, servers that never
answer, processes signalled."""
import ctypes
import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import count_frames, read_boxes, write_frames, write_otb, write_video
from got10k.utils.metrics import rect_iou
from hypothesis import given, settings, strategies as st

from siamtrack import SiamFCTracker
from siamtrack.cli import main
from siamtrack.config import load_config
from siamtrack.core.frame_loop import track_frames
from siamtrack.errors import BoxError, CheckpointError, ConfigError, FrameError, NotInitializedError
from siamtrack.evaluation import evaluate
from siamtrack.evaluation.benchmark import open_benchmark
from siamtrack.synthetic import make_clip, make_object, smooth_texture

REPO = Path(__file__).resolve().parents[1]
FAST_CONFIG = "siamfc_lite0_fast"
FAST = ["--config", FAST_CONFIG, "--threads", "1", "--quiet"]
CLIP_FRAMES = 40
STREAM_TIMEOUT_S = 1.0
SUBPROCESS_TIMEOUT_S = 120  # a generous bound for a CLI process on a loaded 2-core machine
REL_TOL = 1e-9  # float rounding in box limits


@pytest.fixture(scope="module")
def tracker():
    return SiamFCTracker(FAST_CONFIG, device="cpu")


def bbox_arg(box) -> str:
    return ",".join(f"{v:g}" for v in box)


def exit_code(argv: list[str]) -> int:
    """main's exit code, also for argparse's usage errors, which leave through SystemExit."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def one_line_error(capsys) -> str:
    """The CLI's stderr, which must be exactly one `siamtrack: error:` line."""
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "error: " in err and "Traceback" not in err, err
    return err



def gray(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def cli_process(*args: str, preexec_fn=None, env: dict | None = None, **popen) -> subprocess.Popen:
    """`python -m siamtrack ARGS` as a user starts it from a terminal: Ctrl-C (SIGINT) reaches it, also where
    these tests run as a shell's background job, whose children inherit SIGINT ignored; `preexec_fn` runs too,
    and `env` adds to its environment."""
    def before_exec():
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if preexec_fn is not None:
            preexec_fn()

    env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "siamtrack", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=before_exec, **popen)


# --- 1. inputs to `siamtrack run`

@pytest.mark.parametrize("content", [np.random.default_rng(0).bytes(4096), b""], ids=["random-bytes", "empty"])
def test_a_file_that_is_not_a_video(tmp_path, content, capsys):
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(content)
    assert main(["run", str(bad), "--bbox", "1,2,3,4", *FAST]) == 2
    assert f"{bad}: cannot open as a video" in one_line_error(capsys)


def test_a_truncated_video(video, tmp_path, capsys):
    cut = tmp_path / "cut.mp4"
    data = video.read_bytes()
    cut.write_bytes(data[:len(data) // 2])  # mp4v writes its index last: half a file has none
    assert main(["run", str(cut), "--bbox", "1,2,3,4", *FAST]) == 2
    assert f"{cut}: cannot open as a video" in one_line_error(capsys)


PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 24, 1, 2  # <linux/prctl.h>, <linux/capability.h>


def drop_root_file_access() -> None:
    """In a child before exec: lose root's right to read any file, so that mode 000 means unreadable
    even when the tests run as root. For other users it fails, harmlessly: 000 already means it."""
    libc = ctypes.CDLL(None)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="capabilities are Linux's")
@pytest.mark.parametrize("kind, message", [("file", "cannot read the file (Permission denied)"),
                                           ("folder", "cannot list the folder (Permission denied)")])
def test_an_unreadable_file_or_folder(video, clip, tmp_path, kind, message):
    if kind == "file":
        target = tmp_path / "clip.mp4"
        target.write_bytes(video.read_bytes())
    else:
        target = write_frames(tmp_path / "frames", clip.frames[:2])
    target.chmod(0)
    try:
        run = cli_process("run", str(target), "--bbox", "1,2,3,4", *FAST, preexec_fn=drop_root_file_access)
        _, err = run.communicate(timeout=SUBPROCESS_TIMEOUT_S)
    finally:
        target.chmod(0o755)
    assert run.returncode == 2
    assert err.strip() == f"siamtrack: error: {target}: {message}"


def test_undecodable_frames_mid_video_are_skipped_and_the_rest_tracked(video, clip, tmp_path, capsys):
    """The choice for a damaged video: skip what FFmpeg cannot decode, track the rest, say so."""
    damaged = tmp_path / "damaged.mp4"
    data = bytearray(video.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 20000] = np.random.default_rng(0).bytes(20000)
    damaged.write_bytes(bytes(data))
    out, boxes = tmp_path / "out.mp4", tmp_path / "boxes.txt"
    assert main(["run", str(damaged), "--bbox", bbox_arg(clip.boxes[0]), "--output", str(out),
                 "--boxes", str(boxes), *FAST]) == 0
    summary = capsys.readouterr().out
    skipped = int(summary.split("; skipped ")[1].split()[0])
    rows = read_boxes(boxes)
    index = rows[:, 0].astype(int)
    assert 1 <= skipped and len(rows) == CLIP_FRAMES - skipped == count_frames(out)
    assert f"the first: frame {sorted(set(range(CLIP_FRAMES)) - set(index))[0]}" in summary
    assert index[-1] == CLIP_FRAMES - 1  # read on past the damage, to the end
    assert rect_iou(rows[1:, 1:5], clip.boxes[index[1:]]).mean() > 0.5  # boxes numbered by their frame


def test_a_damaged_image_in_a_folder_is_skipped(clip, tmp_path, capsys):
    folder = write_frames(tmp_path / "frames", clip.frames[:6])
    (folder / "0003.png").write_bytes((folder / "0003.png").read_bytes()[:300])
    boxes = tmp_path / "boxes.txt"
    assert main(["run", str(folder), "--bbox", bbox_arg(clip.boxes[0]), "--boxes", str(boxes), *FAST]) == 0
    assert "skipped 1 unreadable frame, the first: frame 3" in capsys.readouterr().out
    assert read_boxes(boxes)[:, 0].tolist() == [0, 1, 2, 4, 5]


def test_an_empty_folder(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("no frames here")
    assert main(["run", str(tmp_path), "--bbox", "1,2,3,4", *FAST]) == 2
    assert f"{tmp_path}: no image files" in one_line_error(capsys)


def test_a_folder_of_mixed_frame_sizes_stops_at_the_odd_frame_and_keeps_the_outputs(clip, tmp_path, capsys):
    frames = list(clip.frames[:6])
    frames[3] = cv2.resize(frames[3], (320, 180))
    folder = write_frames(tmp_path / "frames", frames)
    out, boxes = tmp_path / "out.mp4", tmp_path / "boxes.txt"
    assert main(["run", str(folder), "--bbox", bbox_arg(clip.boxes[0]), "--output", str(out),
                 "--boxes", str(boxes), *FAST]) == 2
    err = one_line_error(capsys)
    assert f"{folder / '0003.png'}: 320x180 px, unlike the 640x360 of the first frame" in err
    assert "stopped after 3 frames; the outputs so far are kept" in err
    assert len(read_boxes(boxes)) == count_frames(out) == 3


@pytest.mark.parametrize("convert", [
    gray,
    lambda f: gray(f).astype(np.uint16) * 257,  # 16 bit, the same grey levels
    lambda f: np.dstack([f, np.full(f.shape[:2], 255, np.uint8)]),  # RGBA
], ids=["grey", "grey-16-bit", "rgba"])
def test_grey_16_bit_and_rgba_image_files_are_tracked(clip, tmp_path, convert):
    folder = write_frames(tmp_path / "frames", [convert(f) for f in clip.frames[:8]])
    boxes = tmp_path / "boxes.txt"
    assert main(["run", str(folder), "--bbox", bbox_arg(clip.boxes[0]), "--boxes", str(boxes), *FAST]) == 0
    rows = read_boxes(boxes)
    assert len(rows) == 8 and rect_iou(rows[1:, 1:5], clip.boxes[1:8]).mean() > 0.5


def silent_server() -> tuple[socket.socket, list[socket.socket]]:
    """A TCP server that accepts connections and never sends a byte: a stream that hangs."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept_forever():
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:  # closed
                return

    threading.Thread(target=accept_forever, daemon=True).start()
    return server, accepted


@pytest.mark.parametrize("scheme", ["tcp", "http"])
def test_a_stream_that_never_answers_fails_after_the_timeout(scheme, tmp_path, capsys):
    server, accepted = silent_server()
    port = server.getsockname()[1]
    started = time.monotonic()
    try:
        assert main(["run", f"{scheme}://127.0.0.1:{port}/live", "--bbox", "1,2,3,4", "--boxes",
                     str(tmp_path / "b.txt"), "--timeout", f"{STREAM_TIMEOUT_S:g}", *FAST]) == 2
    finally:
        server.close()
    assert accepted, "the client never connected: the test did not exercise the timeout"
    assert time.monotonic() - started < SUBPROCESS_TIMEOUT_S
    assert f"no answer within {STREAM_TIMEOUT_S:g} s" in one_line_error(capsys)


@pytest.mark.parametrize("bbox, message", [
    ("a,b,c,d", "--bbox must be four numbers x,y,w,h, got 'a,b,c,d'"),
    ("", "--bbox must be four numbers"),
    ("1,2,-3,4", "must have positive width and height"),
    ("nan,2,3,4", "has a non-finite value"),
    ("1,2,inf,4", "has a non-finite value"),
    ("1000,20,30,40", "lies outside the 640x360 frame"),
    ("-500,-50,60,60", "lies outside the 640x360 frame"),  # a value starting with '-', wholly left of it
])
def test_bad_boxes_on_the_command_line(video, bbox, message, capsys):
    assert main(["run", str(video), "--bbox", bbox, *FAST]) == 2
    assert message in one_line_error(capsys)


def test_a_box_partly_outside_the_frame_is_tracked_and_kept_in_it(clip, tmp_path):
    folder = write_frames(tmp_path / "frames", clip.frames[:8])
    boxes = tmp_path / "boxes.txt"
    assert main(["run", str(folder), "--bbox", "-30,-20,60,50", "--boxes", str(boxes), *FAST]) == 0
    height, width = clip.frames[0].shape[:2]
    for _, *box, score in read_boxes(boxes)[1:]:
        assert_sane(np.array(box), score, width, height, load_config(FAST_CONFIG).track)


@pytest.mark.parametrize("extra, message", [
    (["--boxes", "no/such/folder/b.txt"], "no/such/folder/b.txt: its folder no/such/folder does not exist"),
    (["--output", "no/such/folder/o.mp4"], "no/such/folder/o.mp4: its folder no/such/folder does not exist"),
    (["--threads", "0"], "argument --threads: must be a whole number >= 1, got '0'"),
    (["--timeout", "-1"], "the stream timeout must be > 0 seconds"),
    (["--device", "gpu"], "unknown device 'gpu'"),
    (["--backend", "tensorrt"], "argument --backend: invalid choice: 'tensorrt'"),
    (["--set", "track.scale_num=0"], "config key 'track.scale_num' must be > 0, got 0"),
    (["--set", "track.window_influence=.nan"], "'track.window_influence' must be a finite number"),
    (["--no-such-option"], "unrecognized arguments: --no-such-option"),
])
def test_bad_options_are_one_line_errors(video, extra, message, capsys):
    assert exit_code(["run", str(video), "--bbox", "10,10,40,40", *FAST, *extra]) == 2
    assert message in one_line_error(capsys)


@pytest.mark.parametrize("argv, message", [
    (["bench", "--frames", "1"], "argument --frames: must be a whole number >= 2, got '1'"),
    (["bench", "--threads", "0"], "argument --threads: must be a whole number >= 1, got '0'"),
    (["eval", "--dataset", "otb", "--root", ".", "--workers", "0"], "argument --workers: must be a whole number"),
    (["eval", "--dataset", "otb", "--root", ".", "--threads", "-2"], "argument --threads: must be a whole number"),
    (["train", "--config", "siamfc_alexnet", "--data", ".", "--out", "x", "--nproc", "0"], "argument --nproc"),
])
def test_bad_counts_on_other_commands_are_one_line_errors(argv, message, capsys):
    assert exit_code(argv) == 2
    assert message in one_line_error(capsys)


def test_a_folder_that_cannot_be_made_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    out = tmp_path / "file" / "onnx"
    assert exit_code(["export", "--format", "onnx", "--config", FAST_CONFIG, "--out", str(out)]) == 2
    assert f"{out}: Not a directory" in one_line_error(capsys)


# --- 1. inputs to the API

def test_sixteen_bit_arrays_track_as_their_eight_bit_values(tracker, clip):
    def boxes(frames):
        return np.array([box for _, _, box, _ in track_frames(tracker, frames, clip.boxes[0])])
    frames8 = clip.frames[:8]
    expected = boxes(frames8)
    assert np.array_equal(boxes([f.astype(np.uint16) * 257 for f in frames8]), expected)
    assert np.array_equal(boxes([gray(f).astype(np.uint16) * 257 for f in frames8]), boxes([gray(f) for f in frames8]))


def test_update_before_init_and_frames_of_another_size(clip):
    fresh = SiamFCTracker(FAST_CONFIG, device="cpu")
    with pytest.raises(NotInitializedError, match=r"call init\(frame, box\) before update"):
        fresh.update(clip.frames[0])
    fresh.init(clip.frames[0], clip.boxes[0])
    with pytest.raises(FrameError, match="a 320x180 frame, but the tracker was initialised on a 640x360 one"):
        fresh.update(cv2.resize(clip.frames[1], (320, 180)))


@pytest.mark.parametrize("device, message", [("gpu", "unknown device 'gpu'"),
                                             ("cuda:7", "device 'cuda:7' is not available here")])
def test_devices_that_do_not_exist(device, message):
    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has that GPU")
    with pytest.raises(ConfigError, match=message):
        SiamFCTracker(FAST_CONFIG, device=device)


# --- 2. hard tracking states

def assert_sane(box: np.ndarray, score: float, width: int, height: int, cfg) -> None:
    """No NaN or inf; the centre in the frame; the size within min_size and max_size_ratio of the frame,
    the frame winning where the two disagree (a frame smaller than min_size)."""
    assert np.all(np.isfinite(box)) and math.isfinite(score), (box, score)
    x, y, w, h = box
    assert 0 <= x + w / 2 <= width and 0 <= y + h / 2 <= height, box
    limit_w, limit_h = cfg.max_size_ratio * width, cfg.max_size_ratio * height
    assert 0 < w <= limit_w * (1 + REL_TOL) and 0 < h <= limit_h * (1 + REL_TOL), box
    at_frame_limit = max(w / limit_w, h / limit_h) >= 1 - REL_TOL
    assert min(w, h) >= cfg.min_size * (1 - REL_TOL) or at_frame_limit, box


def track(tracker, frames, box) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes, scores and lost flags of every update, each checked sane (frame 0, the given box, left out)."""
    updates = []
    for index, frame, result, _ in track_frames(tracker, frames, box):
        if index:
            assert_sane(result, tracker.score, frame.shape[1], frame.shape[0], tracker.cfg.track)
            updates.append((result, tracker.score, tracker.lost))
    boxes, scores, lost = zip(*updates)
    return np.array(boxes), np.array(scores), np.array(lost)


SCENE_H, SCENE_W, BLOB_CELL = 360, 640, 24
TARGET_W, TARGET_H, TARGET_Y, START_X = 80, 60, 150, 400


def walk(xs: np.ndarray, hidden: range = range(0)) -> tuple[list[np.ndarray], np.ndarray]:
    """A still scene with the target at x = xs[i] in frame i, cut off where it passes the right edge,
    and not drawn at all in the frames of `hidden` (fully occluded); the frames and the true boxes."""
    rng = np.random.default_rng(0)
    background = smooth_texture(rng, SCENE_H, SCENE_W, BLOB_CELL)
    target = make_object(rng, TARGET_H, TARGET_W)
    frames = []
    for i, x in enumerate(xs):
        frame = background.copy()
        if i not in hidden:
            visible = frame[TARGET_Y:TARGET_Y + TARGET_H, x:min(x + TARGET_W, SCENE_W)]
            visible[:] = target[:, :visible.shape[1]]
        frames.append(frame.astype(np.uint8))
    boxes = np.stack([xs, np.full(len(xs), TARGET_Y), np.full(len(xs), TARGET_W), np.full(len(xs), TARGET_H)], 1)
    return frames, boxes.astype(np.float64)


def test_full_occlusion_gives_a_low_score_then_recovery(tracker):
    step, count, hidden = 8, 18, range(6, 12)  # the target moves on behind the occluder
    frames, truth = walk(np.arange(START_X, START_X + count * step, step), hidden)
    boxes, scores, lost = track(tracker, frames, truth[0])
    during = np.array(hidden) - 1  # update k tracks frame k + 1
    assert lost[during].all() and not lost[:during[0]].any()
    assert scores[during].max() < tracker.cfg.track.lost_drop * np.median(scores[:during[0]])
    after = slice(during[-1] + 1, None)
    assert rect_iou(boxes[after], truth[1:][after]).min() > 0.7 and not lost[after].any()


def test_a_target_leaving_the_frame_and_coming_back(tracker):
    step, away, frames_away = 40, SCENE_W + 60, 3
    xs = np.concatenate([np.arange(START_X, away, step), np.full(frames_away, away),
                         np.arange(away, START_X - step, -step)])
    frames, truth = walk(xs)
    boxes, _, lost = track(tracker, frames, truth[0])
    gone = truth[1:, 0] >= SCENE_W  # wholly outside
    assert gone.any() and lost[gone].all()
    assert rect_iou(boxes[-5:], truth[-5:]).min() > 0.7 and not lost[-5:].any()


def test_a_box_shrunk_to_a_pixel_grows_back_to_the_minimum(tracker, clip):
    boxes, _, _ = track(tracker, clip.frames[:5], (300, 200, 1, 1))
    assert np.all(boxes[:, 2:] >= tracker.cfg.track.min_size)


def test_a_frame_smaller_than_the_minimum_box_bounds_the_box(tracker):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (3, 2, 3), dtype=np.uint8) for _ in range(3)]
    boxes, _, _ = track(tracker, frames, (0, 0, 2, 3))
    assert np.all(boxes[:, 2] <= 2) and np.all(boxes[:, 3] <= 3)


MAX_SIDE = 96  # frames from 1 px to this, so that tiny and odd shapes come up often


@st.composite
def frames_and_box(draw):
    height, width = draw(st.integers(1, MAX_SIDE)), draw(st.integers(1, MAX_SIDE))
    layout = draw(st.sampled_from([(height, width), (height, width, 3), (height, width, 4)]))
    dtype = draw(st.sampled_from([np.uint8, np.uint16]))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    frames = [rng.integers(0, np.iinfo(dtype).max, layout, dtype=dtype, endpoint=True) for _ in range(3)]
    side = max(height, width)
    corner = st.floats(-side, side)
    size = st.floats(0, 2 * side, exclude_min=True)  # from far below a pixel to past the frame
    anything = corner | st.sampled_from([math.nan, math.inf, -math.inf, 0.0])
    return frames, list(draw(st.tuples(corner, corner, size, size) | st.tuples(*[anything] * 4)))


def valid_box(box, width: int, height: int) -> bool:
    x, y, w, h = box
    return (all(math.isfinite(v) for v in box) and w > 0 and h > 0
            and x < width and y < height and x + w > 0 and y + h > 0)


@settings(max_examples=30, deadline=None)
@given(case=frames_and_box())
def test_random_frames_and_boxes_keep_the_tracker_sane(tracker, case):
    frames, box = case
    height, width = frames[0].shape[:2]
    if not valid_box(box, width, height):
        with pytest.raises(BoxError):
            tracker.init(frames[0], box)
        return
    track(tracker, frames, box)


# --- 3. files: checkpoints, configs, datasets

@pytest.fixture(scope="module")
def weights() -> Path:
    return REPO / "weights" / f"{FAST_CONFIG}.pt"


def nan_weights(source: Path, path: Path) -> None:
    ckpt = torch.load(source, weights_only=True)
    first = next(iter(ckpt["model"]))
    ckpt["model"][first] = torch.full_like(ckpt["model"][first], math.nan)
    torch.save(ckpt, path)


UNREADABLE = "not a readable checkpoint (truncated, or not a PyTorch file)"


@pytest.mark.parametrize("damage, message", [
    (lambda src, dst: dst.write_bytes(src.read_bytes()[:len(src.read_bytes()) // 2]), UNREADABLE),
    (lambda src, dst: dst.write_bytes(np.random.default_rng(0).bytes(5000)), UNREADABLE),
    (lambda src, dst: dst.write_text("weights"), UNREADABLE),
    (lambda src, dst: dst.write_bytes(b""), UNREADABLE),
    (lambda src, dst: torch.save([1, 2], dst), "not a siamtrack checkpoint (no 'model' entry)"),
    (nan_weights, "holds NaN or inf"),
    (lambda src, dst: dst.write_bytes((REPO / "weights" / "siamfc_lite0.pt").read_bytes()),
     "weights do not fit this model's architecture (0 missing, 114 unexpected, 0 of another shape, e.g. "),
], ids=["truncated", "random-bytes", "text", "empty", "a-list", "nan", "another-architecture"])
def test_damaged_checkpoints(weights, video, tmp_path, damage, message, capsys):
    bad = tmp_path / "bad.pt"
    damage(weights, bad)
    with pytest.raises(CheckpointError, match=f"^{re.escape(str(bad))}: ") as error:
        SiamFCTracker(FAST_CONFIG, weights=bad, device="cpu")
    assert message in str(error.value) and "\n" not in str(error.value)
    assert main(["run", str(video), "--bbox", "10,20,30,40", "--weights", str(bad), *FAST]) == 2
    assert message in one_line_error(capsys)


@pytest.mark.parametrize("yaml_text, message", [
    ("base: siamfc_lite0_fast\ntrack:\n  scale_lr: 1.5\n", "config key 'track.scale_lr' must be between 0 and 1"),
    ("base: siamfc_lite0_fast\ntrack:\n  search_size: 100\n",
     "'track.search_size' (100) must be at least 'track.exemplar_size' (127)"),
    ("base: siamfc_lite0_fast\ntrain:\n  batch_size: 0\n", "config key 'train.batch_size' must be > 0"),
    ("base: siamfc_lite0_fast\ntrack:\n  min_size: -1.0\n", "config key 'track.min_size' must be > 0"),
])
def test_config_files_with_bad_values(tmp_path, yaml_text, message):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match=f"^{re.escape(str(path))}: ") as error:
        load_config(path)
    assert message in str(error.value)


def test_training_on_a_sequence_with_a_frame_missing_names_the_ground_truth(clip, tmp_path, capsys):
    sequence = tmp_path / "data" / "walk"
    write_frames(sequence / "img", clip.frames[:5])
    np.savetxt(sequence / "groundtruth_rect.txt", clip.boxes[:5] + [1, 1, 0, 0], fmt="%g", delimiter=",")
    (sequence / "img" / "0002.png").unlink()
    assert main(["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert f"{sequence / 'groundtruth_rect.txt'}: 5 lines for 4 frames" in one_line_error(capsys)


def test_training_on_damaged_frames_names_the_file_in_one_line(clip, tmp_path, capsys):
    """Frames are read by DataLoader workers, which re-raise the error with their traceback in it."""
    for name in ("walk", "run"):
        folder = write_frames(tmp_path / "data" / name / "img", clip.frames[:4])
        np.savetxt(folder.parent / "groundtruth_rect.txt", clip.boxes[:4] + [1, 1, 0, 0], fmt="%g", delimiter=",")
        for frame in folder.iterdir():
            frame.write_bytes(frame.read_bytes()[:300])
    small = ["train.pairs_per_epoch=2", "train.batch_size=2", "train.num_workers=1", "train.val_fraction=0",
             "track.exemplar_size=95", "track.search_size=175"]
    argv = ["train", "--config", "siamfc_alexnet", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out"),
            "--quiet", *(arg for override in small for arg in ("--set", override))]
    assert main(argv) == 2
    assert re.fullmatch(rf"siamtrack: error: {re.escape(str(tmp_path))}/data/\w+/img/\d+\.png: cannot read the image",
                        one_line_error(capsys))


# --- 3. interruptions

@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    """Long enough that a run is still going when the test presses Ctrl-C."""
    clip = make_clip()
    return write_video(tmp_path_factory.mktemp("long") / "long.mp4", clip.frames), clip.boxes[0]


def wait_for_lines(path: Path, count: int, process: subprocess.Popen) -> None:
    while not path.exists() or len(path.read_text().splitlines()) < count:
        assert process.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.05)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_during_run_closes_the_video_and_keeps_the_boxes(long_video, tmp_path, stop):
    """SIGTERM (kill, a service manager, a container stop) ends a run as Ctrl-C does."""
    video, box = long_video
    out, boxes = tmp_path / "out.mp4", tmp_path / "boxes.txt"
    run = cli_process("run", str(video), "--bbox", bbox_arg(box), "--output", str(out), "--boxes", str(boxes), *FAST)
    try:
        wait_for_lines(boxes, 5, run)
        run.send_signal(stop)
        _, err = run.communicate(timeout=SUBPROCESS_TIMEOUT_S)
    finally:
        run.kill()
    assert run.returncode == 130
    assert err.strip().startswith("siamtrack: interrupted after ") and len(err.strip().splitlines()) == 1, err
    rows = read_boxes(boxes)
    assert rows.shape[1] == 6 and np.array_equal(rows[:, 0], np.arange(len(rows))) and len(rows) < 150
    # the box line of a frame is written just before its video frame: Ctrl-C may fall between the two
    assert len(rows) - 1 <= count_frames(out) <= len(rows)


def test_main_gives_an_in_process_caller_its_sigterm_handler_back(video, capsys):
    before = signal.getsignal(signal.SIGTERM)
    assert main(["run", str(video), "--bbox", "1,2,3", *FAST]) == 2  # a command that fails at once
    assert signal.getsignal(signal.SIGTERM) is before


def test_an_interrupted_sequence_record_is_redone_on_resume(tmp_path):
    """Ctrl-C just after got10k wrote a sequence's boxes, before its times and marker: a resumed run
    must not take that file for a finished one."""
    root = write_otb(tmp_path / "otb", sequences=2, frames=8)
    out = tmp_path / "out"
    evaluate("otb", root, ["kcf"], out)
    benchmark = open_benchmark("otb", root, out)
    records, times = benchmark.result_files("kcf", "seq1")
    whole = Path(records[0]).read_text()
    Path(records[0]).write_text(whole.splitlines()[0] + "\n")  # cut short, as an interruption leaves it
    Path(times).unlink()
    benchmark.marker("kcf", "seq1").unlink()
    evaluate("otb", root, ["kcf"], out, resume=True)
    assert Path(records[0]).read_text() == whole and Path(times).is_file()


def test_sigterm_to_a_training_and_its_data_workers_ends_it_in_one_line(tmp_path):
    """A container stop or `kill -- -PGID` reaches the DataLoader workers too: they exit cleanly and the main
    process stops, saying where the run so far is kept, so no worker killed by the signal adds torch's traceback
    to the one-line "interrupted"."""
    root = write_otb(tmp_path / "data", sequences=2, frames=6)
    small = ["train.pairs_per_epoch=100000", "train.batch_size=2", "train.num_workers=2", "train.val_fraction=0",
             "train.log_interval=1", "track.exemplar_size=95", "track.search_size=175"]
    metrics = tmp_path / "out" / "metrics.jsonl"
    run = cli_process("train", "--config", "siamfc_alexnet", "--data", str(root), "--out", str(tmp_path / "out"),
                      "--quiet", *(arg for override in small for arg in ("--set", override)), start_new_session=True)
    try:
        wait_for_lines(metrics, 2, run)  # steps logged: the workers are up and feeding it
        os.killpg(run.pid, signal.SIGTERM)
        _, err = run.communicate(timeout=SUBPROCESS_TIMEOUT_S)
    finally:
        run.kill()
    kept = f"siamtrack: stopped: {tmp_path / 'out' / 'last.pt'} keeps the run so far; the same command with --resume"
    assert run.returncode == 130 and err.strip().splitlines() == [f"{kept} goes on from there",
                                                                   "siamtrack: interrupted"], err


def test_a_process_left_with_a_data_worker_still_exits():
    """Python's exit terminates live workers (SIGTERM) and waits for them: a worker that ignored SIGTERM would
    hang it for ever, as an error in mid-epoch leaves one alive."""
    script = ("from torch.utils.data import DataLoader\n"
              "from siamtrack.training.data import quiet_stop_signals\n"
              "batches = iter(DataLoader(list(range(100)), batch_size=2, num_workers=1,"
              " worker_init_fn=quiet_stop_signals))\n"
              "next(batches)\n")
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S, start_new_session=True)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr


@pytest.mark.slow
def test_ctrl_c_during_eval_then_resume_loses_nothing_finished(tmp_path):
    root = write_otb(tmp_path / "otb", sequences=4, frames=20)
    out = tmp_path / "out"
    args = ["eval", "--dataset", "otb", "--root", str(root), "--trackers", "siamtrack", "--config", FAST_CONFIG,
            "--out", str(out), "--workers", "2", "--quiet"]
    markers = out / "progress" / "OTB" / "siamtrack"
    temp = tmp_path / "temp"  # the run's temporary folder: the workers' jobs cut short leave nothing there
    temp.mkdir()
    run = cli_process(*args, start_new_session=True, env={"TMPDIR": str(temp)})  # its own process group, as a job's
    try:
        while not markers.is_dir() or not any(markers.iterdir()):
            assert run.poll() is None, "the evaluation ended before it could be interrupted"
            time.sleep(0.05)
        os.killpg(run.pid, signal.SIGINT)  # Ctrl-C reaches the whole group: parent and workers
        _, err = run.communicate(timeout=SUBPROCESS_TIMEOUT_S)
    finally:
        run.kill()
    assert run.returncode == 130 and err.strip() == "siamtrack: interrupted", err
    assert not list(temp.iterdir())
    finished = {p.name: (out / "results" / "OTB" / "siamtrack" / f"{p.name}.txt").stat().st_mtime_ns
                for p in markers.iterdir()}
    assert 1 <= len(finished) < 4
    assert main(args + ["--resume"]) == 0
    assert {p.name for p in markers.iterdir()} == {f"seq{s}" for s in range(4)}
    assert all((out / "results" / "OTB" / "siamtrack" / f"{name}.txt").stat().st_mtime_ns == mtime
               for name, mtime in finished.items())
