"""Scale modes: the paper's search-side pyramid keeps the boxes of the loop before scale modes existed,
and both pyramids follow a target zoomed by known factors."""
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import OTB_MINI, require

from siamtrack import SiamFCTracker
from siamtrack.synthetic import make_clip, make_object, smooth_texture

# boxes of the tracker at d0f38ed (before several targets and scale modes), on the first 40 frames of the
# synthetic clip and the first 60 of otb_mini's Crossing: tracker.update's output, frames 1 onwards
REFERENCE = Path(__file__).parent / "data" / "pyramid_boxes.npz"
SAME_PX = 0.01  # float rounding across CPUs' convolution kernels, as the backend tests allow
# the paper's loop, in any shipped config
PAPER = ["track.scale_mode=pyramid", "track.scale_filter=none", "model.fusion=none", "track.warps.angle_step=0"]
ZOOM = 1.0 + 0.35 * np.sin(np.linspace(0, 2 * np.pi, 60))  # the target's size, frame by frame


def reference_frames(name: str) -> tuple[list[np.ndarray], np.ndarray]:
    if name == "clip":
        clip = make_clip(num_frames=40)
        return clip.frames, clip.boxes[0]
    seq = require(OTB_MINI) / "Crossing"
    frames = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted((seq / "img").iterdir())[:60]]
    return frames, np.loadtxt(seq / "groundtruth_rect.txt", delimiter=",")[0] - [1, 1, 0, 0]


@pytest.mark.parametrize("config", ["siamfc_lite0_fast", "siamfc_lite0"])
@pytest.mark.parametrize("clip", ["clip", "crossing"])
def test_the_pyramid_mode_gives_the_boxes_of_the_paper_loop(config, clip):
    frames, box = reference_frames(clip)
    tracker = SiamFCTracker(config, device="cpu", overrides=PAPER)
    tracker.init(frames[0], box)
    boxes = np.array([tracker.update(frame) for frame in frames[1:]])
    assert np.abs(boxes - np.load(REFERENCE)[f"{config}-{clip}"]).max() <= SAME_PX


def zoom_clip() -> tuple[list[np.ndarray], np.ndarray]:
    """A still textured target, its size ZOOM times its first, on a still background."""
    rng = np.random.default_rng(3)
    background = smooth_texture(rng, 360, 640, 24)
    target = make_object(rng, 60, 80)
    frames, boxes = [], []
    for zoom in ZOOM:
        w, h = int(round(80 * zoom)), int(round(60 * zoom))
        x, y = 320 - w // 2, 180 - h // 2
        frame = background.copy()
        frame[y:y + h, x:x + w] = cv2.resize(target, (w, h), interpolation=cv2.INTER_LINEAR)
        frames.append(frame.astype(np.uint8))
        boxes.append((x, y, w, h))
    return frames, np.array(boxes, dtype=np.float64)


@pytest.mark.parametrize("mode", ["pyramid", "exemplar"])
def test_both_pyramids_follow_a_known_zoom(mode):
    frames, truth = zoom_clip()
    tracker = SiamFCTracker("siamfc_lite0_fast", device="cpu",
                            overrides=[f"track.scale_mode={mode}", "track.scale_filter=none"])
    tracker.init(frames[0], truth[0])
    boxes = np.array([tracker.update(frame) for frame in frames[1:]])
    size_error = np.abs(boxes[:, 2] / truth[1:, 2] - 1)
    # the damped scale lags a moving zoom (one 3.75 % step a frame at most): within 10 % on average
    assert size_error.mean() < 0.10, size_error.mean()
    assert np.abs(boxes[:, :2] + boxes[:, 2:] / 2 - (truth[1:, :2] + truth[1:, 2:] / 2)).max() < 8


def test_the_dsst_filter_recovers_a_known_zoom_in_and_out():
    """The scale filter sizes the box within 3 % all along a zoom from 0.65x to 1.35x, where the pyramid's
    damped steps lag by 8 % on average."""
    frames, truth = zoom_clip()
    errors = {}
    for scale_filter in ("none", "dsst"):
        tracker = SiamFCTracker("siamfc_lite0_fast", device="cpu",
                                overrides=["track.scale_mode=pyramid", f"track.scale_filter={scale_filter}"])
        tracker.init(frames[0], truth[0])
        boxes = np.array([tracker.update(frame) for frame in frames[1:]])
        errors[scale_filter] = np.abs(np.log(boxes[:, 2:] / truth[1:, 2:]))
    assert errors["dsst"].mean() < 0.03 and errors["dsst"].max() < 0.06, errors["dsst"].max()
    assert errors["dsst"].mean() < errors["none"].mean() / 3


def test_the_exemplar_pyramid_takes_one_search_crop_a_target(tmp_path):
    clip = make_clip(num_frames=3)
    tracker = SiamFCTracker("siamfc_lite0_fast", device="cpu", overrides=["track.scale_mode=exemplar"])
    calls = []
    tracker.model.backend.search_branch.register_forward_hook(lambda m, inp, out: calls.append(inp[0].shape[0]))
    tracker.init(clip.frames[0], np.array([clip.boxes[0], [40, 40, 60, 50]]))
    calls.clear()  # the exemplars' crops
    tracker.update(clip.frames[1])
    assert sum(calls) == 2
