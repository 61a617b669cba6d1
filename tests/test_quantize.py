"""int8 calibration data: its crops and the progress bar that follows them; the quantised models kept on disk."""
import numpy as np
import pytest
import torch

from siamtrack.config import ModelConfig, TrackConfig
from siamtrack.core import quantize
from siamtrack.core.model import build_backend
from siamtrack.core.quantize import calibration_batches
from siamtrack.models import SiameseNet
from siamtrack.models.levels import single_level


def test_calibration_crops_come_with_a_progress_bar_on_stderr_that_goes_when_done(capsys):
    track = TrackConfig(int8_calibration_frames=3)
    batches = list(calibration_batches(track, track.exemplar_size))
    assert len(batches) == 3 and all(b.shape == (1, 3, 127, 127) and b.dtype == np.float32 for b in batches)
    out, err = capsys.readouterr()
    assert out == "" and "int8 calibration, 127 px" in err
    assert err.endswith("\r")  # leave=False: the bar is wiped, not left as a line in logs


def test_the_second_int8_build_reads_the_cache_and_skips_calibration(monkeypatch, tmp_path):
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    torch.manual_seed(0)
    net = single_level(SiameseNet(ModelConfig(backbone="lite0_s3", exemplar_crop=8)).eval())
    track = TrackConfig(int8_calibration_frames=3)
    first = build_backend(net, "onnxruntime-int8", track, torch.device("cpu"))
    assert len(list((tmp_path / "siamtrack" / "int8").glob("*.onnx"))) == 2  # the exemplar and search branches

    def no_calibration(*args):
        raise AssertionError("calibrated again")
    monkeypatch.setattr(quantize, "quantize_int8", no_calibration)
    second = build_backend(net, "onnxruntime-int8", track, torch.device("cpu"))
    x = torch.rand(3, 3, 255, 255) * 255
    with torch.inference_mode():
        assert torch.equal(second.embed_search(x)[0], first.embed_search(x)[0])
    # another model, or other calibration settings, is another key: calibrated anew
    with pytest.raises(AssertionError, match="calibrated again"):
        build_backend(net, "onnxruntime-int8", TrackConfig(int8_calibration_frames=4), torch.device("cpu"))
