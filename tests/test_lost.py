"""`lost` means the box has lost its target: a target replaced by background is flagged, for as long as it
is gone, and a target that shrinks but stays tracked is not. Synthetic scenes, both shipped models, CPU."""
import cv2
import numpy as np
import pytest

from siamtrack import SiamFCTracker
from siamtrack.config import load_config
from siamtrack.core.frame_loop import track_frames
from siamtrack.errors import ConfigError
from siamtrack.evaluation.metrics import overlaps
from siamtrack.synthetic import make_object, smooth_texture

MODELS = ("siamfc_lite0", "siamfc_lite0_fast")
HEIGHT, WIDTH, TARGET_W, TARGET_H, TOP, LEFT = 360, 640, 80, 60, 150, 240
SEEN, HIDDEN, BACK = 6, 8, 4  # frames of the walk: target shown, then gone (longer than half lost_window)
TRACKED_IOU = 0.5
OLD_RATIO = 0.5  # lost: the score under this x the first update's, before issue 23
FADING, SMALLEST, BLUR_PX = 40, 0.4, 2.5  # frames, the last one's side against the first's, its blur sigma


@pytest.fixture(scope="module", params=MODELS)
def tracker(request):
    return SiamFCTracker(request.param, device="cpu", quiet=True)


def scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return smooth_texture(rng, HEIGHT, WIDTH, 24), make_object(rng, TARGET_H, TARGET_W)


def draw(background: np.ndarray, target: np.ndarray, box) -> np.ndarray:
    x, y, w, h = (int(v) for v in box)
    frame = background.copy()
    frame[y:y + h, x:x + w] = cv2.resize(target, (w, h), interpolation=cv2.INTER_AREA)
    return frame.astype(np.uint8)


def walk(shown: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """The target moving right 6 px a frame, drawn where `shown`, else only background where it would be."""
    background, target = scene()
    boxes = np.array([[LEFT + 6 * i, TOP, TARGET_W, TARGET_H] for i in range(len(shown))], dtype=np.float64)
    frames = [draw(background, target, box) if show else background.astype(np.uint8) for box, show in zip(boxes, shown)]
    return frames, boxes


def updates(tracker, frames, box) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes, scores and lost flags of every update (frame 0, the given box, left out)."""
    rows = [(found, tracker.score, tracker.lost) for index, _, found, _ in track_frames(tracker, frames, box) if index]
    return tuple(np.array(column) for column in zip(*rows))


def test_a_target_replaced_by_background_is_lost_while_it_is_gone(tracker):
    shown = np.repeat([True, False, True], [SEEN, HIDDEN, BACK])
    frames, truth = walk(shown)
    _, _, lost = updates(tracker, frames, truth[0])
    gone = ~shown[1:]  # update k tracks frame k + 1
    assert lost[gone].all(), lost
    assert not lost[:SEEN - 1].any(), lost


def test_a_target_shrinking_into_haze_stays_tracked_and_is_not_lost(tracker):
    """The target drives off: it shrinks to SMALLEST of its side and blurs, so that its score falls under
    half the first update's (where the rule before issue 23 called it lost), but the box stays on it."""
    background, target = scene(seed=1)
    k = np.linspace(0, 1, FADING)
    sides = 1 - (1 - SMALLEST) * k
    truth = np.array([[LEFT + i, TOP, round(TARGET_W * s), round(TARGET_H * s)] for i, s in enumerate(sides)],
                     dtype=np.float64)
    frames = [blurred(draw(background, target, box), BLUR_PX * f) for box, f in zip(truth, k)]
    boxes, scores, lost = updates(tracker, frames, truth[0])
    assert overlaps(boxes, truth[1:]).min() > TRACKED_IOU  # tracked throughout ...
    assert scores.min() < OLD_RATIO * scores[0]  # ... at a score the old rule took for lost ...
    assert not lost.any(), lost  # ... and not lost


def blurred(frame: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(frame, (0, 0), sigma) if sigma > 0 else frame


def test_each_of_several_targets_is_judged_on_its_own_scores():
    tracker = SiamFCTracker(MODELS[1], device="cpu", quiet=True)
    shown = np.repeat([True, False], [SEEN, HIDDEN])
    frames, truth = walk(shown)
    background, other = scene(seed=2)
    still = np.array([40.0, 40.0, TARGET_W, TARGET_H])  # a second target that stays in view, top left
    frames = [draw(frame, other, still) for frame in frames]
    tracker.init(frames[0], np.array([truth[0], still]), ids=[3, 5])
    for frame in frames[1:]:
        tracker.update(frame)
    assert tracker.lost.tolist() == [True, False]
    added = tracker.add(frames[-1], still + [300, 0, 0, 0])
    assert tracker.lost.tolist() == [True, False, False]  # a new target starts as found
    tracker.remove(3)
    tracker.update(frames[-1])
    assert tracker.ids.tolist() == [5, added] and tracker.lost.tolist() == [False, False]


def test_before_the_first_update_nothing_is_lost():
    tracker = SiamFCTracker(MODELS[1], device="cpu", quiet=True)
    assert tracker.lost is False
    frames, truth = walk(np.ones(1, dtype=bool))
    tracker.init(frames[0], truth[0])
    assert tracker.lost is False


@pytest.mark.parametrize("override, message", [
    ("track.lost_drop=-0.5", "'track.lost_drop' must be >= 0"),
    ("track.lost_window=0", "'track.lost_window' must be > 0"),
    ("track.lost_window=2.5", "'track.lost_window' must be int"),
])
def test_bad_lost_settings_are_one_line_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("siamfc_lite0_fast", [override])
