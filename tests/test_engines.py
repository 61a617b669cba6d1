import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import OTB_MINI, require
from got10k.utils.metrics import rect_iou
from PIL import Image

from siamtrack import SiamFCTracker
from siamtrack.cli import main
from siamtrack.config import ModelConfig, TrackConfig
from siamtrack.core.backends import EXACT_BACKENDS, example_inputs, fold_batchnorm
from siamtrack.core.frame_loop import track_frames
from siamtrack.core.model import build_backend
from siamtrack.core.onnx import export_onnx
from siamtrack.core.response import BicubicUpsampler, bicubic_matrix
from siamtrack.datasets import load_sequences
from siamtrack.errors import ConfigError
from siamtrack.models import SiameseNet
from siamtrack.models.levels import single_level

BOX_TOLERANCE_PX = 0.01
OTB_FRAMES = 30
CLIP_FRAMES = 30
FAST_BACKENDS = [b for b in EXACT_BACKENDS if b != "eager"]
MIN_IOU = 0.6


def needs(backend: str) -> None:
    if backend.startswith("onnxruntime"):
        pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")


def plain_interpolation(tracker: SiamFCTracker) -> SiamFCTracker:
    """The tracker with F.interpolate for its upsampling, from each init on: with the eager backend, the
    original SiamFC path."""
    size, resize = (tracker.peaks.upscale_size,) * 2, tracker.peaks.resize

    def plain(targets: int) -> None:
        resize(targets)
        tracker.peaks._upsampler = lambda r: F.interpolate(r, size=size, mode="bicubic", align_corners=False)[:, 0]

    tracker.peaks.resize = plain
    return tracker


def boxes(tracker: SiamFCTracker, frames, box) -> np.ndarray:
    return np.array([result for _, _, result, _ in track_frames(tracker, frames, box)])


def assert_same_boxes(config: str, backend: str, frames, box) -> None:
    reference = plain_interpolation(SiamFCTracker(config, device="cpu", backend="eager"))
    fast = SiamFCTracker(config, device="cpu", backend=backend)
    assert fast.model.backend.name == backend
    expected, got = boxes(reference, frames, box), boxes(fast, frames, box)
    assert np.abs(got - expected).max() < BOX_TOLERANCE_PX




@pytest.fixture(scope="module")
def random_net():
    torch.manual_seed(0)
    net = SiameseNet(ModelConfig(backbone="lite0_s3", exemplar_crop=8)).eval()
    for module in net.modules():  # batch norm statistics away from identity, so folding is tested
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    return single_level(net)


def test_folded_batchnorm_keeps_the_outputs(random_net):
    folded = fold_batchnorm(random_net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in random_net.modules())  # folded on a copy
    z, x = example_inputs(TrackConfig(), torch.device("cpu"))
    z, x = z.uniform_(0, 255), x.uniform_(0, 255)
    with torch.inference_mode():
        assert torch.allclose(folded(z, x)[0], random_net(z, x)[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("backbone", ["alexnet", "lite0_s3", "lite0_s5d"])
def test_every_backbone_declares_all_its_batch_norms_to_fold(backbone):
    """A batch norm left unfolded still computes right, only slower: every one must be in a known pair."""
    net = single_level(SiameseNet(ModelConfig(backbone=backbone, adjust=16)))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fold_batchnorm(net).modules())


def test_matrix_upsampling_equals_interpolate():
    responses = torch.randn(3, 1, 25, 25)
    expected = F.interpolate(responses, size=(400, 400), mode="bicubic", align_corners=False)[:, 0]
    rows = bicubic_matrix(25, 400)
    assert torch.allclose(BicubicUpsampler(rows, rows.T.contiguous(), 3)(responses), expected, atol=1e-5)


@pytest.mark.parametrize("backend", EXACT_BACKENDS)
def test_every_exact_backend_embeds_like_the_network(random_net, backend):
    needs(backend)
    track = TrackConfig()
    engine = build_backend(random_net, backend, track, torch.device("cpu"))
    z, x = example_inputs(track, torch.device("cpu"))
    z, x = z.uniform_(0, 255), x.uniform_(0, 255)
    with torch.inference_mode():
        (expected,) = random_net(z, x)
        (got,) = engine.correlate(engine.embed_exemplar(z), engine.embed_search(x))
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_backends_give_the_eager_boxes_on_the_synthetic_clip(clip, backend):
    needs(backend)
    assert_same_boxes("siamfc_lite0_fast", backend, clip.frames, clip.boxes[0])


@pytest.mark.slow
@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_backends_give_the_eager_boxes_on_a_real_sequence(backend):
    needs(backend)
    sequence = load_sequences(require(OTB_MINI) / "Crossing")[0]
    frames = [Image.open(path) for path in sequence.frames[:OTB_FRAMES]]
    assert_same_boxes("siamfc_lite0", backend, frames, sequence.boxes[0])


def test_int8_tracks_the_synthetic_target(clip):
    needs("onnxruntime-int8")
    tracker = SiamFCTracker("siamfc_lite0_fast", device="cpu", backend="onnxruntime-int8")
    assert rect_iou(boxes(tracker, clip.frames, clip.boxes[0])[1:], clip.boxes[1:]).mean() > MIN_IOU


def test_int8_is_cpu_only(random_net):
    with pytest.raises(ConfigError, match="CPU only"):
        build_backend(random_net, "onnxruntime-int8", TrackConfig(), torch.device("cuda"))


def test_unknown_backend_is_a_config_error(random_net):
    with pytest.raises(ConfigError, match="unknown backend 'tensorrt'"):
        build_backend(random_net, "tensorrt", TrackConfig(), torch.device("cpu"))


def test_missing_onnxruntime_is_one_clear_error(random_net, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what an import finds when the package is absent
    with pytest.raises(ConfigError, match=r"pip install 'siamtrack\[onnx\]'"):
        build_backend(random_net, "onnxruntime", TrackConfig(), torch.device("cpu"))


def test_onnx_export_has_a_dynamic_batch(random_net, tmp_path):
    onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
    ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    paths = export_onnx(random_net, TrackConfig(), tmp_path)
    assert sorted(p.name for p in paths.values()) == ["exemplar.onnx", "search.onnx"]
    model = onnx.load(paths["search"])
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    session = ort.InferenceSession(str(paths["search"]), providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        x = torch.rand(batch, 3, 255, 255) * 255
        (features,) = session.run(None, {"search": x.numpy()})
        with torch.inference_mode():
            (expected,) = random_net.embed_search(x)
        assert np.allclose(features, expected.numpy(), rtol=1e-4, atol=1e-4)


def test_export_command_writes_both_branches(tmp_path, capsys):
    pytest.importorskip("onnx", reason="the onnx extra is not installed")
    assert main(["export", "--format", "onnx", "--config", "siamfc_lite0_fast", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "exemplar.onnx").is_file() and (tmp_path / "search.onnx").is_file()
    assert "opset 17" in capsys.readouterr().out


def test_update_leaves_process_wide_settings_alone(clip):
    """Thread count and cuDNN's TF32 flag are the process's: flipping them per call raced between
    trackers in two threads, so an update must see, and leave, the caller's."""
    tracker = SiamFCTracker("siamfc_lite0_fast", device="cpu", backend="eager")
    seen = []
    backend = tracker.model.backend
    for module in (backend.exemplar_branch, backend.search_branch, backend.head):
        module.register_forward_hook(lambda *_: seen.append((torch.get_num_threads(),
                                                             torch.backends.cudnn.allow_tf32)))
    caller = torch.get_num_threads(), torch.backends.cudnn.allow_tf32
    boxes(tracker, clip.frames[:3], clip.boxes[0])
    correlations = len(tracker.warps.steps) if tracker.warps else 1  # a turned model correlates each neighbour
    calls = 1 + 2 * (1 + correlations)  # the exemplar once, then two updates
    assert seen == [caller] * calls and (torch.get_num_threads(), torch.backends.cudnn.allow_tf32) == caller
