"""Several targets in one tracker: one batched forward a frame, each target's boxes those it gets alone,
targets added and removed between frames, clear errors, and trackers in two threads."""
import threading

import cv2
import numpy as np
import pytest
from conftest import OTB_MINI, require

from siamtrack import SiamFCTracker
from siamtrack.errors import BoxError, TargetError
from siamtrack.synthetic import make_clip

FRAMES = 12
CONFIG = "siamfc_lite0_fast"
TOLERANCE_PX = 1e-6


@pytest.fixture(scope="module")
def crossing():
    """The first frames of otb_mini's Crossing (RGB) and four boxes: the walker, two other spots, and
    a patch of plain road that has nothing to follow."""
    seq = require(OTB_MINI) / "Crossing"
    paths = sorted((seq / "img").iterdir())[:FRAMES]
    frames = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths]
    walker = np.loadtxt(seq / "groundtruth_rect.txt", delimiter=",")[0] - [1, 1, 0, 0]  # OTB is 1-based
    boxes = np.array([walker, walker + [60, 20, 0, 0], [150, 120, 40, 30], [10, 200, 25, 25]])
    return frames, boxes


@pytest.fixture(scope="module")
def tracker():
    return SiamFCTracker(CONFIG, device="cpu")


def track_alone(tracker, frames, box) -> np.ndarray:
    tracker.init(frames[0], box)
    return np.array([tracker.update(frame) for frame in frames[1:]])


def test_each_target_gets_the_boxes_it_gets_alone(tracker, crossing):
    frames, boxes = crossing
    alone = np.stack([track_alone(tracker, frames, box) for box in boxes], axis=1)
    calls = []
    hook = tracker.model.backend.search_branch.register_forward_hook(lambda m, inp, out: calls.append(inp[0].shape[0]))
    try:
        tracker.init(frames[0], boxes)
        together = np.array([tracker.update(frame) for frame in frames[1:]])
    finally:
        hook.remove()
    assert together.shape == (FRAMES - 1, len(boxes), 4)
    assert np.abs(together - alone).max() <= TOLERANCE_PX
    # one backbone batch for every target, run on a CPU in parts of cpu_search_batch crops (Engine)
    part, crops = tracker.cfg.track.cpu_search_batch, len(boxes) * tracker.crops_per_target
    assert calls == ([part] * (crops // part) + [crops % part] * (crops % part > 0)) * (FRAMES - 1)
    assert tracker.score.shape == tracker.lost.shape == (len(boxes),) and tracker.ids.tolist() == [0, 1, 2, 3]


def test_the_whole_batch_in_one_call_gives_the_same_boxes(crossing):
    """cpu_search_batch 0: every target's crops in one call of the search branch, as on a GPU."""
    frames, boxes = crossing
    parts = SiamFCTracker(CONFIG, device="cpu")
    whole = SiamFCTracker(CONFIG, device="cpu", overrides=["track.cpu_search_batch=0"])
    calls = []
    whole.model.backend.search_branch.register_forward_hook(lambda m, inp, out: calls.append(inp[0].shape[0]))
    assert np.abs(track_alone(whole, frames[:4], boxes) - track_alone(parts, frames[:4], boxes)).max() <= TOLERANCE_PX
    assert calls == [len(boxes) * whole.crops_per_target] * 3


def test_one_box_keeps_the_single_target_answers(tracker, crossing):
    frames, boxes = crossing
    tracker.init(frames[0], boxes[0])
    box = tracker.update(frames[1])
    assert box.shape == (4,) and isinstance(tracker.score, float) and isinstance(tracker.lost, bool)
    tracker.init(frames[0], boxes[:1])  # an N x 4 array, even of one, answers as several
    assert tracker.update(frames[1]).shape == (1, 4) and tracker.score.shape == (1,)


@pytest.mark.parametrize("scale_filter", ["none", "dsst"])
def test_targets_added_and_removed_keep_their_ids_and_boxes(scale_filter, crossing):
    """With DSST filters too: each target keeps its own filter as others come and go."""
    frames, boxes = crossing
    tracker = SiamFCTracker(CONFIG, device="cpu", overrides=[f"track.scale_filter={scale_filter}",
                                                               "track.dsst.min_area=0"])
    alone = {i: track_alone(tracker, frames, box) for i, box in enumerate(boxes[:3])}
    late = track_alone(tracker, frames[4:], boxes[2])  # the third target, from frame 4 on
    tracker.init(frames[0], boxes[:2], ids=[7, 3])
    for index, frame in enumerate(frames[1:], start=1):
        tracked = dict(zip(tracker.ids.tolist(), tracker.update(frame)))
        assert np.abs(tracked[3] - alone[1][index - 1]).max() <= TOLERANCE_PX
        if index <= 8:
            assert np.abs(tracked[7] - alone[0][index - 1]).max() <= TOLERANCE_PX
        if index > 4:
            assert np.abs(tracked[8] - late[index - 5]).max() <= TOLERANCE_PX
        if index == 4:  # from this frame on, as if a user drew it here
            assert tracker.add(frame, boxes[2]) == 8  # the next free id
        if index == 8:
            tracker.remove(7)
    assert tracker.ids.tolist() == [3, 8]


@pytest.mark.parametrize("call, message", [
    (lambda t, f: t.init(f, np.zeros((0, 4))), "no boxes given"),
    (lambda t, f: t.init(f, np.ones((2, 5))), "N x 4 array, got shape (2, 5)"),
    (lambda t, f: t.init(f, [[10, 10, 20, 20], [9000, 10, 20, 20]]), "target 1: box [9000.0, 10.0, 20.0, 20.0] lies "
                                                                       "outside the 640x360 frame"),
    (lambda t, f: t.init(f, [[10, 10, 20, 20]] * 2, ids=[4, 4]), "target id 4 is given twice"),
    (lambda t, f: (t.init(f, [[10, 10, 20, 20]]), t.add(f, [30, 30, 20, 20], target_id=0)), "target id 0 is given "
                                                                                               "twice"),
    (lambda t, f: (t.init(f, [[10, 10, 20, 20]]), t.remove(5)), "no target 5 to remove"),
])
def test_bad_targets_are_one_line_errors_naming_the_target(tracker, call, message):
    frame = make_clip(num_frames=1).frames[0]
    with pytest.raises((BoxError, TargetError)) as raised:
        call(tracker, frame)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_every_target_removed_leaves_no_boxes(tracker):
    clip = make_clip(num_frames=3)
    tracker.init(clip.frames[0], clip.boxes[:1])
    tracker.remove(0)
    assert tracker.update(clip.frames[1]).shape == (0, 4)
    tracker.add(clip.frames[1], clip.boxes[1])
    assert tracker.update(clip.frames[2]).shape == (1, 4)


def test_two_trackers_in_two_threads_give_the_boxes_each_gives_alone(crossing):
    frames, boxes = crossing
    trackers = [SiamFCTracker(CONFIG, device="cpu") for _ in range(2)]
    alone = [track_alone(t, frames, box) for t, box in zip(trackers, boxes[:2])]
    results = [None, None]

    def run(k):
        results[k] = track_alone(trackers[k], frames, boxes[k])

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for k in range(2):
        assert np.abs(results[k] - alone[k]).max() <= TOLERANCE_PX


@pytest.mark.parametrize("backend", ["eager", "onnxruntime"])
def test_several_targets_on_every_backend_equal_their_single_runs(backend):
    """The search branch meets batches of several targets' crops: in parts on a CPU, and onnxruntime
    rebinds its output buffer for a batch it was not built with."""
    if backend == "onnxruntime":
        pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    clip = make_clip(num_frames=5)
    boxes = np.array([clip.boxes[0], [40, 40, 60, 50]])
    tracker = SiamFCTracker(CONFIG, device="cpu", backend=backend)
    alone = np.stack([track_alone(tracker, clip.frames, box) for box in boxes], axis=1)
    assert np.abs(track_alone(tracker, clip.frames, boxes) - alone).max() <= TOLERANCE_PX
