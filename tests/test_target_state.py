"""A target's state exported as JSON-safe values and imported into another tracker over the same model
(SiamFCTracker.export_target / import_target, siamtrack.core.target_state): the tracking goes on to the bit."""
import json

import numpy as np
import pytest

from siamtrack import Model, SiamFCTracker
from siamtrack.errors import FrameError, TargetError

CLIP_FRAMES = 12  # enough for the scale filter to learn and the lost history (10 scores) to fill


@pytest.fixture(scope="module", params=["siamfc_lite0_fast", "siamfc_lite0"])
def model(request):
    """The fast model (one level of features, a pyramid of exemplar kernels) and the default one (two levels
    fused, a pyramid of search crops); both with a DSST filter."""
    return Model.load(request.param, device="cpu", backend="eager", quiet=True)


def through_json(state: dict) -> dict:
    """The state as another process gets it: JSON text, strictly (no NaN), and back."""
    return json.loads(json.dumps(state, allow_nan=False))


def test_tracking_through_an_export_and_import_a_frame_equals_tracking_in_one_go(model, clip):
    start = np.array([clip.boxes[0], clip.boxes[0] + [200, 100, 0, 0]])  # the object, and a patch of the scene
    whole = SiamFCTracker(model)
    whole.init(clip.frames[0], start)
    expected = [(whole.update(frame), whole.lost.copy()) for frame in clip.frames[1:]]
    tracker = SiamFCTracker(model)
    tracker.init(clip.frames[0], start)
    states = [through_json(tracker.export_target(i)) for i in (0, 1)]
    assert states[0]["target"]["scale_filter"]["items"][0] is not None  # the DSST filter travels
    for frame, (boxes, lost) in zip(clip.frames[1:], expected):
        tracker = SiamFCTracker(model)
        for state in states:
            tracker.import_target(state)
        assert np.array_equal(tracker.update(frame), boxes) and np.array_equal(tracker.lost, lost)
        states = [through_json(tracker.export_target(i)) for i in (0, 1)]


def test_an_imported_target_joins_the_others_under_its_id(model, clip):
    exporter = SiamFCTracker(model)
    exporter.init(clip.frames[0], clip.boxes[0], ids=[7])
    tracker = SiamFCTracker(model)
    tracker.init(clip.frames[0], clip.boxes[0] + [200, 100, 0, 0])
    assert tracker.import_target(exporter.export_target(7)) == 7
    tracker.update(clip.frames[1])
    assert tracker.ids.tolist() == [0, 7] and tracker.answers().boxes.shape == (2, 4)
    with pytest.raises(TargetError, match="given twice"):
        tracker.import_target(exporter.export_target(7))


def test_a_state_of_another_model_size_or_shape_is_refused_in_one_line(model, clip):
    tracker = SiamFCTracker(model)
    tracker.init(clip.frames[0], clip.boxes[0])
    state = tracker.export_target(0)
    with pytest.raises(TargetError, match="no target 3"):
        tracker.export_target(3)
    with pytest.raises(TargetError, match="cannot go on in"):
        SiamFCTracker(model).import_target({**state, "model": "another"})
    with pytest.raises(TargetError, match="damaged"):
        broken = {"levels": [{"dtype": "<f4", "shape": [3], "data": "%%"}]}
        SiamFCTracker(model).import_target({**state, "target": {**state["target"], "kernels": broken}})
    with pytest.raises(TargetError, match="format"):
        SiamFCTracker(model).import_target({"format": 0})
    small = SiamFCTracker(model)
    small.init(clip.frames[0][:200, :300], [10, 10, 40, 40])
    with pytest.raises(FrameError, match="640x360 frames"):
        small.import_target(state)
