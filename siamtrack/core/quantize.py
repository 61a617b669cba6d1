"""int8 branches for the onnxruntime-int8 backend: static quantisation, calibrated on the synthetic clip.

Weights become int8 per output channel and activations uint8 per tensor, with the ranges seen on
crops of the synthetic clip around its true boxes: no data to download, and the ranges follow
whichever weights are loaded. ONNX Runtime then runs the convolutions on its int8 kernels. Both
branches are quantised, although only the search branch runs per frame: correlating float exemplar
features with int8 search features cost the default model 0.03 precision in cross-validation, the
same rounding on both sides about none. The boxes are no longer exactly the float ones, so this
backend's accuracy is measured (success AUC), not asserted equal.

Calibration takes seconds, so each quantised branch is kept on disk (`cache_dir()`), keyed by the float
model it was made from (its weights and every setting that shapes its graph), the calibration's settings and
the quantiser's version: a later build of the same model reads it instead.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from tqdm import tqdm

from ..config import TrackConfig
from ..files import write_atomic
from ..synthetic import make_clip
from .crops import context_crop

CACHE_FORMAT = 1  # part of every cache key: raise it when the quantisation recipe changes


def calibration_batches(track: TrackConfig, size: int) -> Iterator[np.ndarray]:
    """One float NCHW crop of side `size` per synthetic frame, centred on the true box and covering what
    the tracker's crop of that side covers (exemplar_size: the exemplar; search_size: a search region).

    The quantiser runs the model on each crop as it takes it, which can take seconds: a progress bar
    (stderr) follows them, and goes when done.
    """
    clip = make_clip(num_frames=track.int8_calibration_frames)
    crop = np.empty((size, size, 3), np.uint8)
    crops = tqdm(zip(clip.frames, clip.boxes), total=len(clip.frames), desc=f"int8 calibration, {size} px",
                 unit="crop", leave=False)
    for frame, box in crops:
        context_crop(frame, box, track.context, size / track.exemplar_size, size, out=crop)
        yield crop.transpose(2, 0, 1)[None].astype(np.float32)


def quantize_int8(model: bytes, input_name: str, batches: Iterable[np.ndarray]) -> bytes:
    """The ONNX `model` quantised to int8 (QDQ), its activation ranges the min/max seen on `batches`."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Batches(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(batches)

        def get_next(self) -> dict | None:
            batch = next(self.batches, None)
            return None if batch is None else {input_name: batch}

    with tempfile.TemporaryDirectory() as tmp:
        source, prepared, target = (Path(tmp) / name for name in ("float32.onnx", "prepared.onnx", "int8.onnx"))
        source.write_bytes(model)
        quant_pre_process(source, prepared)  # shapes inferred and the graph tidied, as the quantiser expects
        quantize_static(prepared, target, Batches(), quant_format=QuantFormat.QDQ, per_channel=True,
                        weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8)
        return target.read_bytes()


def cache_dir() -> Path:
    """Where quantised branches are kept: $XDG_CACHE_HOME/siamtrack/int8, or ~/.cache/siamtrack/int8."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "siamtrack" / "int8"


def cached_int8(model: bytes, input_name: str, track: TrackConfig, size: int) -> bytes:
    """The float ONNX `model` quantised to int8, calibrated on crops of side `size` (calibration_batches);
    read from the cache when the same model was quantised with the same settings before, else made and kept."""
    from onnxruntime import __version__ as quantiser
    settings = [CACHE_FORMAT, quantiser, input_name, size, track.exemplar_size, track.context,
                track.int8_calibration_frames]
    key = hashlib.sha256(model + json.dumps(settings).encode()).hexdigest()
    path = cache_dir() / f"{key[:32]}.onnx"
    if path.is_file():
        return path.read_bytes()
    quantised = quantize_int8(model, input_name, calibration_batches(track, size))
    keep(path, quantised)
    return quantised


def keep(path: Path, data: bytes) -> None:
    """Write `data` to `path` whole or not at all; a cache that cannot be written is no error, the next build
    calibrates again."""
    try:
        write_atomic(path, data)
    except OSError:
        pass
