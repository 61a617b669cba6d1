"""Live tracking without a camera: a clip served as a stream on 127.0.0.1 by ffmpeg, and the window
path under Xvfb, driven with xdotool and checked on a screenshot."""
import os
import select
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import read_boxes
from got10k.utils.metrics import rect_iou

from siamtrack.cli import main
from siamtrack.core.tracker import SiamFCTracker

FAST = ["--config", "siamfc_lite0_fast", "--threads", "1"]
CLIP_FRAMES = 90
XVFB_START_S = 30


def needs(program: str) -> None:
    if shutil.which(program) is None:
        pytest.skip(f"{program} is not installed (.ci/run installs it from Debian)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def serving(port: int) -> bool:
    """Whether ffmpeg serves on the port: it listens (state 0A), or it has already taken its one client
    (state 01; with `listen=1` it closes its listening socket once a client connects, so a client that keeps
    retrying can leave no moment to see it listen). Read from /proc so no connection is used up."""
    table = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return any(row.split()[1].endswith(f":{port:04X}") and row.split()[3] in ("0A", "01") for row in table)




def serve(video, readrate: float):
    """The clip as a live MPEG-TS stream over TCP at `readrate` x its frame rate, for one client."""
    needs("ffmpeg")
    port = free_port()
    server = subprocess.Popen(["ffmpeg", "-loglevel", "error", "-readrate", str(readrate), "-i", str(video),
                               "-c:v", "mpeg1video", "-q:v", "3", "-f", "mpegts", f"tcp://127.0.0.1:{port}?listen=1"])
    wait_until(lambda: serving(port), 10, "ffmpeg did not start serving")
    yield f"tcp://127.0.0.1:{port}"
    server.kill()
    server.wait()


@pytest.fixture
def stream(video):
    """At the clip's real rate (30 fps)."""
    yield from serve(video, 1.0)


@pytest.fixture
def slow_stream(video):
    """At a third of it (10 fps), which a tracker on a busy 2-core machine still keeps up with."""
    yield from serve(video, 1 / 3)


def run_live(url, clip, tmp_path, capsys):
    boxes = tmp_path / "boxes.txt"
    x, y, w, h = clip.boxes[0]
    # the stream's end is the end: no waiting for it to come back
    assert main(["run", url, "--bbox", f"{x},{y},{w},{h}", "--boxes", str(boxes), "--reconnect", "0", *FAST]) == 0
    return read_boxes(boxes), capsys.readouterr().out


def test_stream_is_tracked_headless(slow_stream, clip, tmp_path, capsys):
    rows, summary = run_live(slow_stream, clip, tmp_path, capsys)
    index = rows[:, 0].astype(int)
    assert np.all(np.diff(index) > 0) and index[-1] >= CLIP_FRAMES - 5
    assert rect_iou(rows[1:, 1:5], clip.boxes[index[1:]]).mean() > 0.5
    assert "stream frames dropped" in summary and "latency" in summary


def test_a_slow_tracker_drops_frames_instead_of_queueing_them(stream, clip, tmp_path, capsys, monkeypatch):
    update = SiamFCTracker.update

    def slow_update(self, image):
        time.sleep(0.1)  # a third of the stream's rate
        return update(self, image)

    monkeypatch.setattr(SiamFCTracker, "update", slow_update)
    rows, summary = run_live(stream, clip, tmp_path, capsys)
    index = rows[:, 0].astype(int)
    dropped = int(summary.split("; ")[1].split()[0])
    assert dropped > CLIP_FRAMES // 3 and len(rows) < CLIP_FRAMES // 2
    assert index[-1] >= CLIP_FRAMES - 5  # still reached the end of the stream: no growing lag
    latency_ms = float(summary.split("latency ")[1].split()[0])
    assert latency_ms < 500


def test_unreachable_stream_fails_fast_with_one_line(capsys):
    start = time.monotonic()
    assert main(["run", f"tcp://127.0.0.1:{free_port()}", "--bbox", "1,2,3,4", "--boxes", "x.txt",
                 "--timeout", "2", *FAST]) == 2
    assert time.monotonic() - start < 10
    err = capsys.readouterr().err.strip()
    assert "cannot open as a video stream" in err.splitlines()[-1]


def test_camera_that_does_not_exist(capsys):
    assert main(["run", "9", "--bbox", "1,2,3,4", "--boxes", "x.txt", *FAST]) == 2
    assert "camera 9: cannot open" in capsys.readouterr().err


@pytest.fixture
def display():
    """A new Xvfb display, its number picked by Xvfb among the free ones (-displayfd: it writes the number once
    it is ready), so that tests running side by side never share one."""
    needs("Xvfb")
    needs("xdotool")
    read, write = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1024x768x24"], pass_fds=(write,),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    try:
        with os.fdopen(read) as numbers:
            if not select.select([numbers], [], [], XVFB_START_S)[0]:
                raise TimeoutError(f"Xvfb did not start in {XVFB_START_S} s")
            number = numbers.readline().strip()
        yield f":{number}"
    finally:
        server.kill()
        server.wait()


def xdotool(display, *args) -> str:
    env = {**os.environ, "DISPLAY": display}
    return subprocess.run(["xdotool", *args], env=env, capture_output=True, text=True, timeout=20).stdout


def press(display, key) -> None:
    window = xdotool(display, "search", "--name", "^siamtrack$").split()[0]
    xdotool(display, "windowfocus", "--sync", window, "key", key)


def screenshot(display, path: Path) -> np.ndarray:
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "x11grab", "-video_size", "1024x768",
                    "-i", display, "-frames:v", "1", str(path)], check=True, timeout=30)
    return cv2.imread(str(path))


def green_fraction_on_outline(shot: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> float:
    """The share of the rectangle's outline pixels that are the box green (BGR 0, 220, 0)."""
    outline = np.concatenate([shot[y0, x0:x1], shot[y1, x0:x1], shot[y0:y1, x0], shot[y0:y1, x1]])
    return float(np.mean(np.all(np.abs(outline.astype(int) - (0, 220, 0)) < 40, axis=1)))


def run_in_window(display, video, clip, boxes: Path) -> subprocess.Popen:
    """`siamtrack run --show` on the clip's first box, once its first 10 boxes are written."""
    x, y, w, h = clip.boxes[0]
    env = {**os.environ, "DISPLAY": display}
    run = subprocess.Popen([sys.executable, "-m", "siamtrack", "run", str(video), "--bbox", f"{x},{y},{w},{h}",
                            "--show", "--boxes", str(boxes), "--quiet", *FAST], env=env)
    wait_until(lambda: boxes.exists() and len(boxes.read_text().splitlines()) >= 10, 60, "no boxes")
    return run


def test_window_shows_the_box_where_the_tracker_says_and_obeys_keys(display, video, clip, tmp_path):
    needs("ffmpeg")
    boxes = tmp_path / "boxes.txt"
    run = run_in_window(display, video, clip, boxes)
    try:
        press(display, "p")
        time.sleep(1.0)
        shown = len(boxes.read_text().splitlines())
        time.sleep(1.0)
        assert len(boxes.read_text().splitlines()) == shown, "p did not pause"
        shot = screenshot(display, tmp_path / "window.png")
        index, *box = read_boxes(boxes)[-1][:5]
        # where the frame lies on screen: match the clean frame against the screenshot
        frame = cv2.cvtColor(clip.frames[int(index)], cv2.COLOR_RGB2BGR)
        scores = cv2.matchTemplate(shot, frame, cv2.TM_CCOEFF_NORMED)
        _, best, _, (left, top) = cv2.minMaxLoc(scores)
        assert best > 0.8
        bx, by, bw, bh = (int(round(v)) for v in box)
        assert green_fraction_on_outline(shot, left + bx, top + by, left + bx + bw, top + by + bh) > 0.8
        assert green_fraction_on_outline(shot, left + bx + 12, top + by + 12, left + bx + bw + 12,
                                         top + by + bh + 12) < 0.3  # and not somewhere else
        press(display, "q")
        assert run.wait(timeout=30) == 0
        assert len(boxes.read_text().splitlines()) < CLIP_FRAMES  # quit before the end
    finally:
        run.kill()


def drag(display, title: str, start: tuple[int, int], end: tuple[int, int]) -> None:
    """Draw a box with the mouse in the window of that title (OpenCV's selectROI), then press Enter."""
    window = xdotool(display, "search", "--sync", "--name", title).split()[0]
    xdotool(display, "windowfocus", "--sync", window)
    xdotool(display, "mousemove", "--window", window, *map(str, start), "mousedown", "1")
    for step in (0.25, 0.5, 0.75, 1.0):  # OpenCV draws the box from the motion events between
        x, y = (round(a + step * (b - a)) for a, b in zip(start, end))
        xdotool(display, "mousemove", "--window", window, str(x), str(y))
    xdotool(display, "mouseup", "1", "key", "Return")


def test_window_adds_a_target_drawn_with_a(display, video, clip, tmp_path):
    boxes = tmp_path / "boxes.txt"
    run = run_in_window(display, video, clip, boxes)
    try:
        press(display, "p")
        press(display, "a")
        drag(display, "draw the target", (40, 50), (120, 110))
        wait_until(lambda: any(line.split(",")[1] == "1" for line in boxes.read_text().splitlines()[1:]), 30,
                   "the added target never showed in the boxes file")
        press(display, "q")
        assert run.wait(timeout=30) == 0
    finally:
        run.kill()
    rows = np.loadtxt(boxes, delimiter=",", ndmin=2)
    added = rows[rows[:, 1] == 1]
    assert set(rows[:, 1]) == {0, 1} and len(added) >= 1
    # tracked on from the box as drawn: its size, in frame pixels, within one frame's damped rescale
    assert np.abs(added[0, 4:6] - [80, 60]).max() <= 3
