"""A live stream that drops: served by ffmpeg on 127.0.0.1, killed mid-stream, restarted on the same port
(or not), and read through open_source(..., reconnect=N) and `siamtrack run URL --reconnect N`."""
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import read_boxes
from test_live import free_port, needs, serving, wait_until

from siamtrack.errors import SourceError
from siamtrack.sources import open_source

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from serve_abuse import CountingFiles  # noqa: E402 (files over HTTP, counting the requests)

KILL_AFTER = 10  # frames read before the server is killed
LATE_S = 1.0  # how late the first frame back may be read on a busy machine
OUTAGE = 1.5  # seconds the server stays away before it is restarted
FAST = ["--config", "siamfc_lite0_fast", "--threads", "1"]


CLIP_FRAMES = 90


class Server:
    """ffmpeg serving the clip as a live MPEG-TS stream on one loopback port, to be killed and restarted."""

    def __init__(self, video):
        needs("ffmpeg")
        self.video, self.port, self.process = video, free_port(), None
        self.url = f"tcp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(["ffmpeg", "-loglevel", "error", "-readrate", "1", "-i", str(self.video),
                                         "-c:v", "mpeg1video", "-q:v", "3", "-f", "mpegts", f"{self.url}?listen=1"])
        wait_until(lambda: serving(self.port), 15, "ffmpeg did not start serving")

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture
def server(video):
    server = Server(video)
    server.start()
    yield server
    server.kill()


def test_frames_come_again_after_the_server_comes_back_and_the_gap_is_recorded(server):
    source = open_source(server.url, timeout=5, reconnect=10)
    after = 0  # frames that arrived from the restarted server
    try:
        for read, _ in enumerate(source, start=1):
            if read == KILL_AFTER:
                server.kill()
                time.sleep(OUTAGE)  # the background reader keeps retrying meanwhile
                server.start()
                restarted = time.perf_counter()
            elif read > KILL_AFTER and source.captured_at > restarted:
                after += 1
            if after == 20:
                break
    finally:
        source.close()
    assert after == 20  # the iteration did not end at the drop
    assert len(source.gaps) == 1 and OUTAGE <= source.gaps[0] < 10
    assert source.ended is None  # stopped by its reader, not run out


def read_until_it_ends_killing_the_server(source, server) -> float:
    """Read the source to its end, the server killed after KILL_AFTER frames; seconds from the kill to the end,
    on the source's own clock (time.monotonic), read before the kill: the reader may see the drop, and start
    its reconnect time, before kill() returns."""
    try:
        for read, _ in enumerate(source, start=1):
            if read == KILL_AFTER:
                killed = time.monotonic()
                server.kill()
    finally:
        source.close()
    return time.monotonic() - killed


def test_a_stream_that_stays_away_ends_after_the_reconnect_time_saying_so(server):
    source = open_source(server.url, timeout=5, reconnect=2)
    assert 2 <= read_until_it_ends_killing_the_server(source, server) < 10
    assert source.gaps == [] and source.ended == "stream lost: not back after 2 s of reconnecting"


def test_without_reconnect_a_drop_ends_the_stream_at_once(server):
    source = open_source(server.url, timeout=5)
    assert read_until_it_ends_killing_the_server(source, server) < 5
    assert source.gaps == [] and source.ended == "stream ended"


def test_close_during_an_outage_does_not_wait_for_the_reconnect_time(server):
    source = open_source(server.url, timeout=5, reconnect=30)
    frames = iter(source)
    for _ in range(KILL_AFTER):
        next(frames)
    server.kill()
    time.sleep(1.0)  # the reader is now retrying
    started = time.monotonic()
    source.close()
    assert time.monotonic() - started < 1.5 and source.ended is None


@pytest.fixture
def files(video, tmp_path):
    """The clip's mp4, and the same cut after its header (it opens, and gives no frame), over HTTP."""
    needs("ffmpeg")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(video), "-c", "copy", "-movflags", "+faststart",
                    str(tmp_path / "clip.mp4")], check=True, timeout=60)
    data = (tmp_path / "clip.mp4").read_bytes()
    (tmp_path / "header_only.mp4").write_bytes(data[:data.find(b"mdat") + 4])
    server = CountingFiles(tmp_path)
    yield server
    server.stop()


def test_a_video_file_behind_a_url_is_played_once(files):
    """An mp4 over http has an end: the source ends there, once, instead of reconnecting and replaying it."""
    source = open_source(f"{files.url}/clip.mp4", timeout=5, reconnect=10)
    started = time.monotonic()
    try:
        for _ in range(3 * CLIP_FRAMES):  # a replay would go on past the clip's frames
            if next(iter(source), None) is None:
                break
    finally:
        source.close()
    assert source.ended == "end of file" and source.received == CLIP_FRAMES
    assert time.monotonic() - started < 10  # not after the reconnect time


def test_a_url_that_opens_but_gives_no_frame_is_retried_at_a_growing_pace(files):
    """It opens (its header is there) and its first read fails: once, it was reopened at once, again and
    again, 7,585 requests in 10 s. Now each attempt waits longer than the last, until the reconnect time."""
    source = open_source(f"{files.url}/header_only.mp4", timeout=5, reconnect=3)
    try:
        assert next(iter(source), None) is None
    finally:
        source.close()
    assert source.ended == "stream lost: not back after 3 s of reconnecting"
    assert files.requests < 40, files.requests  # 5 opens at most: after 0, 0.25, 0.5 and 1 s of waiting


def test_negative_reconnect_time_is_refused():
    with pytest.raises(SourceError, match="reconnect time must be >= 0 seconds"):
        open_source("tcp://127.0.0.1:1", reconnect=-1)


def start_run(server, clip, boxes, reconnect: str) -> subprocess.Popen:
    """`siamtrack run URL --reconnect ...` in its own process, once it has tracked KILL_AFTER frames."""
    bbox = ",".join(str(v) for v in clip.boxes[0])
    run = subprocess.Popen([sys.executable, "-m", "siamtrack", "run", server.url, "--bbox", bbox, "--boxes",
                            str(boxes), "--reconnect", reconnect, "--quiet", *FAST],
                           stdout=subprocess.PIPE, text=True)
    wait_until(lambda: boxes.exists() and len(boxes.read_text().splitlines()) > KILL_AFTER, 120, "no boxes")
    return run


def test_cli_run_tracks_on_after_the_stream_comes_back_and_says_how_it_ended(server, clip, tmp_path):
    boxes = tmp_path / "boxes.txt"
    run = start_run(server, clip, boxes, reconnect="4")
    try:
        server.kill()
        before = len(read_boxes(boxes))
        time.sleep(OUTAGE)
        server.start()  # serves the clip again, then ends for good: the run gives up 4 s later
        summary, _ = run.communicate(timeout=60)
    finally:
        run.kill()
    assert run.returncode == 0
    gap = float(summary.split("1 gap in the stream (")[1].split(" s)")[0])
    # printed to 0.1 s; the 4 s of reconnecting count from when the loss is noticed, after the last frame, and a
    # busy machine takes a while to read the first frame back: back within the window, with that much to spare
    assert OUTAGE <= gap <= 4 + LATE_S
    assert summary.strip().endswith(f"; stream lost: not back after 4 s of reconnecting -> {boxes}"), summary
    rows = read_boxes(boxes)
    # the restarted stream was tracked into the same file: the first stream died long before its 90th frame
    assert len(rows) > before + 10 and rows[-1, 0] >= 90
    assert boxes.read_text().count("#") == 1 and np.all(np.diff(rows[:, 0]) > 0)
    assert np.isfinite(rows[1:, 5]).all()  # one tracker throughout: frame 0's nan score only, no new start


def test_cli_run_without_reconnect_ends_at_the_drop_saying_the_stream_ended(server, clip, tmp_path):
    boxes = tmp_path / "boxes.txt"
    run = start_run(server, clip, boxes, reconnect="0")
    try:
        server.kill()
        summary, _ = run.communicate(timeout=30)
    finally:
        run.kill()
    assert run.returncode == 0
    assert "gap" not in summary and summary.strip().endswith(f"; stream ended -> {boxes}"), summary
