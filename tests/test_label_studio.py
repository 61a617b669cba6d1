"""The Label Studio ML backend without Label Studio: its format (keyframes, spans, percent), the labeling
config it reads, the tracking of a task's regions (against the tracker run alone on the same frames), the
HTTP routes through Starlette's test client, and the command's own errors. tests/test_label_studio_real.py
drives it from a real Label Studio."""
import base64
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from siamtrack import SiamFCTracker, TrackerSpec
from siamtrack.integrations.errors import AnnotationError, LabelStudioUnreachable
from siamtrack.integrations.label_studio import (Backend, BackendSettings, Trackers, check_frame_rate,
                                                 regions_to_track)
from siamtrack.integrations.label_studio_api import LabelStudio, _is_jwt
from siamtrack.integrations.labeling_config import video_control
from siamtrack.integrations.video_tracking import Cancelled
from siamtrack.integrations.videorectangle import SequenceWriter, drawn_region, to_percent, to_pixels
from siamtrack.sources import open_source

FAST = "siamfc_lite0_fast"
SPEC = TrackerSpec(FAST, device="cpu", backend="eager")  # the quickest to build
CONFIG = ('<View><Video name="video" value="$video" frameRate="30"/><VideoRectangle name="box" toName="video"/>'
          '<Labels name="labels" toName="video"><Label value="Thing"/></Labels></View>')
WIDTH, HEIGHT = 640, 360  # the synthetic clip's


# --- Label Studio's reading of a sequence (web/libs/editor/src/regions/VideoRegion.js, VideoRectangleRegion.js)

def visible(sequence: list[dict], frame: int) -> bool:
    """Whether Label Studio shows the region on `frame`: its last keyframe at or before it is enabled, or is
    that frame itself (a span's last keyframe still shows its box)."""
    before = [keyframe for keyframe in sequence if keyframe["frame"] <= frame]
    return bool(before) and (before[-1]["enabled"] or before[-1]["frame"] == frame)


def shown_box(sequence: list[dict], frame: int, width: int, height: int) -> np.ndarray:
    """The box Label Studio draws on `frame`, in pixels: a keyframe's, or interpolated between two."""
    before = [k for k in sequence if k["frame"] <= frame]
    after = [k for k in sequence if k["frame"] > frame]
    if before[-1]["frame"] == frame or not after:
        return to_pixels(before[-1], width, height)
    a, b = before[-1], after[0]
    share = (frame - a["frame"]) / (b["frame"] - a["frame"])
    return (1 - share) * to_pixels(a, width, height) + share * to_pixels(b, width, height)


def region(frame: int, box, region_id: str = "r0", **keyframe) -> dict:
    """A region as Label Studio sends it, drawn on 1-based `frame` at pixel `box` of the synthetic clip."""
    start = {"frame": frame, "enabled": True, "rotation": 0, **to_percent(np.asarray(box), WIDTH, HEIGHT), **keyframe}
    return {"id": region_id, "from_name": "box", "to_name": "video", "type": "videorectangle",
            "value": {"sequence": [start], "labels": ["Thing"]}}


# --- the format

def test_percent_and_pixels_round_trip():
    box = np.array([12.5, 40.25, 100.0, 61.5])
    keyframe = to_percent(box, WIDTH, HEIGHT)
    assert keyframe["x"] == pytest.approx(100 * 12.5 / WIDTH) and keyframe["height"] == pytest.approx(100 * 61.5 / HEIGHT)
    np.testing.assert_allclose(to_pixels(keyframe, WIDTH, HEIGHT), box)


def write(lost_flags: list[bool], stride: int = 3, start: int = 4, video_ended: bool = True):
    """The keyframes a SequenceWriter writes for a target drawn on frame `start`, box (10, 10, 20, 20) moved one
    pixel right a frame, judged lost where the flags say; and the boxes it was given, by frame."""
    writer = SequenceWriter(drawn_region(region(start, [10, 10, 20, 20])), stride, WIDTH, HEIGHT, 30.0)
    boxes = {start: np.array([10.0, 10, 20, 20])}
    for offset, lost in enumerate(lost_flags, 1):
        boxes[start + offset] = np.array([10.0 + offset, 10, 20, 20])
        writer.add(start + offset, boxes[start + offset], lost)
    return writer.finish(video_ended), writer.score, boxes


def test_keyframes_fall_every_stride_frames_and_on_the_last():
    keyframes, score, boxes = write([False] * 7, stride=3)
    assert [k["frame"] for k in keyframes] == [4, 7, 10, 11]
    assert all(k["enabled"] for k in keyframes) and score == 1.0
    assert keyframes[1]["time"] == pytest.approx(7 / 30)  # frame / frameRate, as Label Studio writes it
    for frame, box in boxes.items():  # a straight path: Label Studio's interpolation gives every box back
        np.testing.assert_allclose(shown_box(keyframes, frame, WIDTH, HEIGHT), box, atol=1e-9)


def test_a_lost_stretch_ends_the_span_on_the_frame_before_it_and_a_found_frame_starts_another():
    flags = [False, False, True, True, True, False, False]  # frames 5..11: lost on 7, 8, 9
    keyframes, score, boxes = write(flags, stride=3)
    assert [(k["frame"], k["enabled"]) for k in keyframes] == [(4, True), (6, False), (10, True), (11, True)]
    assert [visible(keyframes, f) for f in range(4, 12)] == [True, True, True, False, False, False, True, True]
    np.testing.assert_allclose(to_pixels(keyframes[1], WIDTH, HEIGHT), boxes[6])  # the last box before the loss
    assert score == pytest.approx(4 / 7)


def test_a_target_lost_at_once_ends_on_its_drawn_box_and_tracking_stopped_early_ends_the_span():
    keyframes, _, _ = write([True, True])
    assert [(k["frame"], k["enabled"]) for k in keyframes] == [(4, False)]
    keyframes, _, _ = write([False] * 4, stride=10, video_ended=False)  # --max-frames stopped it
    assert [(k["frame"], k["enabled"]) for k in keyframes] == [(4, True), (8, False)]


def test_a_region_starts_from_its_last_keyframe_and_a_closed_or_rotated_one_is_not_tracked():
    drawn = region(9, [10, 10, 20, 20])
    drawn["value"]["sequence"].insert(0, {**drawn["value"]["sequence"][0], "frame": 2})
    assert drawn_region(drawn).frame == 9 and len(drawn_region(drawn).keyframes) == 2
    assert drawn_region(region(9, [10, 10, 20, 20], enabled=False)) is None
    with pytest.raises(AnnotationError, match="rotated"):
        drawn_region(region(9, [10, 10, 20, 20], rotation=30))
    with pytest.raises(AnnotationError, match="no keyframes"):
        drawn_region({"id": "x", "value": {}})


# --- the labeling config

def test_the_labeling_config_gives_the_control_the_video_and_its_frame_rate():
    control = video_control(CONFIG.replace('frameRate="30"', 'framerate="$fps"'))
    assert (control.from_name, control.to_name) == ("box", "video")
    assert control.video_url({"video": "/data/upload/1/a.mp4"}) == "/data/upload/1/a.mp4"
    assert control.fps({"fps": 25}) == 25.0
    assert video_control(CONFIG.replace(' frameRate="30"', "")).fps({}) == 24.0  # Label Studio's default


@pytest.mark.parametrize("config, message", [
    ("<View><Image name='i' value='$image'/></View>", "has none"),
    ("<View", "not valid XML"),
    (CONFIG.replace("</View>", '<VideoRectangle name="b2" toName="video"/></View>'), "has 2"),
])
def test_a_labeling_config_without_one_video_rectangle_is_refused_in_one_line(config, message):
    with pytest.raises(AnnotationError, match=message) as caught:
        video_control(config)
    assert "\n" not in str(caught.value)


def test_a_video_of_another_frame_rate_than_the_config_is_refused():
    check_frame_rate(29.97, 29.97, 10_000)
    check_frame_rate(30.0, 29.97, 10)  # drifts 0.01 frames over 10
    with pytest.raises(AnnotationError, match='frameRate="30"'):
        check_frame_rate(30.0, 24.0, 40)


def test_the_latest_annotation_or_else_the_interactive_context_gives_the_regions():
    control = video_control(CONFIG)
    old, new = region(1, [10, 10, 20, 20], "old"), region(1, [10, 10, 20, 20], "new")
    other = {**new, "from_name": "another_control", "id": "other"}
    task = {"annotations": [{"id": 1, "updated_at": "2026-01-01T10:00:00Z", "result": [old]},
                            {"id": 2, "updated_at": "2026-01-02T10:00:00Z", "result": [new, other]},
                            {"id": 3, "updated_at": "2026-01-03T10:00:00Z", "result": [old], "was_cancelled": True}]}
    assert [r["id"] for r in regions_to_track(task, control, {})] == ["new"]
    assert [r["id"] for r in regions_to_track(task, control, {"result": [old]})] == ["old"]
    assert regions_to_track({"annotations": []}, control, {}) == []


def test_a_personal_access_token_is_told_from_a_legacy_token():
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()).decode().rstrip("=")
    assert _is_jwt(f"{header}.eyJ0b2tlbl90eXBlIjoicmVmcmVzaCJ9.c2ln")
    assert not _is_jwt("1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b")  # a legacy token: 40 hex digits
    assert not _is_jwt("not.a.jwt")


def test_only_videos_on_label_studio_itself_are_read():
    label_studio = LabelStudio("http://127.0.0.1:8080", "key", 1 << 20)
    assert label_studio.resolve("/data/upload/1/a.mp4") == "http://127.0.0.1:8080/data/upload/1/a.mp4"
    for elsewhere in ("http://169.254.169.254/latest/meta-data", "file:///etc/passwd", "//example.com/a.mp4"):
        with pytest.raises(AnnotationError, match="not on Label Studio"):
            label_studio.resolve(elsewhere)
    with pytest.raises(AnnotationError, match="LABEL_STUDIO_URL"):
        LabelStudio("localhost:8080", "key", 1)


# --- tracking a task

class LocalLabelStudio(LabelStudio):
    """Label Studio's videos from a local file instead of its API."""

    def __init__(self, video, max_bytes: int = 1 << 30):
        super().__init__("http://127.0.0.1:8080", "key", max_bytes)
        self.video = video

    def download(self, value, folder):
        return shutil.copy(self.video, folder / "video")


@pytest.fixture(scope="module")
def tracker():
    return SPEC.build(quiet=True)


def backend(tracker, video, **settings) -> Backend:
    return Backend(BackendSettings(LocalLabelStudio(video), **settings), Trackers([tracker]), "test-version")


def decoded(video) -> list[np.ndarray]:
    source = open_source(str(video))
    try:
        return list(source)
    finally:
        source.close()


def alone(frames: list[np.ndarray], start: int, box) -> dict[int, np.ndarray]:
    """A target tracked by itself from 0-based frame `start`: its box by 1-based frame, after the start."""
    tracker = SiamFCTracker(FAST, device="cpu", backend="eager", quiet=True)
    tracker.init(frames[start], np.asarray(box, dtype=np.float64))
    return {index + 1: tracker.update(frame) for index, frame in enumerate(frames) if index > start}


def predict(backend: Backend, regions: list[dict], context: dict | None = None) -> dict:
    task = {"id": 1, "data": {"video": "/data/upload/1/clip.mp4"}, "annotations": [{"id": 1, "result": regions}]}
    body = {"tasks": [task], "label_config": CONFIG, "params": {"context": context}}
    return backend.predict(body)


def test_two_regions_drawn_on_different_frames_are_tracked_together_as_each_alone(tracker, video, clip):
    frames = decoded(video)
    first, second = clip.boxes[0], clip.boxes[6] + [60, 40, 0, 0]  # the object, and a patch of the scene
    answer = predict(backend(tracker, video, keyframe_stride=4), [region(1, first, "a"), region(7, second, "b")])
    assert answer["model_version"] == "test-version"
    prediction = answer["results"][0]
    assert [r["id"] for r in prediction["result"]] == ["a", "b"]
    for result, (start, box) in zip(prediction["result"], [(0, first), (6, second)]):
        sequence = result["value"]["sequence"]
        assert sequence[0]["frame"] == start + 1 and result["value"]["labels"] == ["Thing"]
        assert result["value"]["framesCount"] == len(frames)
        expected = alone(frames, start, box)
        for keyframe in sequence[1:]:
            np.testing.assert_allclose(to_pixels(keyframe, WIDTH, HEIGHT), expected[keyframe["frame"]], atol=1e-3)
        assert sequence[-1]["frame"] == len(frames)
    assert prediction["score"] == min(r["score"] for r in prediction["result"])


def test_an_interactive_box_is_tracked_from_its_frame_and_max_frames_stops_it(tracker, video, clip):
    frames = decoded(video)
    drawn = region(11, clip.boxes[10], "drawn")
    answer = predict(backend(tracker, video, keyframe_stride=5, max_frames=12), [region(1, clip.boxes[0])],
                     context={"result": [drawn]})
    (result,) = answer["results"][0]["result"]
    sequence = result["value"]["sequence"]
    assert result["id"] == "drawn" and [k["frame"] for k in sequence] == [11, 16, 21, 23]
    assert not sequence[-1]["enabled"]  # tracking stopped before the video's end: so does the box
    expected = alone(frames, 10, clip.boxes[10])
    np.testing.assert_allclose(to_pixels(sequence[2], WIDTH, HEIGHT), expected[21], atol=1e-3)


def test_a_task_with_nothing_drawn_gets_no_prediction_and_bad_tasks_fail_in_one_line(tracker, video, clip):
    assert predict(backend(tracker, video), [])["results"] == [[]]
    with pytest.raises(AnnotationError, match="starts on frame 999, but the video has 40 frames"):
        predict(backend(tracker, video), [region(999, clip.boxes[0])])
    with pytest.raises(AnnotationError, match="frameRate"):
        backend(tracker, video).predict({"tasks": [{"id": 1, "data": {"video": "v"}, "annotations": [
            {"result": [region(1, clip.boxes[0])]}]}], "label_config": CONFIG.replace("30", "24")})


def test_a_request_label_studio_gave_up_on_stops_tracking(tracker, video, clip):
    frames_read = []
    with pytest.raises(Cancelled):
        backend(tracker, video).predict(
            {"tasks": [{"id": 1, "data": {"video": "v"}, "annotations": [{"result": [region(1, clip.boxes[0])]}]}],
             "label_config": CONFIG}, cancelled=lambda: frames_read.append(1) or len(frames_read) > 3)
    assert len(frames_read) == 4  # checked before each frame: stopped at the fourth


# --- reading videos over HTTP

class FakeLabelStudio(BaseHTTPRequestHandler):
    """Serves VIDEO_BYTES to the legacy token `good`, as Label Studio serves an upload."""

    def do_GET(self):
        if self.headers.get("Authorization") != "Token good":
            self.send_error(401)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(VIDEO_BYTES)))
        self.end_headers()
        self.wfile.write(VIDEO_BYTES)

    def log_message(self, *args):
        pass


VIDEO_BYTES = bytes(range(256)) * 64


@pytest.fixture
def fake_label_studio():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeLabelStudio)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_video_is_read_with_the_key_within_its_size_limit_or_refused_in_one_line(fake_label_studio, tmp_path):
    video = LabelStudio(fake_label_studio, "good", len(VIDEO_BYTES)).download("/data/upload/1/a.mp4", tmp_path)
    assert video.read_bytes() == VIDEO_BYTES
    with pytest.raises(LabelStudioUnreachable, match="refused LABEL_STUDIO_API_KEY \\(401\\)"):
        LabelStudio(fake_label_studio, "bad", 1 << 20).download("/data/upload/1/a.mp4", tmp_path)
    with pytest.raises(AnnotationError, match="larger than --max-video-mb"):
        LabelStudio(fake_label_studio, "good", len(VIDEO_BYTES) - 1).download("/data/upload/1/a.mp4", tmp_path)
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{closed.getsockname()[1]}"
    with pytest.raises(LabelStudioUnreachable, match="cannot reach Label Studio"):
        LabelStudio(nobody, "good", 1 << 20).download("/data/upload/1/a.mp4", tmp_path)


# --- over HTTP

@pytest.fixture
def http(tracker, video):
    """Starlette's test client on the backend's app (this process, no socket), and a password-protected one."""
    testclient = pytest.importorskip("starlette.testclient", reason="starlette is in the label-studio extra")
    if not any(importlib.util.find_spec(name) for name in ("httpx2", "httpx")):
        pytest.skip("Starlette's test client needs httpx2 (the dev extra)")
    from siamtrack.integrations.label_studio_app import build_app
    served = backend(tracker, video)
    address = "http://127.0.0.1:9090"  # the Host Label Studio sends; the test client's own, testserver, is refused
    return (testclient.TestClient(build_app(served), base_url=address),
            testclient.TestClient(build_app(served, password="secret"), base_url=address))


def test_the_routes_answer_as_label_studio_expects(http, clip):
    client, _ = http
    assert client.get("/health").json() == {"status": "UP", "model_class": "SiamFCTracker",
                                             "model_version": "test-version"}
    assert client.post("/setup", json={"project": "1.1700000000", "schema": CONFIG}).json() == {
        "model_version": "test-version"}
    task = {"id": 1, "data": {"video": "/data/upload/1/clip.mp4"},
            "annotations": [{"id": 1, "result": [region(1, clip.boxes[0])]}]}
    answer = client.post("/predict", json={"tasks": [task], "label_config": CONFIG, "params": {"context": None}})
    assert answer.status_code == 200 and answer.json()["results"][0]["result"][0]["type"] == "videorectangle"
    assert client.post("/webhook", json={"action": "ANNOTATION_CREATED"}).status_code == 200


@pytest.mark.parametrize("path, body, status, message", [
    ("/setup", {"schema": "<View><Image name='i' value='$i'/></View>"}, 400, "one VideoRectangle on a Video"),
    ("/predict", "not json", 400, "not JSON"),
    ("/predict", {"label_config": CONFIG, "tasks": "none"}, 400, "no list of tasks"),
])
def test_a_bad_request_is_a_one_line_json_error(http, path, body, status, message):
    client, _ = http
    answer = client.post(path, content=body) if isinstance(body, str) else client.post(path, json=body)
    assert answer.status_code == status and message in answer.json()["error"]
    assert "\n" not in answer.json()["error"]


def test_a_request_under_another_host_name_is_refused(http):
    """A web page that points its own name at the backend's address (DNS rebinding) sends that name."""
    client, _ = http
    assert client.get("/health", headers={"Host": "attacker.example:9090"}).status_code == 400
    assert client.get("/health", headers={"Host": "localhost:9090"}).status_code == 200


def test_with_a_password_every_request_needs_it(http):
    _, guarded = http
    assert guarded.get("/health").status_code == 401
    assert guarded.get("/health", auth=("siamtrack", "wrong")).status_code == 401
    assert guarded.get("/health", auth=("siamtrack", "secret")).json()["status"] == "UP"


def test_the_command_without_label_studio_in_its_environment_is_a_one_line_error(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("LABEL_STUDIO_")}
    done = subprocess.run([sys.executable, "-m", "siamtrack", "label-studio", "--port", "0"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "set LABEL_STUDIO_URL" in done.stderr and "LABEL_STUDIO_API_KEY" in done.stderr
