"""Exemplar warps (track.warps): the turned and stretched crops, the bank's choice on a target that turns or
stretches, each target's boxes in a batch equal to its boxes alone, and the default left as it was."""
import cv2
import numpy as np
import pytest

from siamtrack import SiamFCTracker
from siamtrack.config import WarpConfig
from siamtrack.core.model import Model
from siamtrack.core.warps import ExemplarWarps, box_factors, warp_matrix, warped_crop
from siamtrack.evaluation.metrics import overlaps
from siamtrack.synthetic import make_object, smooth_texture

CONFIG = "siamfc_lite0_fast"
OFF = ("track.warps.angle_step=0",)  # the fast model ships with turns: every test starts from none
TURNS = ("track.warps.angle_step=20", "track.warps.angle_max=180")


def turning_clip(frames: int = 24, degrees: float = 8.0, stretch: float = 1.0, seed: int = 0):
    """A 24 x 72 bar-shaped target on a still textured background, turning `degrees` a frame about its centre and
    stretched by `stretch` a frame (width x, height /); the boxes bound the turned, stretched target."""
    rng = np.random.default_rng(seed)
    background = smooth_texture(rng, 240, 320, 24).astype(np.uint8)
    target = make_object(rng, 72, 24).astype(np.uint8)
    mask = np.full((72, 24), 255, np.uint8)
    out, boxes = [], []
    for i in range(frames):
        warp = warp_matrix(degrees * i, stretch ** i)
        matrix = np.concatenate([warp, (np.array([160, 120]) - warp @ np.array([12, 36]))[:, None]], axis=1)
        shape = cv2.warpAffine(mask, matrix, (320, 240))
        frame = background.copy()
        frame[shape > 127] = cv2.warpAffine(target, matrix, (320, 240))[shape > 127]
        ys, xs = np.nonzero(shape > 127)
        out.append(frame)
        boxes.append([xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1])
    return out, np.array(boxes, dtype=np.float64)


def track(frames, box, overrides=()):
    tracker = SiamFCTracker(CONFIG, device="cpu", backend="eager", overrides=OFF + tuple(overrides), quiet=True)
    tracker.init(frames[0], box)
    return np.array([tracker.update(f) for f in frames[1:]])


def test_warped_crop_without_warp_is_the_plain_crop():
    frame = smooth_texture(np.random.default_rng(1), 120, 160, 12).astype(np.uint8)
    from siamtrack.core.crops import crop_and_resize
    plain = crop_and_resize(frame, 70.3, 50.8, 61.0, 32, (0, 0, 0))
    assert np.array_equal(warped_crop(frame, 70.3, 50.8, 61.0, 32, (0, 0, 0), np.eye(2)), plain)


def test_warped_crop_turns_the_content():
    """A crop turned a quarter shows the unturned crop turned a quarter (one way or the other: the bank holds
    both)."""
    frame = smooth_texture(np.random.default_rng(2), 120, 160, 12).astype(np.uint8)
    plain = warped_crop(frame, 80, 60, 40, 40, (0, 0, 0), np.eye(2)).astype(float)
    turned = warped_crop(frame, 80, 60, 40, 40, (0, 0, 0), warp_matrix(90, 1.0)).astype(float)
    errors = [np.abs(np.rot90(plain, k) - turned).mean() for k in (1, 3)]
    assert min(errors) < 2 and max(errors) > 20


def test_bank_layout():
    circle = ExemplarWarps(WarpConfig(angle_step=30))
    assert circle.size == 12 and circle.circle and len(circle.steps) == 3
    both = ExemplarWarps(WarpConfig(angle_step=15, angle_max=45, stretch_step=1.2, stretch_max=1.5))
    assert list(both.angles) == [-45, -30, -15, 0, 15, 30, 45] and len(both.log_stretches) == 5
    assert len(both.steps) == 9 and tuple(both.start) == (3, 2)
    assert not ExemplarWarps.wanted(WarpConfig())


def test_box_factors():
    assert np.allclose(box_factors(np.zeros(1), np.log([1.5]), False, np.ones(1)), [[1.5, 1 / 1.5]])
    # a 1 x 3 box turned a quarter bounds a 3 x 1 ellipse: width x 3, height / 3
    assert np.allclose(box_factors(np.array([90.0]), np.zeros(1), True, np.array([1 / 3])), [[3, 1 / 3]])


def test_warps_off_by_default_and_a_bank_of_one_leaves_the_boxes():
    frames, boxes = turning_clip(frames=6)
    assert SiamFCTracker("siamfc_lite0", device="cpu", backend="eager", quiet=True).warps is None
    shipped = SiamFCTracker(CONFIG, device="cpu", backend="eager", quiet=True).warps  # chosen for the fast model
    assert list(shipped.angles) == [-60, -40, -20, 0, 20, 40, 60]
    plain = track(frames, boxes[0])
    # a bank of one warp (no neighbour inside the range) takes the same path through the warp code
    assert np.allclose(track(frames, boxes[0], ("track.warps.angle_step=30", "track.warps.angle_max=20")), plain)


def test_turned_kernels_follow_the_turn():
    """A bar turning 8 degrees a frame: the bank's chosen turn stays within one step (20 degrees) of it."""
    frames, boxes = turning_clip(frames=12)
    tracker = SiamFCTracker(CONFIG, device="cpu", backend="eager", overrides=OFF + TURNS, quiet=True)
    tracker.init(frames[0], boxes[0])
    chosen = []
    for frame in frames[1:]:
        tracker.update(frame)
        chosen.append(tracker.warps.angles[tracker.targets.warp[0, 0]])
    assert np.all(np.abs(np.array(chosen) - 8.0 * np.arange(1, 12)) <= 20) and chosen[-1] >= 60


def test_a_tracker_initialised_again_starts_upright_as_a_new_one_does():
    """init starts every target at the bank's unwarped kernel: one target's turns of the last clip must not
    carry over into the next (its warp once shared the bank's start in memory, and every later init of the
    tracker started at the turn the last clip ended on)."""
    frames, boxes = turning_clip(frames=12)
    tracker = SiamFCTracker(CONFIG, device="cpu", backend="eager", overrides=OFF + TURNS, quiet=True)
    tracker.init(frames[0], boxes[0])
    for frame in frames[1:]:
        tracker.update(frame)
    assert tracker.warps.angles[tracker.targets.warp[0, 0]] >= 60  # the clip turned it
    tracker.init(frames[0], boxes[0])
    assert tracker.warps.angles[tracker.targets.warp[0, 0]] == 0
    again = np.array([tracker.update(f) for f in frames[1:]])
    assert (again == track(frames, boxes[0], TURNS)).all()


def test_the_box_follows_the_turn():
    """Turned 184 degrees over the clip, the bar's box widens and narrows again: with turn_box the tracked box
    follows (mean IoU up by more than 0.1; measured 0.39 -> 0.61)."""
    frames, boxes = turning_clip()
    plain = overlaps(track(frames, boxes[0]), boxes[1:]).mean()
    turned = overlaps(track(frames, boxes[0], TURNS + ("track.warps.turn_box=true",)), boxes[1:]).mean()
    assert turned > plain + 0.1, (plain, turned)


def test_stretched_kernels_follow_the_aspect_ratio():
    frames, boxes = turning_clip(degrees=0.0, stretch=1.03)
    aspect = boxes[-1, 2] / boxes[-1, 3]
    plain = track(frames, boxes[0])[-1]
    stretched = track(frames, boxes[0], ("track.warps.stretch_step=1.1", "track.warps.stretch_max=2.5"))[-1]
    assert abs(np.log(stretched[2] / stretched[3] / aspect)) < 0.5 * abs(np.log(plain[2] / plain[3] / aspect))


@pytest.mark.parametrize("overrides", [TURNS, ("track.warps.angle_step=30", "track.warps.angle_max=180", "track.warps.stretch_step=1.2",
                                               "track.warps.turn_box=true", "track.scale_mode=pyramid")])
def test_many_targets_match_alone(overrides):
    frames, boxes = turning_clip(frames=8)
    model = Model.load(CONFIG, device="cpu", backend="eager", overrides=OFF + overrides, quiet=True)
    second = boxes[0] + [-90, -60, 0, 0]
    together = SiamFCTracker(model)
    together.init(frames[0], np.stack([boxes[0], second]))
    batched = np.array([together.update(f) for f in frames[1:]])
    for k, box in enumerate([boxes[0], second]):
        alone = SiamFCTracker(model)
        alone.init(frames[0], box)
        assert np.allclose([alone.update(f) for f in frames[1:]], batched[:, k], atol=1e-6)
