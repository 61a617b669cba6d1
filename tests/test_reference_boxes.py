"""Every shipped config and backend still gives the boxes it gave when tests/data/reference_boxes.json
was written (tools/reference_boxes.py, before the design step that reshaped the tracker's state), and every
one of many trackers over that tracker's model, run interleaved, gives exactly its boxes (one model, many
trackers: issue 29).

Float backends give the same boxes on any CPU, to the file's 4 decimals. int8 does not: ONNX Runtime's int8
kernels round differently from one CPU to another (on another machine of the same kind all three configs'
int8 boxes moved), so int8 is held to its accuracy against the sequence's ground truth instead, as good as
the float model's within INT8_IOU_LOSS; with untrained weights (a config whose weights do not ship) it has
no accuracy to hold, and only its boxes' shape is checked."""
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import OTB_MINI, require

SHARING = 20  # trackers over one model, interleaved over the given box and SHARED_UPDATES updates
SHARED_UPDATES = 2
REFERENCE = json.loads((Path(__file__).parent / "data" / "reference_boxes.json").read_text())
TOLERANCE_PX = 1e-3  # the file keeps 4 decimals
INT8 = "onnxruntime-int8"
INT8_IOU_LOSS = 0.05  # mean IoU with the ground truth an int8 model may lose against its float reference
INT8_MIN_IOU = 0.5  # and on every frame, at least this: it still follows the target


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    low, high = np.maximum(a[:, :2], b[:, :2]), np.minimum(a[:, :2] + a[:, 2:], b[:, :2] + b[:, 2:])
    inter = np.prod(np.clip(high - low, 0, None), axis=1)
    return inter / (np.prod(a[:, 2:], axis=1) + np.prod(b[:, 2:], axis=1) - inter)


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(REFERENCE["boxes"]))
def test_boxes_equal_the_reference_and_every_tracker_over_the_model_gives_them(key, monkeypatch, tmp_path):
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    from reference_boxes import reference_tracker

    from siamtrack import SiamFCTracker
    from siamtrack.datasets import load_sequences
    from siamtrack.inputs import read_rgb
    sequence = load_sequences(require(OTB_MINI) / REFERENCE["sequence"])[0]
    frames = [read_rgb(path) for path in sequence.frames[:REFERENCE["frames"]]]
    config, backend = key.split("/")
    if backend.startswith("onnxruntime"):
        pytest.importorskip("onnxruntime")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # int8: calibrated here, not read from a user's cache
    alone = reference_tracker(config, backend)
    first = np.array(REFERENCE["first"])
    alone.init(frames[0], first)
    boxes = np.array([alone.update(frame) for frame in frames[1:]])
    shared = [SiamFCTracker(alone.model) for _ in range(SHARING)]
    for tracker in shared:
        tracker.init(frames[0], first)
    for index, frame in enumerate(frames[1:1 + SHARED_UPDATES]):
        for tracker in shared:
            assert np.array_equal(tracker.update(frame), boxes[index]), (index, tracker)
    if backend != INT8:
        np.testing.assert_allclose(boxes, REFERENCE["boxes"][key], atol=TOLERANCE_PX)
        return
    assert boxes.shape == (len(frames) - 1, 4) and np.isfinite(boxes).all() and (boxes[:, 2:] > 0).all()
    truth = sequence.boxes[1:len(frames)]
    float_iou = iou(np.array(REFERENCE["boxes"][f"{config}/onnxruntime"]), truth)
    if float_iou.mean() < INT8_MIN_IOU:  # untrained weights: the float model does not follow the target either
        return
    int8_iou = iou(boxes, truth)
    assert int8_iou.mean() >= float_iou.mean() - INT8_IOU_LOSS and int8_iou.min() >= INT8_MIN_IOU, int8_iou.round(3)
