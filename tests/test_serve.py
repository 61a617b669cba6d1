"""`siamtrack serve` without a browser: the protocol, sessions, uploads and the guards, through Starlette's
test client (the app in this process, no socket), and the command's own parts."""
import asyncio
import importlib.util
import json
import os
import socket
import threading
import time
from itertools import cycle, islice
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("starlette", reason="starlette is in the serve extra")
if not any(importlib.util.find_spec(name) for name in ("httpx2", "httpx")):
    pytest.skip("Starlette's test client needs httpx2 (the dev extra)", allow_module_level=True)
from conftest import count_frames, write_video  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402
from starlette.websockets import WebSocketDisconnect  # noqa: E402

from siamtrack import TrackerSpec  # noqa: E402
from siamtrack.cli.serve import page_urls  # noqa: E402
from siamtrack.errors import FrameError  # noqa: E402
from siamtrack.outputs import BOXES_HEADER  # noqa: E402
from siamtrack.serve import server_source  # noqa: E402
from siamtrack.serve.app import Sessions, build_app  # noqa: E402
from siamtrack.serve.frames import decode_frame  # noqa: E402
from siamtrack.serve.mailbox import Frame, Mailbox  # noqa: E402
from siamtrack.serve.protocol import Add, Clear, Init, ProtocolError, Remove, TrackUpload, parse_command  # noqa: E402
from siamtrack.serve.security import is_loopback  # noqa: E402
from siamtrack.serve.settings import DEFAULT_MAX_FRAME_PIXELS, ServeSettings  # noqa: E402
from siamtrack.sources import FrameSource  # noqa: E402
from siamtrack.synthetic import SyntheticClip, clip_frames  # noqa: E402

STREAM_FPS = 25.0
MAX_BOXES = 8
TEST_HOST = "testserver"  # the Host Starlette's test client sends: a name the test servers answer to
SPEC = TrackerSpec("siamfc_lite0_fast", device="cpu", backend="eager")  # the quickest to build
# the demo clip's first frames, moving as they do in its 150: a short clip of its own would move 12x as far a frame
_frames, _boxes = zip(*islice(clip_frames(150), 12))
CLIP = SyntheticClip(list(_frames), np.array(_boxes, dtype=np.float64))


def jpeg(frame_rgb: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR))[1].tobytes()


def client(**settings) -> TestClient:
    sessions = Sessions(settings.pop("max_sessions", 2))
    settings.setdefault("allowed_hosts", (TEST_HOST,))
    app = build_app(ServeSettings(SPEC, max_sessions=sessions.limit, **settings), sessions=sessions)
    test_client = TestClient(app)
    test_client.sessions = sessions
    return test_client


def session_start(ws) -> dict:
    """The hello, after which the tracker's ready message; the hello returned."""
    hello = ws.receive_json()
    assert hello["type"] == "hello" and ws.receive_json()["type"] == "ready"
    return hello


def close_code(ws) -> int:
    """The code the server closes `ws` with: its next receive raises."""
    with pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_json()
    return closed.value.code


def wait_until(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def iou(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    low, high = np.maximum(a[:2], b[:2]), np.minimum(a[:2] + a[2:], b[:2] + b[2:])
    inter = np.prod(np.clip(high - low, 0, None))
    return inter / (np.prod(a[2:]) + np.prod(b[2:]) - inter)


# --- the protocol's messages


@pytest.mark.parametrize("text, said", [
    ("garbage", "not a JSON message"),
    ("[1, 2]", 'a JSON object with a "type"'),
    ('{"type": "fly"}', "unknown message type 'fly'"),
    ('{"type": "init"}', '"boxes" must be a non-empty list'),
    ('{"type": "init", "boxes": []}', '"boxes" must be a non-empty list'),
    ('{"type": "init", "boxes": [[1, 2, 3]]}', "a box must be [x, y, w, h]"),
    ('{"type": "add", "boxes": [[1, 2, 3, NaN]]}', "four finite numbers"),
    ('{"type": "init", "boxes": [[1, 2, 3, "4"]]}', "four finite numbers"),
    ('{"type": "init", "boxes": [[1, 2, 3, 4]], "frame": "last"}', '"frame" must be the number'),
    ('{"type": "remove", "id": true}', 'the target\'s "id", a whole number'),
    ('{"type": "source", "source": 7}', "a camera index or stream URL"),
    ("[" * 100000, "not a JSON message"),
])
def test_bad_messages_are_told_what_is_wrong(text, said):
    with pytest.raises(ProtocolError, match=None) as error:
        parse_command(text, MAX_BOXES)
    assert said in str(error.value) and len(str(error.value)) < 200


def test_messages_parse_into_commands():
    init = parse_command('{"type": "init", "boxes": [[1, 2, 3, 4], [5, 6, 7, 8.5]]}', MAX_BOXES)
    assert isinstance(init, Init) and init.boxes.shape == (2, 4) and init.frame is None and init.needs_frame
    assert isinstance(parse_command('{"type": "add", "boxes": [[1, 2, 3, 4]], "frame": 7}', MAX_BOXES), Add)
    assert parse_command('{"type": "remove", "id": 3}', MAX_BOXES) == Remove(3)
    assert isinstance(parse_command('{"type": "clear"}', MAX_BOXES), Clear)
    upload = parse_command('{"type": "track_upload", "boxes": [[1, 2, 3, 4]]}', MAX_BOXES)
    assert isinstance(upload, TrackUpload) and not upload.needs_frame


def test_mailbox_keeps_commands_in_order_and_only_the_newest_frame():
    async def scenario():
        box = Mailbox(max_commands=2)
        for number in range(3):  # a client faster than its tracker: frames 0 and 1 are replaced
            box.put_frame(Frame(number, b""))
        box.put_command(Init(np.ones((1, 4))))
        box.put_frame(Frame(3, b""))  # the init's frame, never dropped
        box.put_frame(Frame(4, b""))
        box.put_command(Remove(0))
        with pytest.raises(ProtocolError, match="2 commands are waiting"):
            box.put_command(Clear())
        taken = [await box.take() for _ in range(4)]
        return box, taken

    box, taken = asyncio.run(scenario())
    assert box.dropped == 2
    assert taken[0].number == 2
    assert isinstance(taken[1].command, Init) and taken[1].frame.number == 3
    assert taken[2].number == 4 and taken[3].command == Remove(0)


def test_frames_are_checked_before_they_are_decoded():
    assert decode_frame(jpeg(CLIP.frames[0]), DEFAULT_MAX_FRAME_PIXELS).shape == CLIP.frames[0].shape
    side = int(np.sqrt(DEFAULT_MAX_FRAME_PIXELS)) + 1  # a few kilobytes of PNG that would decode past the limit
    huge = cv2.imencode(".png", np.zeros((side, side), np.uint8))[1].tobytes()
    with pytest.raises(FrameError, match="larger than this server takes"):
        decode_frame(huge, DEFAULT_MAX_FRAME_PIXELS)
    with pytest.raises(FrameError, match="larger than this server takes"):  # the limit is the server's
        decode_frame(jpeg(CLIP.frames[0]), 640 * 360 - 1)
    with pytest.raises(FrameError, match="JPEG or PNG"):
        decode_frame(cv2.imencode(".bmp", CLIP.frames[0])[1].tobytes(), DEFAULT_MAX_FRAME_PIXELS)
    with pytest.raises(FrameError, match="JPEG or PNG"):
        decode_frame(b"hello", DEFAULT_MAX_FRAME_PIXELS)


# --- sessions over the WebSocket


def test_a_session_tracks_adds_removes_and_clears():
    with client() as test, test.websocket_connect("/ws") as ws:
        hello = session_start(ws)
        assert hello["model"] == "siamfc_lite0_fast" and not hello["server_sources"]
        ws.send_text(json.dumps({"type": "init", "boxes": [CLIP.boxes[0].tolist()]}))
        ws.send_bytes(jpeg(CLIP.frames[0]))
        first = ws.receive_json()
        assert first["frame"] == 0 and first["targets"] == [
            {"id": 0, "box": CLIP.boxes[0].tolist(), "score": None, "lost": False}]
        overlaps = []
        for index in range(1, 8):
            ws.send_bytes(jpeg(CLIP.frames[index]))
            answer = ws.receive_json()
            assert answer["frame"] == index and answer["targets"][0]["score"] > 0
            overlaps.append(iou(answer["targets"][0]["box"], CLIP.boxes[index]))
        assert np.mean(overlaps) >= 0.5, overlaps
        ws.send_text(json.dumps({"type": "add", "boxes": [[500, 250, 70, 60]]}))
        ws.send_bytes(jpeg(CLIP.frames[8]))
        assert [t["id"] for t in ws.receive_json()["targets"]] == [0, 1]
        ws.send_text(json.dumps({"type": "remove", "id": 0}))
        ws.send_bytes(jpeg(CLIP.frames[9]))
        assert [t["id"] for t in ws.receive_json()["targets"]] == [1]
        ws.send_text(json.dumps({"type": "clear"}))
        ws.send_bytes(jpeg(CLIP.frames[10]))
        assert ws.receive_json()["targets"] == []
        session = next(iter(test.sessions.open.values()))
        rows = (session.folder / "live.boxes.txt").read_text().splitlines()
        assert rows[0] == f"# {BOXES_HEADER}" and len(rows) == 1 + 8 + 2 + 1
        assert rows[1].startswith("0,0,280.00,193.00,80.00,60.00,nan")
        live = test.get(f"/sessions/{session.id}/live.boxes.txt")
        assert live.status_code == 200 and live.text.splitlines() == rows
    wait_until(lambda: not session.folder.exists(), "the session's files to go with it")
    assert not test.sessions.open


def test_frames_faster_than_the_tracker_are_dropped_and_counted_never_queued():
    """Every frame is answered or dropped, whatever the tracker's speed; the newest is always answered."""
    with client() as test, test.websocket_connect("/ws") as ws:
        session_start(ws)
        ws.send_text(json.dumps({"type": "init", "boxes": [CLIP.boxes[0].tolist()]}))
        frames = [jpeg(CLIP.frames[i % len(CLIP.frames)]) for i in range(40)]
        for frame in frames:  # all at once, none of the answers read yet
            ws.send_bytes(frame)
        answers = [ws.receive_json()]
        while answers[-1]["frame"] < len(frames) - 1:
            answers.append(ws.receive_json())
    numbers = [a["frame"] for a in answers]
    assert numbers == sorted(set(numbers)) and numbers[0] == 0
    assert len(answers) + answers[-1]["dropped"] == len(frames)


def test_bad_input_is_answered_and_the_session_goes_on():
    with client() as test, test.websocket_connect("/ws") as ws:
        session_start(ws)
        ws.send_text("{garbage")
        assert "not a JSON message" in ws.receive_json()["message"]
        ws.send_bytes(b"\x00\x01 not an image")
        assert "JPEG or PNG" in ws.receive_json()["message"]
        ws.send_text(json.dumps({"type": "init", "boxes": [[5000, 5000, 20, 20]]}))
        ws.send_bytes(jpeg(CLIP.frames[0]))
        assert "lies outside the 640x360 frame" in ws.receive_json()["message"]
        ws.send_text(json.dumps({"type": "remove", "id": 4}))
        assert "no target 4" in ws.receive_json()["message"]
        ws.send_text(json.dumps({"type": "init", "boxes": [CLIP.boxes[0].tolist()]}))
        ws.send_bytes(jpeg(CLIP.frames[0]))
        assert ws.receive_json()["targets"][0]["id"] == 0
        ws.send_text(json.dumps({"type": "add", "boxes": [[10, 10, 20, 20], [9000, 0, 5, 5]]}))
        ws.send_bytes(jpeg(CLIP.frames[1]))
        assert "lies outside" in ws.receive_json()["message"]
        ws.send_bytes(jpeg(CLIP.frames[2]))  # a bad add keeps the targets there were, and adds none
        assert [t["id"] for t in ws.receive_json()["targets"]] == [0]


def test_sessions_past_the_cap_are_told_to_come_back_later():
    with client(max_sessions=1) as test:
        with test.websocket_connect("/ws") as first:
            session_start(first)
            with test.websocket_connect("/ws") as second:
                busy = second.receive_json()
                assert busy["type"] == "busy" and "try again later" in busy["message"]
                assert close_code(second) == 1013
        wait_until(lambda: not test.sessions.open, "the first session to close")
        with test.websocket_connect("/ws") as third:  # the first one left: there is room again
            session_start(third)


def test_no_request_makes_the_server_open_a_device_url_or_path(monkeypatch):
    opened = []
    monkeypatch.setattr(server_source, "open_source", lambda *args, **kwargs: opened.append(args))
    with client() as test, test.websocket_connect("/ws") as ws:
        session_start(ws)
        for source in ("0", "rtsp://127.0.0.1:9/x", "/etc/passwd"):
            ws.send_text(json.dumps({"type": "source", "source": source}))
            assert "--allow-server-sources" in ws.receive_json()["message"]
    with client(allow_server_sources=True) as test, test.websocket_connect("/ws") as ws:
        assert session_start(ws)["server_sources"]
        for source in ("/etc/passwd", "file:///etc/passwd", "concat:/etc/passwd", "../video.mp4", "http:/x"):
            ws.send_text(json.dumps({"type": "source", "source": source}))
            assert "the server opens no files" in ws.receive_json()["message"]
    assert opened == []


class EndlessStream(FrameSource):
    """A live stream for the server to open: the clip's frames over and over at 25 fps, until stopped (or
    after `length` frames)."""

    def __init__(self, url: str, length: int | None = None):
        super().__init__(url, STREAM_FPS, None, is_live=True)
        self.stopped, self.length = threading.Event(), length

    def __iter__(self):
        for index, frame in enumerate(islice(cycle(CLIP.frames), self.length)):
            if self.stopped.wait(1 / STREAM_FPS):
                return
            self.frame_index = index
            yield frame
        self.ended = "stream ended"

    def stop(self) -> None:
        self.stopped.set()


def test_a_server_source_shows_frames_and_tracks_on_the_one_the_boxes_were_drawn_on(monkeypatch):
    """With --allow-server-sources, a stream URL: its frames come to the client (a `frame` message, then the
    JPEG), pause holds them, and init applies to the frame the client names."""
    from siamtrack.sources import LatestFrameSource
    opened = []

    def open_as_stream(url, **kwargs):  # the URL is recorded, never fetched
        opened.append(url)
        return LatestFrameSource(EndlessStream(url))

    monkeypatch.setattr(server_source, "open_source", open_as_stream)
    with client(allow_server_sources=True) as test, test.websocket_connect("/ws") as ws:
        session_start(ws)
        ws.send_text(json.dumps({"type": "source", "source": "rtsp://127.0.0.1:8554/cam"}))
        assert ws.receive_json()["type"] == "source_opened"
        announced = ws.receive_json()
        assert announced["type"] == "frame"
        shown = cv2.imdecode(np.frombuffer(ws.receive_bytes(), np.uint8), cv2.IMREAD_COLOR)
        assert shown.shape == CLIP.frames[0].shape
        ws.send_text(json.dumps({"type": "pause"}))
        held = CLIP.boxes[announced["frame"] % len(CLIP.frames)].tolist()
        ws.send_text(json.dumps({"type": "init", "boxes": [held], "frame": announced["frame"]}))
        ws.send_text(json.dumps({"type": "resume"}))
        answers = []
        while len(answers) < 3:
            message = ws.receive_json()
            if message["type"] == "frame":
                ws.receive_bytes()
            else:
                assert message["type"] == "boxes", message
                answers.append(message)
        ws.send_text(json.dumps({"type": "source", "source": None}))
        assert answers[0]["frame"] == announced["frame"] and answers[0]["targets"][0]["box"] == held
        assert all(a["frame"] > announced["frame"] and a["targets"][0]["score"] > 0 for a in answers[1:])
    assert opened == ["rtsp://127.0.0.1:8554/cam"]


def test_a_session_whose_server_source_ended_takes_the_clients_frames_again(monkeypatch):
    from siamtrack.sources import LatestFrameSource
    monkeypatch.setattr(server_source, "open_source", lambda url, **kwargs: LatestFrameSource(EndlessStream(url, 3)))
    with client(allow_server_sources=True) as test, test.websocket_connect("/ws") as ws:
        session_start(ws)
        ws.send_text(json.dumps({"type": "source", "source": "rtsp://127.0.0.1:8554/cam"}))
        while (message := ws.receive_json())["type"] != "source_ended":
            if message["type"] == "frame":
                ws.receive_bytes()
        assert message["message"] == "stream ended"
        wait_until(lambda: next(iter(test.sessions.open.values())).source is None, "the session to close the source")
        ws.send_text(json.dumps({"type": "init", "boxes": [CLIP.boxes[0].tolist()]}))
        ws.send_bytes(jpeg(CLIP.frames[0]))
        answer = ws.receive_json()
        assert answer["type"] == "boxes" and answer["targets"][0]["id"] == 0, answer


# --- uploads


def test_uploads_are_checked_to_be_videos_within_the_limit(tmp_path):
    video = write_video(tmp_path / "clip.mp4", CLIP.frames[:3])
    with client(max_upload_mb=1) as test, test.websocket_connect("/ws") as ws:
        session = session_start(ws)["session"]
        url = f"/sessions/{session}/upload"
        cases = [(os.urandom(3 << 19), 413, "larger than this server takes (1 MB"),
                 (b"just text\n" * 50, 415, "a text file, not a video"),
                 (b"#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n", 415, "a text file, not a video"),
                 (os.urandom(5000), 415, "not a video OpenCV can read"),
                 (cv2.imencode(".png", CLIP.frames[0])[1].tobytes(), 415, "not a video OpenCV can read"),
                 (b"", 415, "the upload is empty")]
        for body, status, said in cases:
            answer = test.post(url, content=body)
            assert answer.status_code == status and said in answer.json()["error"], answer.json()
        streamed = test.post(url, content=iter([os.urandom(1 << 18)] * 5))  # no Content-Length: counted as it comes
        assert streamed.status_code == 413
        assert test.post("/sessions/nobody/upload", content=video.read_bytes()).status_code == 404
        answer = test.post(url, content=video.read_bytes())
        assert answer.json() == {"width": 640, "height": 360, "fps": 25.0, "frames": 3}
        assert test.get(f"/sessions/{session}/frames/0.jpg").headers["content-type"] == "image/jpeg"


def test_an_uploaded_video_is_tracked_into_rows_and_an_annotated_mp4(tmp_path):
    video = write_video(tmp_path / "clip.mp4", CLIP.frames)
    with client() as test, test.websocket_connect("/ws") as ws:
        session = session_start(ws)["session"]
        ws.send_text(json.dumps({"type": "track_upload", "boxes": [CLIP.boxes[0].tolist()]}))
        assert "no video uploaded" in ws.receive_json()["message"]
        assert test.post(f"/sessions/{session}/upload", content=video.read_bytes()).status_code == 200
        ws.send_text(json.dumps({"type": "track_upload", "boxes": [CLIP.boxes[0].tolist()]}))
        messages = [ws.receive_json()]
        while messages[-1]["type"] == "progress":
            messages.append(ws.receive_json())
        assert messages[-1] == {"type": "upload_done", "frames": len(CLIP.frames), "fps": messages[-1]["fps"],
                                "stopped": None}
        assert messages[-2] == {"type": "progress", "done": len(CLIP.frames), "total": len(CLIP.frames)}
        rows = test.get(f"/sessions/{session}/upload.boxes.txt")
        assert rows.headers["content-disposition"].startswith("attachment")
        lines = rows.text.splitlines()
        assert lines[0] == f"# {BOXES_HEADER}" and len(lines) == 1 + len(CLIP.frames)
        table = np.loadtxt(lines[1:], delimiter=",")
        assert (table[:, 0] == np.arange(len(CLIP.frames))).all()
        assert np.mean([iou(r[2:6], b) for r, b in zip(table[1:], CLIP.boxes[1:])]) >= 0.5
        annotated = tmp_path / "annotated.mp4"
        annotated.write_bytes(test.get(f"/sessions/{session}/upload.mp4").content)
        assert count_frames(annotated) == len(CLIP.frames)
        assert test.get(f"/sessions/{session}/frames/{len(CLIP.frames) - 1}.jpg").status_code == 200
        for name in ("upload.video", "..%2Fupload.video", "frames"):  # only the session's named results
            assert test.get(f"/sessions/{session}/{name}").status_code == 404
        folder = test.sessions.open[session].folder
        assert folder.stat().st_mode & 0o777 == 0o700
    wait_until(lambda: not folder.exists(), "the session's files to go with it")
    assert test.get(f"/sessions/{session}/upload.boxes.txt").status_code == 404


# --- the guards


def test_the_token_is_needed_everywhere_but_the_static_files():
    with client(token="s3cret") as test:
        assert test.get("/").status_code == 403 and "needs its token" in test.get("/").text
        assert test.get("/?token=wrong").status_code == 403
        assert test.get("/?token=s3cret").status_code == 200
        assert test.get("/", headers={"Authorization": "token s3cret"}).status_code == 200
        assert test.get("/static/serve.js").status_code == 200
        with pytest.raises(WebSocketDisconnect) as refused:
            with test.websocket_connect("/ws"):
                pass
        assert refused.value.code == 1008
        with test.websocket_connect("/ws?token=s3cret") as ws:
            session_start(ws)


def test_a_page_of_another_site_cannot_open_a_session():
    with client() as test:
        with pytest.raises(WebSocketDisconnect):
            with test.websocket_connect("/ws", headers={"Origin": "http://evil.example"}):
                pass
        with test.websocket_connect("/ws", headers={"Origin": f"http://{TEST_HOST}"}) as ws:
            session_start(ws)


def test_which_hosts_need_a_token_and_the_urls_printed():
    assert is_loopback("127.0.0.1") and is_loopback("127.0.0.2") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("myhost")
    assert page_urls("127.0.0.1", 8000, None) == ["http://127.0.0.1:8000/"]
    assert page_urls("::1", 8000, None) == ["http://[::1]:8000/"]
    urls = page_urls("0.0.0.0", 8123, "abc")
    assert urls[-1] == "http://127.0.0.1:8123/?token=abc" and len(urls) == 2


def test_the_command_says_in_one_line_why_it_cannot_serve(capsys):
    from siamtrack.cli import main
    base = ["serve", "--config", "siamfc_lite0_fast", "--device", "cpu", "--threads", "2"]
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert main([*base, "--port", str(port)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"siamtrack: error: cannot listen on 127.0.0.1:{port} (Address already in use); is another server there? "
        "Choose another --port"]
    assert main([*base, "--port", "0", "--set", "track.no_such_key=1"]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("siamtrack: error: ") and "no_such_key" in err and len(err.splitlines()) == 1
    assert "serve: open" not in out


def test_the_page_ships_inside_the_package_and_needs_nothing_from_outside():
    static = Path(__file__).resolve().parents[1] / "siamtrack" / "serve" / "static"
    page = "".join(p.read_text() for p in static.iterdir())
    assert {p.name for p in static.iterdir()} == {"index.html", "serve.css", "serve.js"}
    assert "http://" not in page and "https://" not in page and "//cdn" not in page
