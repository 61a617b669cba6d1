"""`siamtrack serve` under abuse, each attack of issue #30 as a test: the caps on targets, frames, pixels and
disk, the Host check (DNS rebinding), the headers, the idle timeout, the numbers in messages, the sources a
visitor may open and the folders a killed server leaves. Through Starlette's test client (no socket)."""
import json
import os
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

pytest.importorskip("starlette", reason="starlette is in the serve extra")
from test_serve import CLIP, TEST_HOST, client, close_code, jpeg, session_start, wait_until  # noqa: E402

from conftest import write_video  # noqa: E402
from siamtrack.serve.folders import remove_stale_folders, session_folder  # noqa: E402
from siamtrack.serve.protocol import ProtocolError, parse_command  # noqa: E402
from siamtrack.serve.security import HEADERS, host_allowed  # noqa: E402
from siamtrack.serve.server_source import (CAPTURE_OPTIONS, SourceRefused, check_source,  # noqa: E402
                                           restrict_ffmpeg_formats)
from siamtrack.serve.upload import UploadLimits, frame_path, playback_jpeg, track_upload  # noqa: E402
from starlette.websockets import WebSocketDisconnect  # noqa: E402

REBINDING = {"Host": "evil.example:8000", "Origin": "http://evil.example:8000"}  # a page of evil.example,
# whose name now points at 127.0.0.1: the browser sends its own name as the Host, and the Origin matches it


def first_answer(ws) -> dict:
    """The next message that is not a progress report."""
    while (message := ws.receive_json())["type"] == "progress":
        pass
    return message


# --- targets and the numbers in messages


def test_targets_past_the_cap_are_refused_and_the_session_goes_on():
    """400 boxes in one init once took 5 GB; now the message is refused before any work, and so is an add
    that would pass the cap."""
    with client(max_targets=3) as test, test.websocket_connect("/ws") as ws:
        assert session_start(ws)["max_targets"] == 3
        ws.send_text(json.dumps({"type": "init", "boxes": [[10, 10, 20, 20]] * 400}))
        refused = ws.receive_json()["message"]
        assert refused == "400 boxes: this server tracks at most 3 targets a session (--max-targets)"
        ws.send_text(json.dumps({"type": "init", "boxes": [CLIP.boxes[0].tolist(), [40, 40, 80, 60]]}))
        ws.send_bytes(jpeg(CLIP.frames[0]))
        assert len(ws.receive_json()["targets"]) == 2
        ws.send_text(json.dumps({"type": "add", "boxes": [[300, 40, 40, 40], [400, 40, 40, 40]]}))
        ws.send_bytes(jpeg(CLIP.frames[1]))
        assert "2 targets and 2 more: this server tracks at most 3" in ws.receive_json()["message"]
        ws.send_bytes(jpeg(CLIP.frames[2]))
        assert [t["id"] for t in ws.receive_json()["targets"]] == [0, 1]


@pytest.mark.parametrize("message, said", [
    ({"type": "init", "boxes": [[1, 2, 3, "4" * 5000]]}, "four finite numbers"),
    ({"type": "init", "boxes": [[1, 2, 1e308, 4]]}, "within +-1e+06"),
    ({"type": "init", "boxes": [[1, 2, 10 ** 400, 4]]}, "within +-1e+06"),
    ({"type": "init", "boxes": [[1, 2, 3, 4]], "frame": 10 ** 30}, '"frame" must be the number'),
    ({"type": "init", "boxes": [[1, 2, 3, 4]], "frame": -1}, '"frame" must be the number'),
    ({"type": "remove", "id": 10 ** 300}, 'whole number'),
])
def test_every_number_in_a_message_is_bounded(message, said):
    with pytest.raises(ProtocolError) as error:
        parse_command(json.dumps(message), 8)
    assert said in str(error.value) and len(str(error.value)) < 200 and "\n" not in str(error.value)


def test_a_5000_digit_number_is_a_one_line_error_not_a_dropped_connection():
    """JSON allows it; Python refuses to read an integer of over 4300 digits, with a ValueError that used
    to end the session with a traceback."""
    with client() as test, test.websocket_connect("/ws") as ws:
        session_start(ws)
        ws.send_text('{"type": "init", "boxes": [[1, 2, 3, ' + "9" * 5000 + "]]}")
        message = ws.receive_json()
        assert message["type"] == "error" and "too long" in message["message"] and len(message["message"]) < 200
        ws.send_text(json.dumps({"type": "init", "boxes": [CLIP.boxes[0].tolist()]}))
        ws.send_bytes(jpeg(CLIP.frames[0]))
        assert ws.receive_json()["targets"][0]["id"] == 0


def test_a_box_reaching_past_the_frame_is_cut_to_the_part_inside():
    with client() as test, test.websocket_connect("/ws") as ws:
        session_start(ws)
        ws.send_text(json.dumps({"type": "init", "boxes": [[600, 300, 999999, 999999]]}))
        ws.send_bytes(jpeg(CLIP.frames[0]))
        assert ws.receive_json()["targets"][0]["box"] == [600, 300, 40, 60]


# --- hosts and headers


def test_host_names_the_server_was_not_started_for_are_refused_before_any_work(tmp_path):
    """DNS rebinding: evil.example's page gets no page, no upload and no session, though its Origin matches
    its Host; addresses, localhost and the names given are served."""
    video = write_video(tmp_path / "clip.mp4", CLIP.frames[:3])
    with client() as test:
        with test.websocket_connect("/ws") as ws:
            session = session_start(ws)["session"]
            page = test.get("/", headers=REBINDING)
            assert page.status_code == 400 and "--allowed-host" in page.text
            upload = test.post(f"/sessions/{session}/upload", content=video.read_bytes(), headers=REBINDING)
            assert upload.status_code == 400
            assert not (test.sessions.open[session].folder / "upload.video").exists()
        with pytest.raises(WebSocketDisconnect) as refused:
            with test.websocket_connect("/ws", headers=REBINDING):
                pass
        assert refused.value.code == 1008 and not test.sessions.open
        for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000", "192.168.1.5", TEST_HOST.upper()):
            assert test.get("/", headers={"Host": host}).status_code == 200, host


def test_which_host_headers_are_taken():
    assert host_allowed("127.0.0.1:8000", ()) and host_allowed("[::1]:8000", ()) and host_allowed("10.0.0.7", ())
    assert host_allowed("localhost", ()) and host_allowed("app.localhost:80", ())
    assert host_allowed("tracker.lab:8000", ("tracker.lab",)) and host_allowed("anything", ("*",))
    assert not host_allowed("evil.example:8000", ("tracker.lab",)) and not host_allowed(None, ())
    assert not host_allowed("localhost.evil.example", ()) and not host_allowed("127.0.0.1.evil.example", ())


def test_every_answer_carries_the_security_headers():
    with client(token="s3cret") as test:
        for url in ("/?token=s3cret", "/static/serve.js", "/", "/sessions/nobody/live.boxes.txt?token=s3cret"):
            answer = test.get(url)
            for name, value in HEADERS.items():
                assert answer.headers[name] == value, (url, name)
        assert "frame-ancestors 'none'" in HEADERS["Content-Security-Policy"]
        assert test.get("/static/serve.js").headers["content-type"].startswith("text/javascript")


# --- idle sessions


def test_an_idle_session_is_told_and_closed_and_its_place_freed():
    with client(max_sessions=1, idle_timeout_s=0.6) as test:
        with test.websocket_connect("/ws") as idle:
            session_start(idle)
            message = idle.receive_json()
            assert message["type"] == "idle" and "--idle-timeout" in message["message"]
            assert close_code(idle) == 4000
        wait_until(lambda: not test.sessions.open, "the idle session to go")
        with test.websocket_connect("/ws") as ws:  # its place is free
            session_start(ws)
            for frame in CLIP.frames[:4]:  # a session that sends is not idle
                ws.send_bytes(jpeg(frame))
                assert ws.receive_json()["type"] == "boxes"
                time.sleep(0.3)


# --- uploads


def test_a_failed_upload_leaves_nothing_of_the_one_before(tmp_path):
    video = write_video(tmp_path / "clip.mp4", CLIP.frames[:3])
    with client() as test, test.websocket_connect("/ws") as ws:
        session = session_start(ws)["session"]
        assert test.post(f"/sessions/{session}/upload", content=video.read_bytes()).status_code == 200
        ws.send_text(json.dumps({"type": "track_upload", "boxes": [CLIP.boxes[0].tolist()]}))
        assert first_answer(ws)["type"] == "upload_done"
        assert test.get(f"/sessions/{session}/frames/2.jpg").status_code == 200
        assert test.post(f"/sessions/{session}/upload", content=b"not a video\n").status_code == 415
        for name in ("frames/0.jpg", "frames/2.jpg", "upload.boxes.txt", "upload.mp4"):
            assert test.get(f"/sessions/{session}/{name}").status_code == 404, name
        ws.send_text(json.dumps({"type": "track_upload", "boxes": [CLIP.boxes[0].tolist()]}))
        assert "no video uploaded" in ws.receive_json()["message"]


def test_an_upload_stops_at_the_frame_limit_and_says_so(tmp_path):
    video = write_video(tmp_path / "clip.mp4", CLIP.frames)
    with client(max_upload_frames=4) as test, test.websocket_connect("/ws") as ws:
        session = session_start(ws)["session"]
        assert test.post(f"/sessions/{session}/upload", content=video.read_bytes()).status_code == 200
        ws.send_text(json.dumps({"type": "track_upload", "boxes": [CLIP.boxes[0].tolist()]}))
        done = first_answer(ws)
        assert done["frames"] == 4 and "limit of 4 frames (--max-upload-frames)" in done["stopped"]
        assert len(test.get(f"/sessions/{session}/upload.boxes.txt").text.splitlines()) == 1 + 4
        huge = "9" * 5000  # no such frame, and too long a name for a file: a 404, not a 500
        assert test.get(f"/sessions/{session}/frames/{huge}.jpg").status_code == 404


def test_an_upload_stops_at_the_disk_limit_and_its_playback_frames_are_small(tmp_path):
    """A 3.2 MB mp4 of 4K frames once wrote 1.96 GB: the playback JPEGs are at most 1280 px, and the session's
    files stop growing at its disk limit."""
    noise = np.random.default_rng(0).integers(0, 256, (360, 640, 3), dtype=np.uint8)
    frames = [np.clip(f.astype(int) + noise // 2, 0, 255).astype(np.uint8) for f in CLIP.frames]
    folder = tmp_path / "session"
    folder.mkdir()
    write_video(tmp_path / "clip.mp4", frames).rename(folder / "upload.video")
    budget = (folder / "upload.video").stat().st_size + 60_000
    result = track_upload(FakeTracker(), folder, CLIP.boxes[:1], lambda done, total: None, NeverSet(),
                          UploadLimits(frames=1000, disk_bytes=budget, disk_mb=1))
    assert 0 < result.frames < len(frames) and "limit of 1 MB on disk a session (--max-disk-mb)" in result.stopped
    assert frame_path(folder, result.frames - 1).is_file() and not frame_path(folder, result.frames).exists()
    wide = cv2.imdecode(np.frombuffer(playback_jpeg(np.zeros((2160, 4096, 3), np.uint8)), np.uint8), cv2.IMREAD_COLOR)
    assert wide.shape == (675, 1280, 3)


class FakeTracker:
    """Boxes where they were given: the upload's bookkeeping without a network."""

    def init(self, frame, boxes):
        self.boxes = np.asarray(boxes, float).reshape(-1, 4)

    def update(self, frame):
        return self.boxes

    def answers(self):
        from siamtrack.core.tracker import Answers
        n = len(self.boxes)
        return Answers(np.arange(n), self.boxes, np.full(n, np.nan), np.zeros(n, bool))


class NeverSet:
    def is_set(self) -> bool:
        return False


# --- server sources


@pytest.mark.parametrize("text, said", [
    ("²", "neither a camera index"),
    ("99999999999999999999", "a camera index is a number from 0 to 99"),
    ("tcp://127.0.0.1:9999?listen=1", "with no options"),
    ("tcp://127.0.0.1:9999/x?listen", "with no options"),
    ("udp://127.0.0.1:9999", "neither a camera index"),
    ("srt://127.0.0.1:9999?mode=listener", "neither a camera index"),
    ("http://[::1", "neither a camera index"),
    ("http://example.com/a b", "neither a camera index"),
    ("file:///etc/passwd", "the server opens no files"),
])
def test_sources_that_would_listen_bind_or_read_files_are_refused_in_one_line(text, said):
    with pytest.raises(SourceRefused) as refused:
        check_source(text, allowed=True)
    assert said in str(refused.value) and "\n" not in str(refused.value)
    for allowed in ("0", "rtsp://127.0.0.1:8554/cam?tcp", "http://127.0.0.1:8000/cam.mjpg?user=a",
                    "tcp://127.0.0.1:8555"):
        assert check_source(allowed, allowed=True) == allowed


def test_a_source_text_that_is_no_source_is_a_message_not_an_internal_error():
    with client(allow_server_sources=True) as test, test.websocket_connect("/ws") as ws:
        session_start(ws)
        for text in ("²", "99999999999999999999"):
            ws.send_text(json.dumps({"type": "source", "source": text}))
            message = ws.receive_json()["message"]
            assert "internal error" not in message and "camera" in message, message


def test_ffmpeg_reads_no_playlist_in_a_server(tmp_path, monkeypatch):
    """An HLS playlist (which FFmpeg follows to any host it names) does not open once the server restricted
    FFmpeg's formats; a video file still does."""
    from test_live import needs
    needs("ffmpeg")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-t", "2",
                    "-c:v", "mpeg1video", "-f", "hls", "-hls_time", "1", str(tmp_path / "play.m3u8")],
                   check=True, timeout=60)
    write_video(tmp_path / "clip.mp4", CLIP.frames[:3])
    monkeypatch.delenv(CAPTURE_OPTIONS, raising=False)  # restored as it was after the test
    assert cv2.VideoCapture(str(tmp_path / "play.m3u8"), cv2.CAP_FFMPEG).isOpened()
    restrict_ffmpeg_formats()
    assert not cv2.VideoCapture(str(tmp_path / "play.m3u8"), cv2.CAP_FFMPEG).isOpened()
    assert cv2.VideoCapture(str(tmp_path / "clip.mp4"), cv2.CAP_FFMPEG).isOpened()


# --- folders


def test_folders_of_a_killed_server_are_removed_at_the_next_start(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    dead = tmp_path / f"siamtrack-serve-{gone.stdout.strip()}-abc123"
    alive = tmp_path / f"siamtrack-serve-{os.getpid()}-def456"
    other = tmp_path / "siamtrack-serve-old7x9"  # not named after a process: left alone
    for folder in (dead, alive, other):
        (folder / "frames").mkdir(parents=True)
    assert remove_stale_folders(tmp_path) == [dead]
    assert not dead.exists() and alive.is_dir() and other.is_dir()
    mine = session_folder()
    try:
        assert mine.name.startswith(f"siamtrack-serve-{os.getpid()}-") and mine.stat().st_mode & 0o777 == 0o700
    finally:
        mine.rmdir()


def test_serve_help_shows_every_limit_and_its_default(capsys):
    from siamtrack.cli import main
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option, default in (("--max-targets", "8"), ("--idle-timeout", "300"), ("--max-frame-pixels", "8847360"),
                            ("--max-upload-frames", "9000"), ("--max-disk-mb", "1000"), ("--max-sessions", "8"),
                            ("--max-upload-mb", "200")):
        assert option in text and f"(default: {default}" in text, option
    assert "--allowed-host" in text
