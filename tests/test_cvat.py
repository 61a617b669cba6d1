"""The CVAT tracking function through cvat-sdk's own classes (its spec, shapes and contexts), and through the
code of cvat-cli's agent that calls a tracking function (its loader and its worker jobs), without a CVAT server
(one needs Docker). Skips, saying why, without cvat-sdk (the cvat extra) or cvat-cli."""
import json
from itertools import count

import numpy as np
import PIL.Image
import pytest

from conftest import OTB_MINI, require
from siamtrack import SiamFCTracker
from siamtrack.errors import BoxError

cvataa = pytest.importorskip("cvat_sdk.auto_annotation", reason="cvat-sdk is in the cvat extra")
from siamtrack.integrations import cvat  # noqa: E402

FAST = "siamfc_lite0_fast"
CLIP_FRAMES = 12
ROUND_TRIP_FRAMES = 50


class ShapeContext(cvataa.TrackingFunctionShapeContext):
    """What CVAT's agent hands a tracking function with each shape."""

    @property
    def original_shape_type(self) -> str:
        return cvat.RECTANGLE


CONTEXT = ShapeContext()


@pytest.fixture(scope="module")
def function():
    return cvat.create(FAST, device="cpu", backend="eager")


def rectangle(box) -> "cvataa.TrackableShape":
    return cvataa.TrackableShape(type=cvat.RECTANGLE, points=cvat.rectangle_points(np.asarray(box)))


def tracked_in_one_go(function, frames, box) -> list[np.ndarray | None]:
    """The box on each frame after the first (None where the target is judged lost), one tracker over the
    function's model all along."""
    tracker = SiamFCTracker(function.model)
    tracker.init(frames[0], np.asarray(box, dtype=np.float64)[None])
    boxes = []
    for frame in frames[1:]:
        tracker.update(frame)
        answers = tracker.answers()
        boxes.append(None if answers.lost[0] else answers.boxes[0])
    return boxes


def points(shape_or_box) -> list[float] | None:
    """What CVAT receives: a shape's points, or those of a box; None for a shape not found."""
    if shape_or_box is None or isinstance(shape_or_box, cvataa.TrackableShape):
        return shape_or_box and shape_or_box.points
    return cvat.rectangle_points(shape_or_box)


def test_the_function_is_a_tracking_function_for_rectangles(function, clip):
    assert isinstance(function.spec, cvataa.TrackingFunctionSpec)
    assert function.spec.supported_shape_types == {"rectangle"}
    image = PIL.Image.fromarray(clip.frames[0])
    state = function.init_tracking_state(CONTEXT, function.preprocess_image(None, image), rectangle(clip.boxes[0]))
    json.dumps(state, allow_nan=False)  # JSON-safe: strict JSON, no NaN
    shape = function.track(CONTEXT, function.preprocess_image(None, PIL.Image.fromarray(clip.frames[1])), state)
    assert shape.type == "rectangle" and len(shape.points) == 4
    assert points(shape) == points(tracked_in_one_go(function, clip.frames[:2], clip.boxes[0])[0])
    with pytest.raises(BoxError, match="x1, y1, x2, y2"):
        cvat.rectangle_box([1, 2, 3])


@pytest.mark.slow
def test_frames_1_to_50_in_one_go_equal_50_calls_with_the_state_passed_between_as_json(function):
    """Car1's first 50 frames: the boxes of one tracker all along, and those of a call per frame, the state
    going out as JSON text and back in between, are the same to the bit."""
    paths = sorted((require(OTB_MINI) / "Car1" / "img").glob("*.jpg"))[:ROUND_TRIP_FRAMES]
    images = [PIL.Image.open(path) for path in paths]
    frames = [function.preprocess_image(None, image) for image in images]
    first = np.loadtxt(OTB_MINI / "Car1" / "groundtruth_rect.txt", delimiter=",", max_rows=1) - [1, 1, 0, 0]
    expected = tracked_in_one_go(function, frames, first)
    state = json.dumps(function.init_tracking_state(CONTEXT, frames[0], rectangle(first)))
    for frame, box in zip(frames[1:], expected):
        kept = json.loads(state)
        assert points(function.track(CONTEXT, frame, kept)) == points(box)
        state = json.dumps(kept, allow_nan=False)


@pytest.mark.slow
def test_a_target_gone_from_the_frame_comes_back_as_not_found(function):
    """Car1's car, then an office where it is not: CVAT is told the shape was not found there."""
    data = require(OTB_MINI)
    car = [function.preprocess_image(None, PIL.Image.open(p)) for p in sorted((data / "Car1" / "img").glob("*.jpg"))[:5]]
    office = [function.preprocess_image(None, PIL.Image.open(p))
              for p in sorted((data / "David_300_770" / "img").glob("*.jpg"))[:5]]
    first = np.loadtxt(data / "Car1" / "groundtruth_rect.txt", delimiter=",", max_rows=1) - [1, 1, 0, 0]
    state = function.init_tracking_state(CONTEXT, car[0], rectangle(first))
    found = [function.track(CONTEXT, frame, state) is not None for frame in car[1:] + office]
    assert found == [True] * 4 + [False] * 5


def test_cvat_clis_agent_loads_the_function_and_tracks_with_it(clip):
    """cvat-cli's own loader (`--function-module siamtrack.integrations.cvat -p config=str:...`) and the jobs
    its agent's workers run for CVAT's init_tracking and track requests, states kept by the agent."""
    pytest.importorskip("cvat_cli", reason="cvat-cli runs the agent: pip install cvat-cli")
    from cvat_cli._internal.agent import get_function_driver_class
    from cvat_cli._internal.agent_driver import set_worker_current_function
    from cvat_cli._internal.agent_driver_tracking import (AgentTrackingFunctionDriver, _worker_job_init_tracking,
                                                          _worker_job_track)
    from cvat_cli._internal.common import FunctionLoader

    function = FunctionLoader("siamtrack.integrations.cvat", None, {"config": FAST, "backend": "eager"}).load()
    assert get_function_driver_class(function.spec) is AgentTrackingFunctionDriver
    assert AgentTrackingFunctionDriver.get_remote_function_fields(function.spec) == {
        "supported_shape_types": ["rectangle"]}
    set_worker_current_function(function)
    numbers = count()
    AgentTrackingFunctionDriver.init_worker(lambda: f"state-{next(numbers)}")
    images = [PIL.Image.fromarray(frame) for frame in clip.frames]
    boxes = [clip.boxes[0], clip.boxes[0] + [200, 100, 0, 0]]
    states = _worker_job_init_tracking(1, images[0], [rectangle(box) for box in boxes])
    assert states == ["state-0", "state-1"]
    tracked = [_worker_job_track(1, image, states) for image in images[1:]]
    for target, box in enumerate(boxes):
        expected = tracked_in_one_go(function, clip.frames, box)
        assert [points(shapes[target]) for shapes in tracked] == [points(box) for box in expected]
