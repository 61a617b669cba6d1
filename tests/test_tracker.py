import numpy as np
import pytest
import torch
from got10k.utils.metrics import rect_iou
from PIL import Image

from siamtrack import SiamFCTracker
from siamtrack.config import load_config
from siamtrack.core.frame_loop import track_frames
from siamtrack.errors import BoxError, FrameError
from siamtrack.inputs import as_rgb

CLIP_FRAMES = 60


@pytest.fixture(scope="module")
def tracker():
    return SiamFCTracker(config="siamfc_lite0_fast", device="cpu")


def run(tracker, frames, box):
    return np.array([result for _, _, result, _ in track_frames(tracker, frames, box)])


def test_shipped_weights_follow_the_synthetic_target(tracker, clip):
    boxes = run(tracker, clip.frames, clip.boxes[0])
    iou = rect_iou(boxes[1:], clip.boxes[1:])
    assert iou.mean() > 0.6, iou.mean()
    assert np.isfinite(tracker.score)


def test_all_scales_go_through_one_batched_forward(clip):
    tracker = SiamFCTracker(config="siamfc_lite0_fast", device="cpu", overrides=["track.scale_mode=pyramid"])
    calls = []
    hook = tracker.model.backend.search_branch.register_forward_hook(lambda m, inp, out: calls.append(inp[0].shape[0]))
    try:
        tracker.init(clip.frames[0], clip.boxes[0])
        calls.clear()
        tracker.update(clip.frames[1])
    finally:
        hook.remove()
    assert calls == [tracker.cfg.track.scale_num]


def test_grayscale_pil_and_rgba_frames_give_the_same_boxes(tracker, clip):
    gray = [np.asarray(Image.fromarray(f).convert("L")) for f in clip.frames[:10]]
    as_2d = run(tracker, gray, clip.boxes[0])
    as_pil = run(tracker, [Image.fromarray(g) for g in gray], clip.boxes[0])
    as_rgba = run(tracker, [np.dstack([g, g, g, np.full_like(g, 255)]) for g in gray], clip.boxes[0])
    assert np.allclose(as_2d, as_pil) and np.allclose(as_2d, as_rgba)


def test_sixteen_bit_frames_are_scaled_down():
    frame16 = np.full((4, 4), 0x8000, np.uint16)
    assert as_rgb(frame16).dtype == np.uint8 and as_rgb(frame16)[0, 0, 0] == 0x80
    with pytest.raises(FrameError, match="uint8 or uint16"):
        as_rgb(np.zeros((4, 4, 3), np.float32))


@pytest.mark.parametrize("box, message", [
    ((10, 10, 0, 5), "positive width and height"),
    ((10, 10, float("nan"), 5), "non-finite"),
    ((700, 10, 20, 20), "outside"),
    ((1, 2, 3), "4 numbers"),
])
def test_bad_boxes_raise_box_error(tracker, clip, box, message):
    with pytest.raises(BoxError, match=message):
        tracker.init(clip.frames[0], box)


def test_box_is_clamped_to_the_frame_and_stays_finite(clip):
    cfg = load_config("siamfc_lite0_fast", ["track.scale_step=1.5", "track.scale_lr=1.0"])
    tracker = SiamFCTracker(cfg, device="cpu")
    blank = np.zeros_like(clip.frames[0])
    tracker.init(clip.frames[0], (0, 0, 600, 350))
    for _ in range(10):
        box = tracker.update(blank)
    assert np.all(np.isfinite(box)) and box[2] <= 640 and box[3] <= 360


def test_untrained_alexnet_runs_without_weights(clip):
    cfg = load_config("siamfc_alexnet", ['weights=""'])
    torch.manual_seed(0)
    tracker = SiamFCTracker(cfg, device="cpu")
    assert tracker.weights_path is None and tracker.peaks.upscale_size == 17 * 16
    box = run(tracker, clip.frames[:3], clip.boxes[0])[-1]
    assert box.shape == (4,) and np.all(np.isfinite(box))
