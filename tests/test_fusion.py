"""Fused responses (model.fusion, track.fusion_weight, track.fusion_adaptive): weight 1 is today's tracker
exactly, other weights mix each level's normalised map, the adaptive weight leans to the sharper level, a
level finer than the trunk's output is pooled to its stride, and every backend runs both levels."""
import numpy as np
import pytest
import torch
from got10k.utils.metrics import rect_iou

from siamtrack import SiamFCTracker
from siamtrack.config import TrackConfig, load_config
from siamtrack.core.checkpoint import build_net
from siamtrack.core.fusion import ResponseFusion, sharpness
from siamtrack.core.onnx import export_onnx
from siamtrack.errors import ConfigError
from siamtrack.models.levels import tracking_net
from siamtrack.synthetic import make_clip

CLIP_FRAMES = 6
MIN_IOU = 0.6
TRACKING_CLIP_FRAMES = 30  # the short clip's target jumps too far between frames to score the tracking
FAST = "siamfc_lite0_fast"
DEFAULT = "siamfc_lite0"
# the fast trunk's own 40-channel level after its first block of that stage (stride 8, as its output)
FAST_BLOCKS = ("model.fusion=blocks", "model.fusion_blocks=4")
# its 24-channel level after its first 3 blocks (stride 4), pooled to the output's stride
FAST_POOLED = ("model.fusion=blocks", "model.fusion_blocks=3")
LEVELS = ["40-channel level", "24-channel level pooled"]
FUSED = ("model.fusion=blocks", "track.fusion_adaptive=true")  # the shipped default's adaptive weighing


def boxes(clip, config: str, overrides=(), backend: str = "torch") -> np.ndarray:
    tracker = SiamFCTracker(config, device="cpu", backend=backend, overrides=overrides, quiet=True)
    tracker.init(clip.frames[0], clip.boxes[0])
    return np.array([tracker.update(frame) for frame in clip.frames[1:]])


@pytest.mark.parametrize("backend", ["eager", "torch"])
def test_weight_one_gives_exactly_the_unfused_boxes(clip, backend):
    today = boxes(clip, DEFAULT, ("model.fusion=none",), backend)  # the default's loop before fusion shipped
    assert np.array_equal(boxes(clip, DEFAULT, (*FUSED, "track.fusion_weight=1"), backend), today)
    # the fused path is live: the second level alone tracks otherwise
    assert not np.array_equal(boxes(clip, DEFAULT, (*FUSED, "track.fusion_weight=0"), backend), today)


@pytest.mark.parametrize("level", [FAST_BLOCKS, FAST_POOLED], ids=LEVELS)
@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_fused_boxes_are_the_same_on_every_exact_backend(clip, backend, level):
    if backend.startswith("onnxruntime"):
        pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    sets = (*level, "track.fusion_weight=0.5", "track.fusion_adaptive=true")
    np.testing.assert_allclose(boxes(clip, FAST, sets, backend), boxes(clip, FAST, sets, "eager"), atol=0.01)


def test_int8_runs_both_levels_in_int8_and_tracks_the_target(monkeypatch, tmp_path):
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    clip = make_clip(num_frames=TRACKING_CLIP_FRAMES)
    sets = (*FAST_BLOCKS, "track.fusion_weight=0.5", "track.fusion_adaptive=true")
    tracker = SiamFCTracker(FAST, device="cpu", backend="onnxruntime-int8", overrides=sets, quiet=True)
    kernels = tracker.model.backend.embed_exemplar(torch.zeros(1, 3, 127, 127))
    assert [k.shape[1] for k in kernels] == [40, 40]  # the output and the level, both from the int8 graph
    tracker.init(clip.frames[0], clip.boxes[0])
    tracked = np.array([tracker.update(frame) for frame in clip.frames[1:]])
    assert rect_iou(tracked, clip.boxes[1:]).mean() > MIN_IOU


def test_a_finer_level_is_pooled_to_the_trunks_stride_and_tracks_the_target_alone():
    clip = make_clip(num_frames=TRACKING_CLIP_FRAMES)
    tracker = SiamFCTracker(FAST, device="cpu", overrides=(*FAST_POOLED, "track.fusion_weight=0"), quiet=True)
    kernels = tracker.model.backend.embed_exemplar(torch.zeros(1, 3, 127, 127))
    features = tracker.model.backend.embed_search(torch.zeros(1, 3, 255, 255))
    assert [k.shape[1:] for k in kernels] == [(40, 8, 8), (24, 8, 8)]  # both cropped to the same 8 x 8 centre
    assert [f.shape[1:] for f in features] == [(40, 32, 32), (24, 32, 32)]  # so one response size
    tracker.init(clip.frames[0], clip.boxes[0])
    tracked = np.array([tracker.update(frame) for frame in clip.frames[1:]])
    assert rect_iou(tracked, clip.boxes[1:]).mean() > MIN_IOU  # weight 0: the pooled level places every box


def test_a_fused_model_exports_each_level_as_an_output(tmp_path):
    onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
    cfg, net, _ = build_net(FAST, None, FAST_BLOCKS)
    paths = export_onnx(tracking_net(net, cfg.model).eval(), cfg.track, tmp_path)
    outputs = {kind: [o.name for o in onnx.load(path).graph.output] for kind, path in paths.items()}
    assert outputs == {"exemplar": ["kernel", "fusion_kernel"], "search": ["features", "fusion_features"]}


def pyramid_maps(targets: int, scales: int, size: int = 25) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(targets * scales, 1, size, size) + 0.1


def test_a_fixed_weight_mixes_each_levels_map_over_its_pyramid_maximum():
    track = TrackConfig(fusion_weight=0.7)
    deep, shallow = pyramid_maps(2, 3), 5 * pyramid_maps(2, 3).flip(-1)
    fused = ResponseFusion(track)((deep, shallow)).view(2, 3, 25, 25)
    for target, (d, s) in enumerate(zip(deep.view(2, 3, 25, 25), shallow.view(2, 3, 25, 25))):
        expected = d.max() * (0.7 * d / d.max() + 0.3 * s / s.max())
        assert torch.allclose(fused[target], expected, rtol=1e-5)


def peak(size: int, sigma: float) -> torch.Tensor:
    """A Gaussian bump of width sigma (cells) at the centre of a size x size map, on a small floor."""
    axis = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    return torch.exp(-(axis[:, None] ** 2 + axis[None] ** 2) / (2 * sigma ** 2)) + 0.05


@pytest.mark.parametrize("weight", [0.3, 0.5, 0.7])
def test_the_adaptive_weight_moves_toward_the_sharper_level(weight):
    """One level's response is the other's blurred (a wider peak, the same place): the adaptive share leaves
    the fixed weight for the sharp one, whichever level that is."""
    sharp, blurred = peak(25, 1.5), peak(25, 5.0)
    assert sharpness(sharp[None, None]) > sharpness(blurred[None, None])
    three_scales = lambda m: m.expand(3, 1, 25, 25)  # noqa: E731  one target's pyramid
    fusion = ResponseFusion(TrackConfig(fusion_weight=weight, fusion_adaptive=True))
    share = lambda d, s: fusion.deep_share(three_scales(d).reshape(1, 3, 25, 25),  # noqa: E731
                                           three_scales(s).reshape(1, 3, 25, 25)).item()
    assert share(sharp, blurred) > weight > share(blurred, sharp)
    assert share(sharp, sharp) == pytest.approx(weight)
    at_one = ResponseFusion(TrackConfig(fusion_weight=1.0, fusion_adaptive=True))
    assert at_one.deep_share(blurred.expand(1, 3, 25, 25), sharp.expand(1, 3, 25, 25)).item() == 1.0  # exactly
    fixed = ResponseFusion(TrackConfig(fusion_weight=weight))
    assert fixed.deep_share(sharp.expand(1, 3, 25, 25), blurred.expand(1, 3, 25, 25)).item() == pytest.approx(weight)


def test_the_floor_keeps_the_deep_levels_least_share():
    """Where the shallow response is much the sharper, the adaptive share falls under the floor and stays there."""
    sharp, blurred = (peak(25, sigma).expand(1, 3, 25, 25) for sigma in (1.0, 6.0))
    free = ResponseFusion(TrackConfig(fusion_weight=0.5, fusion_adaptive=True)).deep_share(blurred, sharp).item()
    floored = ResponseFusion(TrackConfig(fusion_weight=0.5, fusion_adaptive=True, fusion_floor=0.4))
    assert free < 0.4 and floored.deep_share(blurred, sharp).item() == pytest.approx(0.4)
    assert floored.deep_share(sharp, blurred).item() > 0.5  # above the floor it changes nothing


@pytest.mark.parametrize("level", [FAST_BLOCKS, FAST_POOLED], ids=LEVELS)
def test_several_fused_targets_get_the_boxes_each_gets_alone(clip, level):
    """The fast model puts its pyramid on the exemplar side (one search crop, three kernels a target): each
    target's three maps are weighed and normalised together, apart from the other target's."""
    sets = (*level, "track.fusion_weight=0.5", "track.fusion_adaptive=true")
    first = clip.boxes[0]
    other = first + [40, 30, 0, 0]
    tracker = SiamFCTracker(FAST, device="cpu", overrides=sets, quiet=True)
    tracker.init(clip.frames[0], np.stack([other, first]))
    together = [tracker.update(frame)[1] for frame in clip.frames[1:4]]
    tracker.remove(0)  # the fused kernels shrink with the targets
    together += [tracker.update(frame)[0] for frame in clip.frames[4:]]
    np.testing.assert_allclose(together, boxes(clip, FAST, sets), atol=1e-4)


@pytest.mark.parametrize("sets, message", [
    (("model.fusion=blocks", "model.fusion_blocks=5"), "between 1 and 4"),  # the trunk's own output
    (("model.fusion=pyramid",), "must be one of none|blocks"),
    (("model.fusion=branch",), "must be one of none|blocks"),  # a second network as a level: retired
    (("track.fusion_weight=1.5",), "between 0 and 1"),
])
def test_a_fusion_that_cannot_be_built_is_a_config_error(sets, message):
    with pytest.raises(ConfigError, match=message):
        SiamFCTracker(FAST, device="cpu", backend="eager", overrides=sets, quiet=True)


def test_a_shipped_config_names_a_fusion_exactly_where_it_weighs_one():
    for name in (DEFAULT, FAST):
        cfg = load_config(name)
        assert (cfg.model.fusion == "none") == (cfg.track.fusion_weight == 1.0), name
