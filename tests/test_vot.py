"""The TraX protocol loop, driven by trax's own client as the VOT toolkit would drive it."""
import subprocess
import sys

import numpy as np
import pytest
from conftest import OTB_MINI, require
from got10k.utils.metrics import rect_iou

trax_client = pytest.importorskip("trax.client")
from trax import TraxException  # noqa: E402
from trax.image import FileImage  # noqa: E402
from trax.region import Rectangle  # noqa: E402


def track_over_trax(command, frames, box):
    server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        # trax 4.0.2's client needs a callable logger and an explicit object list on frames
        client = trax_client.Client(stream=(server.stdin.fileno(), server.stdout.fileno()),
                                    timeout=60, log=lambda message: None)
        assert client.tracker_name == "siamtrack"
        objects, _ = client.initialize({"color": FileImage.create(str(frames[0]))},
                                       [(Rectangle.create(*box), {})], {})
        boxes = [objects[0][0].bounds()]
        for frame in frames[1:]:
            objects, _ = client.frame({"color": FileImage.create(str(frame))}, {}, [])
            boxes.append(objects[0][0].bounds())
            assert float(objects[0][1]["confidence"]) > 0
        client.quit()
        assert server.wait(timeout=30) == 0
    finally:
        server.kill()
    return np.array(boxes)


@pytest.mark.slow
def test_siamtrack_vot_follows_a_real_sequence_over_trax():
    seq = require(OTB_MINI) / "Crossing"
    frames = sorted((seq / "img").glob("*.jpg"))[:15]
    truth = np.loadtxt(seq / "groundtruth_rect.txt", delimiter=",")[:15] - [1, 1, 0, 0]
    command = [sys.executable, "-m", "siamtrack", "vot", "--config", "siamfc_lite0_fast", "--threads", "1"]
    boxes = track_over_trax(command, frames, truth[0])
    assert np.allclose(boxes[0], truth[0])
    assert rect_iou(boxes[1:], truth[1:]).mean() > 0.5


@pytest.mark.slow
def test_traxpython_entry_module_serves_the_default_model():
    seq = require(OTB_MINI) / "Crossing"
    frames = sorted((seq / "img").glob("*.jpg"))[:3]
    truth = np.loadtxt(seq / "groundtruth_rect.txt", delimiter=",")[0] - [1, 1, 0, 0]
    boxes = track_over_trax([sys.executable, "-c", "import siamtrack.vot_traxpython"], frames, truth)
    assert boxes.shape == (3, 4) and np.all(np.isfinite(boxes))


def test_started_by_hand_it_says_who_starts_it_in_one_line():
    done = subprocess.run([sys.executable, "-m", "siamtrack", "vot", "--config", "siamfc_lite0_fast"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert "started by the VOT toolkit" in done.stderr


def test_an_unreadable_frame_ends_the_session_with_its_reason(tmp_path):
    seq = require(OTB_MINI) / "Crossing"
    first = sorted((seq / "img").glob("*.jpg"))[0]
    command = [sys.executable, "-m", "siamtrack", "vot", "--config", "siamfc_lite0_fast", "--threads", "1"]
    server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        client = trax_client.Client(stream=(server.stdin.fileno(), server.stdout.fileno()),
                                    timeout=60, log=lambda message: None)
        client.initialize({"color": FileImage.create(str(first))}, [(Rectangle.create(10, 10, 40, 40), {})], {})
        with pytest.raises(TraxException):  # the server quit instead of answering
            client.frame({"color": FileImage.create(str(tmp_path / "gone.jpg"))}, {}, [])
        assert server.wait(timeout=30) == 2
        errors = server.stderr.read().decode().strip()
    finally:
        server.kill()
    assert errors == f"siamtrack: error: {tmp_path / 'gone.jpg'}: cannot read the image"
