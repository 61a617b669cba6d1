"""`siamtrack label-studio` driven by a real Label Studio, through Label Studio's own REST API: a video project
with a VideoRectangle, a short real clip uploaded (otb_mini's Car1, then another scene where the car is gone),
the backend connected, a person's boxes saved as annotations, and Label Studio asked for predictions. The
prediction Label Studio stored must give, converted back to pixels, the boxes `siamtrack run` gives on the
same video, for one target and for two, and no box where the target is gone.

One Label Studio and one backend for the module (Label Studio takes a minute or two to start). Skips, saying
why, without Label Studio in its own venv (.ci/run installs it), ffmpeg or the data.
"""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import OTB_MINI, require
from label_studio_harness import INSTALL, LABEL_STUDIO, PASSWORD, ROOT, USER, Backend, LabelStudio, encode_video
from test_label_studio import visible
from test_serve_browser import CHROMIUM, browser_or_skip, start_chromium

from siamtrack import SiamFCTracker
from siamtrack.integrations.videorectangle import to_percent, to_pixels
from siamtrack.sources import open_source

pytestmark = pytest.mark.slow

FAST = "siamfc_lite0_fast"
FPS, STRIDE = 30.0, 5
SEQUENCE, CAR_FRAMES = "Car1", 40  # the car, in frames 1-40
ELSEWHERE, GONE_FRAMES = "David_300_770", 15  # then 15 frames of an office, the same size: the car is gone
LANDMARK = np.array([150.0, 20.0, 60.0, 40.0])  # a second target in Car1's first frame: a patch of the scene
BOX_DECIMALS = 0.01  # `siamtrack run` writes boxes to 2 decimals


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """The clip as an H.264 mp4, and the car's box in its first frame (Car1's ground truth, 0-based)."""
    data = require(OTB_MINI)
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (.ci/run installs it)")
    folder = tmp_path_factory.mktemp("clip")
    frames = sorted((data / SEQUENCE / "img").glob("*.jpg"))[:CAR_FRAMES] + \
        sorted((data / ELSEWHERE / "img").glob("*.jpg"))[:GONE_FRAMES]
    for index, frame in enumerate(frames, 1):
        shutil.copy(frame, folder / f"{index:04d}.jpg")
    return encode_video(folder / "%04d.jpg", folder / "car.mp4", FPS), truth(1)


def truth(frame: int) -> np.ndarray:
    """Car1's ground-truth box on 1-based `frame`, 0-based pixels."""
    rows = np.loadtxt(OTB_MINI / SEQUENCE / "groundtruth_rect.txt", delimiter=",", max_rows=frame, ndmin=2)
    return rows[frame - 1] - [1, 1, 0, 0]


@pytest.fixture(scope="module")
def served(tmp_path_factory, clip):
    """Label Studio and the backend, a project connected to it: (Label Studio, backend, project id, ML backend id)."""
    if not LABEL_STUDIO.is_file():
        pytest.skip(f"Label Studio is not installed at {LABEL_STUDIO}: {INSTALL}")
    folder = tmp_path_factory.mktemp("label_studio")
    with LabelStudio(folder) as label_studio, \
            Backend(label_studio, folder, "--config", FAST, "--keyframe-stride", str(STRIDE)) as backend:
        project, ml_backend = label_studio.video_project(FPS, backend.url)
        yield label_studio, backend, project, ml_backend


@pytest.fixture(scope="module")
def frames(clip):
    source = open_source(str(clip[0]))
    try:
        return list(source)
    finally:
        source.close()


def size(frames) -> tuple[int, int]:
    return frames[0].shape[1], frames[0].shape[0]


def drawn(frame: int, box, width: int, height: int, region_id: str) -> dict:
    """A region as the labeling page saves it: a box drawn on 1-based `frame`."""
    keyframe = {"frame": frame, "enabled": True, "rotation": 0, **to_percent(box, width, height), "time": frame / FPS}
    return {"id": region_id, "from_name": "box", "to_name": "video", "type": "videorectangle", "origin": "manual",
            "value": {"sequence": [keyframe], "labels": ["Target"]}}


def run_boxes(video, boxes, folder) -> np.ndarray:
    """`siamtrack run` on the video from these first-frame boxes: frames x targets x 4."""
    out = folder / "run.boxes.txt"
    subprocess.run([sys.executable, "-m", "siamtrack", "run", str(video), *[f"--bbox={','.join(repr(float(v)) for v in box)}"
                    for box in boxes], "--config", FAST, "--boxes", str(out), "--quiet"], check=True,
                   capture_output=True)
    rows = np.loadtxt(out, delimiter=",", ndmin=2)
    return rows[:, 2:6].reshape(-1, len(boxes), 4)


def start_box(result: dict, width: int, height: int) -> np.ndarray:
    """The box a region's tracking started from, in pixels, to the last bit: the percent Label Studio stores
    turns back into pixels a float's rounding away from the box drawn, and where the scale filter's choice is
    a near-tie that rounding moves the box by a pixel a few frames on, in the backend and in `run` alike."""
    return to_pixels(result["value"]["sequence"][0], width, height)


def lost_flags(frames, start: int, box) -> dict[int, bool]:
    """Whether the tracker judges the target lost, by 1-based frame, tracked alone from 0-based frame `start`."""
    tracker = SiamFCTracker(FAST, device="cpu", quiet=True)
    tracker.init(frames[start], np.asarray(box)[None])
    lost = {}
    for index, frame in enumerate(frames[start + 1:], start + 2):
        tracker.update(frame)
        lost[index] = bool(tracker.lost[0])
    return lost


def predicted(label_studio, project: int, task: int) -> tuple[dict, float]:
    """Label Studio asked for the task's predictions: the one it stored, and the seconds it waited."""
    waited = label_studio.retrieve_predictions(project, task)
    (prediction,) = label_studio.predictions(task)
    return prediction, waited


def test_one_box_through_label_studio_equals_siamtrack_run_and_is_off_where_the_car_is_gone(
        served, clip, frames, tmp_path):
    label_studio, _, project, _ = served
    video, car = clip
    width, height = size(frames)
    task = label_studio.upload(project, video)
    label_studio.api("POST", f"/api/tasks/{task}/annotations", {"result": [drawn(1, car, width, height, "car")]})
    prediction, waited = predicted(label_studio, project, task)
    print(f"Label Studio waited {waited:.2f} s for a {len(frames)}-frame task")
    assert FAST in prediction["model_version"] and 0 < prediction["score"] < 1
    (result,) = prediction["result"]
    sequence = result["value"]["sequence"]
    assert result["id"] == "car" and result["value"]["labels"] == ["Target"]
    run = run_boxes(video, [start_box(result, width, height)], tmp_path)
    for keyframe in sequence[1:]:
        np.testing.assert_allclose(to_pixels(keyframe, width, height), run[keyframe["frame"] - 1, 0],
                                   atol=BOX_DECIMALS)
    lost = lost_flags(frames, 0, start_box(result, width, height))
    gone = range(CAR_FRAMES + 1, CAR_FRAMES + GONE_FRAMES + 1)
    assert all(lost[frame] for frame in gone), "the tracker should judge the car lost in the office"
    assert [visible(sequence, frame) for frame in lost] == [not flag for flag in lost.values()]
    assert [k["frame"] for k in sequence if k["enabled"]][:4] == [1, 1 + STRIDE, 1 + 2 * STRIDE, 1 + 3 * STRIDE]
    assert prediction["score"] == pytest.approx(1 - sum(lost.values()) / len(lost))


def car_and_landmark_predicted(label_studio, project, video, car, width, height) -> tuple[int, dict]:
    """A task of the video with the car and the landmark boxed on frame 1, and the backend's prediction."""
    task = label_studio.upload(project, video)
    regions = [drawn(1, car, width, height, "car"), drawn(1, LANDMARK, width, height, "landmark")]
    label_studio.api("POST", f"/api/tasks/{task}/annotations", {"result": regions})
    return task, predicted(label_studio, project, task)[0]


def test_two_boxes_are_tracked_as_one_batch_and_equal_siamtrack_run_with_both(served, clip, frames, tmp_path):
    label_studio, backend, project, _ = served
    video, car = clip
    width, height = size(frames)
    task, prediction = car_and_landmark_predicted(label_studio, project, video, car, width, height)
    assert [r["id"] for r in prediction["result"]] == ["car", "landmark"]
    assert f"task {task}: 2 regions" in backend.log.read_text()  # one pass over the video for both
    run = run_boxes(video, [start_box(result, width, height) for result in prediction["result"]], tmp_path)
    for target, result in enumerate(prediction["result"]):
        keyframes = result["value"]["sequence"][1:]
        assert keyframes
        for keyframe in keyframes:
            np.testing.assert_allclose(to_pixels(keyframe, width, height), run[keyframe["frame"] - 1, target],
                                       atol=BOX_DECIMALS)


def test_a_box_drawn_interactively_on_frame_k_is_tracked_from_frame_k(served, frames):
    label_studio, _, project, ml_backend = served
    width, height = size(frames)
    task = label_studio.tasks(project)[0]["id"]
    start = 12
    answer = label_studio.api("POST", f"/api/ml/{ml_backend}/interactive-annotating",
                              {"task": task, "context": {"result": [drawn(start, truth(start), width, height, "new")]}})
    (result,) = answer["data"]["result"]
    sequence = result["value"]["sequence"]
    assert result["id"] == "new" and sequence[0]["frame"] == start and sequence[1]["frame"] == start + STRIDE
    tracker = SiamFCTracker(FAST, device="cpu", quiet=True)
    tracker.init(frames[start - 1], to_pixels(sequence[0], width, height)[None])
    expected = {index + 1: tracker.update(frame)[0] for index, frame in enumerate(frames) if index >= start}
    for keyframe in sequence[1:]:
        if keyframe["frame"] in expected:
            np.testing.assert_allclose(to_pixels(keyframe, width, height), expected[keyframe["frame"]],
                                       atol=BOX_DECIMALS)


# README's picture of the labeling page: into docs/ only when asked (tests write only to temporary folders), as
# `SIAMTRACK_DOCS_IMAGES=1 pytest tests/test_label_studio_real.py -k labeling_page` does
DOCS_SCREENSHOT = ROOT / "docs" / "label_studio_page.png"
BOX_COLOUR = np.array([0x00, 0xc8, 0x53])  # the Label tag's background in the labeling config: its boxes' stroke
PAGE_WAIT_S = 60.0


def chromium(folder: Path):
    """Headless Chromium, driven by selenium, with a profile of its own in `folder`."""
    webdriver = browser_or_skip()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1000",
                     f"--user-data-dir={folder}"):
        options.add_argument(argument)
    driver = start_chromium(webdriver, options)
    driver.set_page_load_timeout(PAGE_WAIT_S)
    driver.implicitly_wait(PAGE_WAIT_S)
    return driver


def go_to_frame(driver, frame: int) -> None:
    """Type the frame number into the player's frame counter, as a person does."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    def typed() -> bool:
        driver.find_element(By.CSS_SELECTOR, ".lsf-frames-control").click()
        field = driver.find_element(By.CSS_SELECTOR, ".lsf-frames-control input")
        field.send_keys(Keys.END, *[Keys.BACKSPACE] * len(field.get_attribute("value")), str(frame), Keys.ENTER)
        return driver.find_element(By.CSS_SELECTOR, ".lsf-frames-control").text.split()[0] == str(frame)

    wait_until(typed, f"the player to show frame {frame}")


def click(driver, by: str, selector: str) -> None:
    def clicked() -> bool:
        driver.find_element(by, selector).click()
        return True
    wait_until(clicked, f"{selector} to be clicked")


def wait_until(condition, what: str) -> None:
    """Until `condition()` holds; an element the page re-drew meanwhile (stale) is tried again."""
    from selenium.common.exceptions import StaleElementReferenceException
    deadline = time.monotonic() + PAGE_WAIT_S
    while True:
        try:
            if condition():
                return
        except StaleElementReferenceException:
            pass
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def box_pixels(driver) -> int:
    """How many pixels of the page's video view are the boxes' colour."""
    from selenium.webdriver.common.by import By
    view = driver.find_element(By.CSS_SELECTOR, ".lsf-video__main")
    png = cv2.imdecode(np.frombuffer(view.screenshot_as_png, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    return int((np.abs(png.astype(int) - BOX_COLOUR).max(axis=2) < 40).sum())


def test_the_labeling_page_shows_the_tracked_boxes_and_none_where_the_targets_are_gone(served, clip, frames,
                                                                                       tmp_path):
    from selenium.webdriver.common.by import By
    label_studio, _, project, _ = served
    video, car = clip
    width, height = size(frames)
    task, prediction = car_and_landmark_predicted(label_studio, project, video, car, width, height)
    driver = chromium(tmp_path / "chromium")
    try:
        driver.get(f"{label_studio.url}/user/login")
        driver.find_element(By.NAME, "email").send_keys(USER)
        driver.find_element(By.NAME, "password").send_keys(PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait_until(lambda: "/user/login" not in driver.current_url, "the login")
        driver.get(f"{label_studio.url}/projects/{project}/data?task={task}")
        click(driver, By.XPATH, "//*[starts-with(text(), 'siamtrac')]")  # the prediction's tab
        go_to_frame(driver, CAR_FRAMES + GONE_FRAMES - 2)  # the office: the car is gone, so is the landmark
        wait_until(lambda: box_pixels(driver) == 0, "no box where the targets are gone")
        go_to_frame(driver, 30)
        wait_until(lambda: box_pixels(driver) > 100, "the tracked boxes on frame 30")
        assert len(driver.find_elements(By.CSS_SELECTOR, ".lsf-outliner-item")) == len(prediction["result"])
        driver.save_screenshot(str(DOCS_SCREENSHOT if os.environ.get("SIAMTRACK_DOCS_IMAGES") else
                                   tmp_path / DOCS_SCREENSHOT.name))
    finally:
        driver.quit()
