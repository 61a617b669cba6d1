"""`siamtrack serve` in a real browser: Debian's Chromium, driven by selenium through chromedriver.

The browser's camera is Chromium's fake one playing a .y4m that ffmpeg made from otb_mini's Car1, so
the page tracks real frames; the box is dragged with WebDriver's mouse actions. Each test skips, saying
why, without Chromium, chromedriver, selenium, ffmpeg or the data (.ci/run installs the programs).
All traffic stays on 127.0.0.1; every server a test starts stops with it.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import OTB_MINI, count_frames, require, write_video
from test_live import free_port, needs, serving

from siamtrack.outputs import BOXES_HEADER

ROOT = Path(__file__).resolve().parents[1]
# README's picture of the page, taken by the camera test: into docs/ only when asked (tests write only to
# temporary folders), as `SIAMTRACK_DOCS_IMAGES=1 pytest tests/test_serve_browser.py -k camera` does
DOCS_SCREENSHOT = ROOT / "docs" / "serve_page.png"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FAST = "siamfc_lite0_fast"
SEQUENCE, LOOP_FRAMES, CAMERA_FPS = "Car1", 40, 15  # frames 1..40 and back: a loop with no jump in it
STREAM_FPS = 25  # MPEG-1 knows only the broadcast rates
THUMBNAIL = (32, 24)  # frames are matched to the ground truth's by content at this size
TRACK_FOR_S, ENOUGH_ANSWERS = 12.0, 60  # the camera test tracks until either
WAIT_S = 60.0  # the longest any step may take on a busy machine before the test fails


def browser_or_skip():
    """selenium's webdriver, when Chromium and chromedriver are there too."""
    for program in (CHROMIUM, CHROMEDRIVER):
        if not Path(program).is_file():
            pytest.skip(f"{program} is not installed (.ci/run installs chromium and chromium-driver from Debian)")
    return pytest.importorskip("selenium.webdriver", reason="selenium is in the dev extra")


def chromium(webdriver, downloads: Path, camera: Path | None = None, *extra: str):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in extra:
        options.add_argument(argument)
    for argument in ("--headless=new", "--disable-gpu", "--window-size=1000,1000", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update"):
        options.add_argument(argument)
    if os.geteuid() == 0:  # Chromium's sandbox refuses to run as root (CI runs as root)
        options.add_argument("--no-sandbox")
    if camera is not None:
        options.add_argument("--use-fake-ui-for-media-stream")
        options.add_argument("--use-fake-device-for-media-stream")
        options.add_argument(f"--use-file-for-fake-video-capture={camera}")
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console: CSP violations show there
    driver = start_chromium(webdriver, options)
    driver.set_page_load_timeout(WAIT_S)
    return driver


def start_chromium(webdriver, options):
    """Chromium through chromedriver, their temporary files (a profile, the singleton socket's folder) in a
    folder of their own, removed with the driver: in /tmp they would outlive every test run."""
    scratch = tempfile.mkdtemp(prefix="siamtrack-chromium-")
    try:
        driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(
            CHROMEDRIVER, env={**os.environ, "TMPDIR": scratch}))
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    weakref.finalize(driver, shutil.rmtree, scratch, True)
    return driver


def assert_the_policy_held(driver) -> None:
    """The page ran under its Content-Security-Policy without anything refused (Chromium says each refusal
    in the console)."""
    refused = [e["message"] for e in driver.get_log("browser") if "Content Security Policy" in e["message"]
               or "Refused to" in e["message"]]
    assert not refused, refused


def wait_for(condition, what: str, timeout: float = WAIT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


class RecordingTracker:
    """A session's tracker that keeps a thumbnail of every frame it tracked: the page's answers are matched
    to the ground truth through them (the fake camera loops, at its own pace, so frame numbers say nothing)."""

    def __init__(self, tracker):
        self.tracker, self.frames = tracker, []

    def init(self, image, boxes, ids=None):
        self.tracker.init(image, boxes, ids)
        self.frames.append(thumbnail(image))

    def update(self, image):
        boxes = self.tracker.update(image)
        self.frames.append(thumbnail(image))
        return boxes

    def __getattr__(self, name):
        return getattr(self.tracker, name)


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    return cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), THUMBNAIL, interpolation=cv2.INTER_AREA).astype(np.float32)


class ServerThread:
    """The app on uvicorn in a thread of this process, on 127.0.0.1, stopped by stop()."""

    def __init__(self, app):
        import uvicorn
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off",
                                                    timeout_graceful_shutdown=2))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.listener]}, daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, "the server to start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def recorded_server(request):
    """The app with trackers that record their frames; `request.param`: allow server sources."""
    pytest.importorskip("uvicorn", reason="uvicorn is in the serve extra")
    from siamtrack import SiamFCTracker, TrackerSpec
    from siamtrack.serve.app import build_app
    from siamtrack.serve.settings import ServeSettings
    spec = TrackerSpec(FAST, device="cpu")
    trackers = []

    def new_tracker(model):
        trackers.append(RecordingTracker(SiamFCTracker(model)))
        return trackers[-1]

    settings = ServeSettings(spec, allow_server_sources=getattr(request, "param", False))
    server = ServerThread(build_app(settings, new_tracker=new_tracker))
    server.trackers = trackers
    yield server
    server.stop()


@pytest.fixture(scope="module")
def car_loop(tmp_path_factory):
    """Car1's first frames there and back (a loop without a jump) as numbered JPEGs, their ground truth and
    its frames' thumbnails."""
    sequence = require(OTB_MINI) / SEQUENCE
    order = [*range(LOOP_FRAMES), *range(LOOP_FRAMES - 2, 0, -1)]
    folder = tmp_path_factory.mktemp("car_loop")
    for position, index in enumerate(order):
        (folder / f"{position:04d}.jpg").symlink_to(sequence / "img" / f"{index + 1:04d}.jpg")
    truth = np.loadtxt(sequence / "groundtruth_rect.txt", delimiter=",")[:LOOP_FRAMES]
    truth[:, :2] -= 1  # OTB's boxes are 1-based
    frames = [cv2.cvtColor(cv2.imread(str(sequence / "img" / f"{i + 1:04d}.jpg")), cv2.COLOR_BGR2RGB)
              for i in range(LOOP_FRAMES)]
    return folder / "%04d.jpg", truth, np.stack([thumbnail(f) for f in frames])


@pytest.fixture(scope="module")
def camera_file(car_loop):
    """The loop as a .y4m for Chromium's fake camera."""
    needs("ffmpeg")
    pattern = car_loop[0]
    video = pattern.parent / "camera.y4m"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-framerate", str(CAMERA_FPS), "-i", str(pattern),
                    "-pix_fmt", "yuv420p", str(video)], check=True, timeout=WAIT_S)
    return video


@pytest.fixture
def stream(car_loop):
    """The loop served by ffmpeg as an MPEG-TS stream on 127.0.0.1, over and over for at most 2 minutes."""
    needs("ffmpeg")
    port = free_port()
    ffmpeg = subprocess.Popen(["ffmpeg", "-loglevel", "error", "-re", "-stream_loop", "-1", "-framerate",
                               str(STREAM_FPS), "-i", str(car_loop[0]), "-t", "120", "-c:v", "mpeg1video", "-q:v", "2",
                               "-f", "mpegts", f"tcp://127.0.0.1:{port}?listen=1"], stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: serving(port), "ffmpeg to listen")  # read from /proc: a probe would take its one client
        yield f"tcp://127.0.0.1:{port}"
    finally:
        ffmpeg.kill()
        ffmpeg.wait()


def matched_frames(thumbnails, truth_thumbnails) -> np.ndarray:
    """For each thumbnail, the ground-truth frame it shows (nearest by mean absolute difference)."""
    distances = np.abs(np.asarray(thumbnails)[:, None] - truth_thumbnails[None]).mean(axis=(2, 3))
    return distances.argmin(axis=1)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    low, high = np.maximum(a[:, :2], b[:, :2]), np.minimum(a[:, :2] + a[:, 2:], b[:, :2] + b[:, 2:])
    inter = np.prod(np.clip(high - low, 0, None), axis=1)
    return inter / (np.prod(a[:, 2:], axis=1) + np.prod(b[:, 2:], axis=1) - inter)


def drag_box(driver, canvas, box) -> None:
    """Drag `box` (the canvas's own pixels) with the mouse, from its top-left corner to its bottom-right."""
    from selenium.webdriver.common.action_chains import ActionChains
    left, top, width, height, pixels_wide = driver.execute_script(
        "const c = arguments[0], r = c.getBoundingClientRect(); return [r.left, r.top, r.width, r.height, c.width];",
        canvas)
    scale = width / pixels_wide
    x, y, w, h = np.asarray(box, dtype=float) * scale
    # move_to_element_with_offset counts from the element's centre
    start = (round(x - width / 2), round(y - height / 2))
    ActionChains(driver).move_to_element_with_offset(canvas, *start).click_and_hold() \
        .move_by_offset(round(w / 2), round(h / 2)).move_by_offset(round(w) - round(w / 2), round(h) - round(h / 2)) \
        .release().perform()


def page_state(driver, expression: str):
    return driver.execute_script(f"return {expression};")


def test_camera_page_tracks_the_car_the_mouse_boxed(recorded_server, car_loop, camera_file, tmp_path):
    """Drag Car1's true box on the paused camera frame, start, and the boxes the page receives follow the
    car: mean IoU >= 0.5 against the ground truth of the frames they were tracked on."""
    webdriver = browser_or_skip()
    driver = chromium(webdriver, tmp_path, camera=camera_file)
    try:
        driver.get(recorded_server.url + "/")
        wait_for(lambda: "ready" in driver.find_element("id", "status").text, "the session's tracker")
        driver.find_element("id", "use-camera").click()
        wait_for(lambda: page_state(driver, "window.siamtrack.mode === 'camera' && "
                                            "document.getElementById('camera').currentTime > 0.5"), "the camera")
        answers = draw_and_track(driver, car_loop)
        driver.save_screenshot(str(DOCS_SCREENSHOT if os.environ.get("SIAMTRACK_DOCS_IMAGES") else
                                   tmp_path / "serve_page.png"))
        shown_latency = driver.find_element("id", "latency").text
        assert_the_policy_held(driver)
    finally:
        driver.quit()
    assert_follows_the_car(answers, recorded_server.trackers[0], car_loop)
    assert shown_latency.isdigit(), shown_latency  # the page shows its frame-to-box latency


@pytest.mark.parametrize("recorded_server", [True], indirect=True)
def test_stream_opened_on_the_server_is_tracked_on_the_page(recorded_server, car_loop, stream, tmp_path):
    """With --allow-server-sources: a stream URL typed in the page; the server opens it and sends its frames,
    the car is boxed on a paused one, and the boxes follow it."""
    webdriver = browser_or_skip()
    driver = chromium(webdriver, tmp_path)
    try:
        driver.get(recorded_server.url + "/")
        wait_for(lambda: "ready" in driver.find_element("id", "status").text, "the session's tracker")
        driver.find_element("id", "source-text").send_keys(stream)
        driver.find_element("css selector", "#server-source button").click()
        wait_for(lambda: page_state(driver, "window.siamtrack.mode === 'server' && !!window.siamtrack.serverImage"),
                 "the stream's frames")
        answers = draw_and_track(driver, car_loop)
        held = page_state(driver, "window.siamtrack.heldNumber")
    finally:
        driver.quit()
    assert answers[0]["frame"] == held  # the init applied to the frame the box was drawn on
    assert_follows_the_car(answers, recorded_server.trackers[0], car_loop)


def draw_and_track(driver, car_loop) -> list[dict]:
    """Pause, drag the car's true box in the frame on show (found by content), start, and track for a
    while: the page's answers."""
    _, truth, truth_thumbnails = car_loop
    driver.find_element("id", "pause").click()
    shown = matched_frames([thumbnail(_canvas_rgb(driver))], truth_thumbnails)[0]
    drag_box(driver, driver.find_element("id", "view"), truth[shown])
    drawn = page_state(driver, "window.siamtrack.drawn")
    assert len(drawn) == 1 and np.abs(np.subtract(drawn[0], truth[shown])).max() < 2, (drawn, truth[shown])
    driver.find_element("id", "start").click()
    started = time.monotonic()
    wait_for(lambda: len(_answers(driver)) >= ENOUGH_ANSWERS or time.monotonic() - started > TRACK_FOR_S,
             "the page's answers", timeout=TRACK_FOR_S + WAIT_S)
    answers = _answers(driver)
    answers[0]["shown"] = int(shown)
    return answers


def assert_follows_the_car(answers: list[dict], tracker: RecordingTracker, car_loop) -> None:
    """The page got one answer per frame the tracker saw, in order, the first on the frame the box was drawn
    on; its boxes overlap the truth of the frames they were tracked on by 0.5 on average."""
    _, truth, truth_thumbnails = car_loop
    assert len(answers) >= 10, f"only {len(answers)} answers in {TRACK_FOR_S} s"
    assert len(tracker.frames) >= len(answers)
    boxes = np.array([a["targets"][0]["box"] for a in answers])
    frames = matched_frames(tracker.frames[:len(answers)], truth_thumbnails)
    assert abs(frames[0] - answers[0]["shown"]) <= 1  # the drawn-on frame, or its near twin
    overlap = iou(boxes[1:], truth[frames[1:]])
    assert overlap.mean() >= 0.5, (overlap.round(2), frames)


def _canvas_rgb(driver) -> np.ndarray:
    """The page's canvas as it shows now (the held frame, while nothing is drawn on it), in its own pixels."""
    url = driver.execute_async_script(  # after two animation frames: the canvas shows what the page holds
        "const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(() => "
        "done(document.getElementById('view').toDataURL('image/png'))));")
    bgr = cv2.imdecode(np.frombuffer(_data_url_bytes(url), np.uint8), cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _answers(driver) -> list[dict]:
    """The boxes messages the page received that carry targets (frames tracked)."""
    return [a for a in page_state(driver, "window.siamtrack.results") if a["targets"]]


def _data_url_bytes(url: str) -> bytes:
    import base64
    return base64.b64decode(url.split(",", 1)[1])


def test_upload_page_tracks_the_video_and_downloads_its_rows(recorded_server, tmp_path):
    """Upload a clip, drag its target on the first frame, wait for the progress to finish, download the
    rows (the `run --boxes` format, one per frame) and the annotated mp4."""
    webdriver = browser_or_skip()
    from siamtrack.synthetic import make_clip
    clip = make_clip(num_frames=30)
    video = write_video(tmp_path / "clip.mp4", clip.frames)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = chromium(webdriver, downloads)
    try:
        driver.get(recorded_server.url + "/")
        wait_for(lambda: "ready" in driver.find_element("id", "status").text, "the session's tracker")
        driver.find_element("id", "upload-file").send_keys(str(video))
        wait_for(lambda: page_state(driver, "window.siamtrack.mode === 'upload' && window.siamtrack.paused"),
                 "the uploaded video's first frame")
        drag_box(driver, driver.find_element("id", "view"), clip.boxes[0])
        driver.find_element("id", "start").click()
        link = driver.find_element("id", "download-boxes")
        wait_for(link.is_displayed, "the upload's tracking to finish")
        assert page_state(driver, "document.getElementById('progress').hidden")
        link.click()
        rows_file = wait_for(lambda: next(downloads.glob("*.boxes.txt"), None), "the downloaded rows")
        video_url = driver.find_element("id", "download-video").get_attribute("href")
        annotated = tmp_path / "annotated.mp4"  # fetched while the page is open: its files go with its session
        annotated.write_bytes(urllib.request.urlopen(video_url, timeout=WAIT_S).read())
        assert "tracked up to frame" not in driver.find_element("id", "message").text  # no limit was reached
        assert driver.find_element("id", "hint").text.startswith("Done:")
        assert_the_policy_held(driver)
    finally:
        driver.quit()
    with pytest.raises(urllib.error.HTTPError, match="404"):  # the session closed with its page, files and all
        urllib.request.urlopen(video_url, timeout=WAIT_S)
    lines = rows_file.read_text().splitlines()
    assert lines[0] == f"# {BOXES_HEADER}"
    rows = np.loadtxt(lines[1:], delimiter=",", ndmin=2)
    assert rows.shape == (len(clip.frames), 8) and set(rows[:, 7]) <= {0, 1}  # the lost flag
    assert (rows[:, 0] == np.arange(len(clip.frames))).all() and (rows[:, 1] == 0).all()
    assert np.isnan(rows[0, 6]) and (rows[1:, 6] > 0).all()
    assert iou(rows[1:, 2:6], clip.boxes[1:]).mean() >= 0.5
    assert count_frames(annotated) == len(clip.frames)


def test_another_site_can_neither_frame_the_page_nor_reach_it_by_its_own_name(recorded_server, tmp_path):
    """A page of another origin that frames this one is refused by the browser (frame-ancestors), and a name
    that resolves to 127.0.0.1 (DNS rebinding, here through Chromium's resolver rules) gets a 400."""
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
    webdriver = browser_or_skip()
    (tmp_path / "framing.html").write_text(f'<iframe src="{recorded_server.url}/"></iframe>')
    other = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: SimpleHTTPRequestHandler(*a, directory=str(tmp_path)))
    threading.Thread(target=other.serve_forever, daemon=True).start()
    port = recorded_server.url.rsplit(":", 1)[1]
    driver = chromium(webdriver, tmp_path, None, "--host-resolver-rules=MAP evil.example 127.0.0.1")
    try:
        driver.get(f"http://127.0.0.1:{other.server_address[1]}/framing.html")
        wait_for(lambda: any("frame-ancestors" in e["message"] for e in driver.get_log("browser")),
                 "the browser to refuse the frame")
        driver.get(f"http://evil.example:{port}/")
        assert "does not answer to that host name" in driver.find_element("tag name", "body").text
        assert not recorded_server.trackers  # no session was opened by either
    finally:
        driver.quit()
        other.shutdown()
        other.server_close()


@pytest.fixture
def public_server(tmp_path):
    """`siamtrack serve --host 0.0.0.0` as a user starts it, with a 1 MB upload limit: its printed URLs, the
    output it wrote; reached on 127.0.0.1 only. Stopped with SIGTERM, as a service manager would."""
    pytest.importorskip("uvicorn", reason="uvicorn is in the serve extra")
    command = [sys.executable, "-m", "siamtrack", "serve", "--host", "0.0.0.0", "--port", "0", "--max-upload-mb", "1",
               "--config", FAST, "--device", "cpu", "--threads", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    timer = threading.Timer(10 * WAIT_S, process.kill)  # a hang guard: the server stops even if the test hangs
    timer.start()
    urls = []
    try:
        while len(urls) < 2:
            line = process.stdout.readline()
            assert line, f"the server ended: {process.stderr.read()}"
            urls += [line.split()[-1]] if line.startswith("serve: open ") else []
        yield {"urls": urls, "process": process}
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=WAIT_S)
        finally:
            timer.cancel()
            process.kill()


def test_public_host_needs_the_token_and_refuses_bad_input(public_server, tmp_path):
    """On a non-loopback host the page needs the printed token; an oversized upload, a text file posing as
    a video, a garbage message and a malformed box each get a clear message, and the server serves on."""
    webdriver = browser_or_skip()
    local = next(url for url in public_server["urls"] if url.startswith("http://127.0.0.1:"))
    assert "?token=" in local and len(local.split("?token=")[1]) >= 40
    plain = local.split("?")[0]
    for url in (plain, plain + "?token=wrong"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=WAIT_S)
        assert refused.value.code == 403 and "needs its token" in refused.value.read().decode()
    big = tmp_path / "big.mp4"
    big.write_bytes(np.random.default_rng(0).bytes(3 << 19))  # 1.5 MB
    notes = tmp_path / "notes.mp4"
    notes.write_text("just some notes, not a video\n" * 20)
    driver = chromium(webdriver, tmp_path)
    try:
        driver.get(plain)
        assert "needs its token" in driver.find_element("tag name", "body").text
        driver.get(local)
        wait_for(lambda: "ready" in driver.find_element("id", "status").text, "the session's tracker")
        message = driver.find_element("id", "message")
        for upload, said in ((big, "larger than this server takes (1 MB"), (notes, "a text file, not a video")):
            driver.find_element("id", "upload-file").send_keys(str(upload))
            wait_for(lambda: said in message.text, f"the page to say {said!r}")
        for garbage, said in (("{not json", "not a JSON message"),
                              (json.dumps({"type": "init", "boxes": [[1, 2, 3]]}), "a box must be [x, y, w, h]")):
            driver.execute_script("window.siamtrack.socket.send(arguments[0]);", garbage)
            wait_for(lambda: said in message.text, f"the page to say {said!r}")
        # the same session's tracker still answers, in order, and the server serves a new page
        driver.execute_script("window.siamtrack.socket.send(arguments[0]);", json.dumps({"type": "pause"}))
        wait_for(lambda: "pause and resume hold a server source" in message.text, "the session's answer")
        driver.get(local)
        wait_for(lambda: "ready" in driver.find_element("id", "status").text, "a second session")
    finally:
        driver.quit()
    assert urllib.request.urlopen(local, timeout=WAIT_S).status == 200
    process = public_server["process"]
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=WAIT_S)
    assert process.returncode == 0 and "serve: stopped after 2 sessions" in out, out
