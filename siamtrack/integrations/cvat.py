"""A CVAT tracking function: cvat-sdk's auto-annotation TrackingFunction interface (agent mode, CVAT 2.42+),
for rectangles. A person draws a box in CVAT's AI tools and an agent running this function follows it.

    cvat-cli ... function create-native "siamtrack" --function-module siamtrack.integrations.cvat
    cvat-cli ... function run-agent FUNCTION_ID --function-module siamtrack.integrations.cvat \\
        -p config=str:siamfc_lite0_fast

cvat-cli calls `create(**parameters)` once per agent process: the model is built there, once; each call
then makes a tracker over it (cheap). The tracking state is the target's exported state
(SiamFCTracker.export_target): JSON-safe values, the exemplar kernels, the box and the scale filter among
them, so that a state handed between calls, processes or machines goes on exactly where it was.
"""
from __future__ import annotations

import cvat_sdk.auto_annotation as cvataa
import numpy as np
import PIL.Image

from ..core.backends import DEFAULT_BACKEND
from ..core.model import Model
from ..core.tracker import SiamFCTracker
from ..errors import BoxError
from ..inputs import as_rgb
from ..spec import TrackerSpec

RECTANGLE = "rectangle"  # CVAT's shape type: points are x1, y1, x2, y2 (top-left and bottom-right corners)


class SiamtrackTrackingFunction:
    """Rectangles in, rectangles out; a target the tracker judges lost on a frame comes back as None there
    (CVAT's "not found"), and is looked for again on the next."""

    spec = cvataa.TrackingFunctionSpec(supported_shape_types=[RECTANGLE])

    def __init__(self, model: Model):
        self.model = model

    def preprocess_image(self, context: cvataa.TrackingFunctionContext, image: PIL.Image.Image) -> np.ndarray:
        """The frame as RGB, once for every shape tracked on it."""
        return as_rgb(image)

    def init_tracking_state(self, context: cvataa.TrackingFunctionShapeContext, pp_image: np.ndarray,
                            shape: cvataa.TrackableShape) -> dict:
        tracker = SiamFCTracker(self.model)
        tracker.init(pp_image, rectangle_box(shape.points)[None])
        return tracker.export_target(0)

    def track(self, context: cvataa.TrackingFunctionShapeContext, pp_image: np.ndarray,
              state: dict) -> cvataa.TrackableShape | None:
        """The shape on this frame; `state` is updated in place to go on from it (the caller keeps it)."""
        tracker = SiamFCTracker(self.model)
        target = tracker.import_target(state)
        tracker.update(pp_image)
        state.clear()
        state.update(tracker.export_target(target))
        answers = tracker.answers()
        if answers.lost[0]:
            return None
        return cvataa.TrackableShape(type=RECTANGLE, points=rectangle_points(answers.boxes[0]))


def create(config: str | None = None, weights: str | None = None, device: str = "auto",
           backend: str = DEFAULT_BACKEND) -> SiamtrackTrackingFunction:
    """The function with its model built, from cvat-cli's -p options (e.g. -p config=str:siamfc_lite0_fast)."""
    return SiamtrackTrackingFunction(TrackerSpec(config, weights, (), device, backend).model(quiet=True))


def rectangle_box(points) -> np.ndarray:
    """CVAT's x1, y1, x2, y2 as siamtrack's x, y, w, h."""
    try:
        x1, y1, x2, y2 = np.asarray(points, dtype=np.float64).reshape(4)
    except (TypeError, ValueError):
        raise BoxError(f"a rectangle's points are x1, y1, x2, y2, got {points!r}") from None
    return np.array([x1, y1, x2 - x1, y2 - y1])


def rectangle_points(box: np.ndarray) -> list[float]:
    x, y, w, h = (float(v) for v in box)
    return [x, y, x + w, y + h]
