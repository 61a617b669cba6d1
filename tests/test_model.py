"""One model, many trackers: a Model is built once and shared; trackers over it track as trackers built alone
(on real frames, for every shipped config and backend: test_reference_boxes.py),
and building one changes nothing outside it, even while trackers run on other threads."""
import threading

import numpy as np
import pytest
import torch

from siamtrack import Model, SiamFCTracker, TrackerSpec
from siamtrack.core.frame_loop import track_frames
from siamtrack.errors import ConfigError

FAST = "siamfc_lite0_fast"


def boxes(tracker, frames, box) -> np.ndarray:
    return np.array([found for _, _, found, _ in track_frames(tracker, frames, box)])


def test_a_tracker_over_a_model_shares_it_and_builds_nothing(clip):
    model = Model.load(FAST, device="cpu", backend="eager", quiet=True)
    trackers = [SiamFCTracker(model) for _ in range(3)]
    assert all(t.model is model and t.cfg is model.cfg for t in trackers)
    assert TrackerSpec(FAST, device="cpu").model(quiet=True).name == FAST


def test_a_tracker_over_a_model_takes_no_build_options():
    model = Model.load(FAST, device="cpu", backend="eager", quiet=True)
    with pytest.raises(ConfigError, match="give them to Model.load"):
        SiamFCTracker(model, backend="onnxruntime")


def test_trackers_over_one_model_interleaved_give_each_its_own_boxes(clip):
    """Three trackers on one model, updated in turn on different targets: each gets the boxes it gets alone."""
    model = Model.load(FAST, device="cpu", quiet=True)
    starts = [clip.boxes[0], clip.boxes[0] + [40, 30, 0, 0], clip.boxes[0] + [-30, 20, 0, 0]]
    alone = [boxes(SiamFCTracker(model), clip.frames[:10], start) for start in starts]
    shared = [SiamFCTracker(model) for _ in starts]
    for tracker, start in zip(shared, starts):
        tracker.init(clip.frames[0], start)
    together = [[tracker.update(frame) for tracker in shared] for frame in clip.frames[1:10]]
    for index, expected in enumerate(alone):
        assert np.array_equal(np.array([row[index] for row in together]), expected[1:])


@pytest.mark.parametrize("backend", ["eager", "torch"])
def test_a_model_builds_on_one_thread_while_trackers_track_on_others(clip, backend):
    """Building folds batch norm pair by pair on a copy: nothing process-wide changes, so trackers running on
    other threads meanwhile keep working and keep their boxes."""
    model = Model.load(FAST, device="cpu", backend=backend, quiet=True)
    expected = boxes(SiamFCTracker(model), clip.frames[:12], clip.boxes[0])
    call = torch.nn.Module.__call__
    found, errors, building = {}, [], threading.Event()

    def track(name):
        try:
            building.wait(30)
            found[name] = boxes(SiamFCTracker(model), clip.frames[:12], clip.boxes[0])
        except Exception as exc:  # noqa: BLE001  reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=track, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    building.set()
    built = Model.load(FAST, device="cpu", backend="torch", quiet=True)  # while they track
    for thread in threads:
        thread.join(60)
    assert not errors and all(np.array_equal(found[i], expected) for i in range(2))
    assert torch.nn.Module.__call__ is call and built.backend.name == "torch"
