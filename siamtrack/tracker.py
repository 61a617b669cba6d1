"""SiamFCTracker: the tracking loop (scale pyramid, cosine window, damping). Knows nothing of training."""
from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from got10k.trackers import Tracker

from .checkpoint import checkpoint_config, load_checkpoint, load_weights
from .config import Config, load_config, resolve_weights_path
from .crops import context_size, crop_and_resize
from .engines import DEFAULT_BACKEND, build_engine, example_inputs
from .errors import BoxError, ConfigError, FrameError, NotInitializedError
from .models import SiameseNet


def as_rgb(frame) -> np.ndarray:
    """HxWx3 uint8 RGB from an RGB/RGBA/grayscale ndarray (8 or 16 bit) or a PIL image."""
    if hasattr(frame, "convert"):  # PIL image
        frame = np.asarray(frame.convert("RGB"))
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"a frame must be a numpy array or PIL image, got {type(frame).__name__}")
    if frame.dtype == np.uint16:
        frame = (frame >> 8).astype(np.uint8)
    elif frame.dtype != np.uint8:
        raise FrameError(f"frames must be uint8 or uint16, got {frame.dtype}")
    if frame.ndim == 2:
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    elif frame.ndim == 3 and frame.shape[2] == 4:
        frame = frame[:, :, :3]
    elif frame.ndim == 3 and frame.shape[2] == 1:
        frame = np.repeat(frame, 3, axis=2)
    if frame.ndim != 3 or frame.shape[2] != 3 or min(frame.shape[:2]) < 1:
        raise FrameError(f"a frame must be HxW, HxWx3 or HxWx4, got shape {frame.shape}")
    return frame


def check_box(box, width: int, height: int) -> np.ndarray:
    """A finite x, y, w, h box of positive size that overlaps the frame, as float64."""
    try:
        box = np.asarray(box, dtype=np.float64).reshape(4)
    except (TypeError, ValueError):
        raise BoxError(f"a box must be 4 numbers x, y, w, h, got {box!r}") from None
    if not np.all(np.isfinite(box)):
        raise BoxError(f"box {box.tolist()} has a non-finite value")
    x, y, w, h = box
    if w <= 0 or h <= 0:
        raise BoxError(f"box {box.tolist()} must have positive width and height")
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        raise BoxError(f"box {box.tolist()} lies outside the {width}x{height} frame")
    return box


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        resolved = None
    if resolved is None or resolved.type not in ("cpu", "cuda"):
        raise ConfigError(f"unknown device '{device}' (use auto, cpu, cuda or cuda:N)")
    if resolved.type == "cuda" and (resolved.index or 0) >= torch.cuda.device_count():
        raise ConfigError(f"device '{device}' is not available here ({torch.cuda.device_count()} CUDA devices); "
                          "use auto or cpu")
    return resolved


def build_net(config: str | Path | Config | None,
              weights: str | Path | None) -> tuple[Config, SiameseNet, Path | None]:
    """The network a config and weights describe, and the weights file used.

    The config defaults to the one stored in the weights; the weights to the ones the config names.
    """
    ckpt = load_checkpoint(weights) if weights else None
    if isinstance(config, Config):
        cfg = config
    elif config is None and ckpt is not None:
        cfg = checkpoint_config(ckpt, weights)
    else:
        cfg = load_config(config)
    if ckpt is None and cfg.weights:
        weights = resolve_weights_path(cfg)
        ckpt = load_checkpoint(weights)
    if ckpt is not None:
        cfg.model.pretrained = False  # the checkpoint supplies every weight
    net = SiameseNet(cfg.model)
    if ckpt is not None:
        load_weights(net, ckpt, weights)
    return cfg, net, Path(weights) if weights else None


# torch can change its thread count between calls on its OpenMP backend (that of the usual builds)
_OPENMP = "parallel backend: OpenMP" in torch.__config__.parallel_info()


@contextmanager
def one_cpu_thread(device: torch.device) -> Iterator[None]:
    """torch on one CPU thread for the duration: for the head and the peak search, whose maps are too
    small to gain from more, while a thread team's synchronisation costs far more than their work
    once other processes hold the cores (ten times more on a loaded 2-core machine)."""
    if device.type != "cpu" or not _OPENMP:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class CropBatch:
    """Crop buffers reused frame after frame: cv2 writes uint8 HxWx3 crops into `host`, and
    `upload()` returns them as the float NCHW batch the network takes, on its device."""

    def __init__(self, count: int, size: int, device: torch.device):
        on_gpu = device.type == "cuda"
        # page-locked on a GPU, so that the upload is one asynchronous DMA copy of the uint8 crops
        self._host = torch.empty((count, size, size, 3), dtype=torch.uint8, pin_memory=on_gpu)
        self.host = self._host.numpy()
        self._staged = torch.empty_like(self._host, device=device) if on_gpu else self._host
        self._input = torch.empty((count, 3, size, size), device=device)

    def upload(self) -> torch.Tensor:
        if self._staged is not self._host:
            self._staged.copy_(self._host, non_blocking=True)
        return self._input.copy_(self._staged.permute(0, 3, 1, 2))


def bicubic_matrix(size_in: int, size_out: int) -> torch.Tensor:
    """The size_out x size_in matrix of F.interpolate's 1-D bicubic resampling (align_corners=False).

    Bicubic resampling is separable, so a map R resized in 2-D is M @ R @ M.T; the matrix is read
    off by resizing the identity along one axis (the other, kept at its size, is left unchanged).
    """
    eye = torch.eye(size_in)[None, None]
    return F.interpolate(eye, size=(size_out, size_in), mode="bicubic", align_corners=False)[0, 0]


class BicubicUpsampler:
    """Bicubic upsampling of the response maps as two matrix products into reused buffers.

    The same numbers as F.interpolate (to float rounding), in a tenth of its time on a CPU.
    """

    def __init__(self, count: int, size_in: int, size_out: int, device: torch.device):
        self._rows = bicubic_matrix(size_in, size_out).to(device)
        self._cols = self._rows.T.contiguous()
        self._half = torch.empty((count, size_out, size_in), device=device)
        self._out = torch.empty((count, size_out, size_out), device=device)

    def __call__(self, responses: torch.Tensor) -> torch.Tensor:
        """N x 1 x r x r responses -> the N x R x R upsampled maps (a buffer, overwritten by the next call)."""
        torch.matmul(self._rows, responses[:, 0], out=self._half)
        return torch.matmul(self._half, self._cols, out=self._out)


class SiamFCTracker(Tracker):
    """SiamFC tracker; a got10k Tracker, so got10k experiments run it unchanged.

    `config`: a shipped config name, a YAML path or a Config (default: the shipped default model).
    `weights`: a checkpoint path (default: the one the config names).
    `backend`: eager, torch or onnxruntime (see siamtrack.engines); all give the same boxes.
    """

    def __init__(self, config: str | Path | Config | None = None, weights: str | Path | None = None,
                 device: str = "auto", name: str = "SiamFC", backend: str = DEFAULT_BACKEND):
        super().__init__(name=name, is_deterministic=True)
        self.cfg, net, self.weights_path = build_net(config, weights)
        self.device = resolve_device(device)
        t = self.cfg.track
        self.net = build_engine(net.to(self.device).eval(), backend, t, self.device)
        offsets = np.arange(t.scale_num) - (t.scale_num - 1) / 2
        self.scale_factors = t.scale_step ** offsets
        self.scale_penalties = torch.tensor(np.where(offsets == 0, 1.0, t.scale_penalty),
                                            dtype=torch.float32, device=self.device)
        response_size = self._response_size()
        self.upscale_size = t.response_up * response_size
        self._upsampler = BicubicUpsampler(t.scale_num, response_size, self.upscale_size, self.device)
        hann = np.hanning(self.upscale_size)
        window = np.outer(hann, hann)
        self.window = torch.tensor(window / window.sum(), dtype=torch.float32, device=self.device)
        self._window_term = t.window_influence * self.window
        self._best = torch.empty((1, self.upscale_size, self.upscale_size), device=self.device)
        self._search_crops = CropBatch(t.scale_num, t.search_size, self.device)
        self._exemplar_crop = CropBatch(1, t.exemplar_size, self.device)
        self.score = float("nan")
        self.kernel = None  # the exemplar's features, set by init

    @torch.inference_mode()
    def _response_size(self) -> int:
        z, x = example_inputs(self.cfg.track, self.device)
        return self.net.correlate(self.net.embed_exemplar(z), self.net.embed_search(x)).shape[-1]

    @torch.inference_mode()
    def init(self, image, box) -> None:
        frame = as_rgb(image)
        height, width = frame.shape[:2]
        x, y, w, h = check_box(box, width, height)
        t = self.cfg.track
        self.frame_size = np.array([width, height], dtype=np.float64)
        self.center = np.array([x + w / 2, y + h / 2])
        # the size within the limits _clamp_state keeps, the frame winning: a box far under a pixel or
        # far past the frame would give an empty or endless exemplar crop and an overflowing scale
        w, h = np.minimum(np.maximum([w, h], t.min_size), t.max_size_ratio * self.frame_size)
        self.base_size = np.array([w, h])
        self.base_search = context_size(w, h, t.context) * t.search_size / t.exemplar_size
        self.scale = 1.0
        self.border = tuple(float(c) for c in frame.reshape(-1, 3).mean(axis=0))
        crop_and_resize(frame, *self.center, context_size(w, h, t.context), t.exemplar_size,
                        self.border, out=self._exemplar_crop.host[0])
        self.kernel = self.net.embed_exemplar(self._exemplar_crop.upload())
        self.score = self.reference_score = float("nan")

    @torch.inference_mode()
    def update(self, image) -> np.ndarray:
        frame = self._checked_frame(image)
        features = self.net.embed_search(self.search_crops(frame))
        return self.step(self.respond(features))

    def _checked_frame(self, image) -> np.ndarray:
        """The frame as RGB, of the size init saw: the box and its limits are in that frame's pixels."""
        if self.kernel is None:
            raise NotInitializedError("call init(frame, box) before update(frame)")
        frame = as_rgb(image)
        width, height = self.frame_size
        if frame.shape[:2] != (height, width):
            raise FrameError(f"a {frame.shape[1]}x{frame.shape[0]} frame, but the tracker was initialised on a "
                             f"{width:.0f}x{height:.0f} one; call init again for frames of another size")
        return frame

    # update() in stages, so that a benchmark can time each one

    def search_crops(self, frame: np.ndarray) -> torch.Tensor:
        """The scale pyramid of search crops around the current centre, as one batch."""
        t = self.cfg.track
        side = self.base_search * self.scale
        for crop, factor in zip(self._search_crops.host, self.scale_factors):
            crop_and_resize(frame, *self.center, side * factor, t.search_size, self.border, out=crop)
        return self._search_crops.upload()

    def respond(self, features: torch.Tensor) -> torch.Tensor:
        """The response maps: the search features cross-correlated with the exemplar's."""
        with one_cpu_thread(self.device):
            return self.net.correlate(self.kernel, features)

    def step(self, responses: torch.Tensor) -> np.ndarray:
        """Move and rescale the target from the responses of the scale pyramid; the new box."""
        t = self.cfg.track
        with one_cpu_thread(self.device):
            scale_id, loc, score = self._locate_peak(responses)
        displacement = (np.array([loc % self.upscale_size, loc // self.upscale_size])
                        - (self.upscale_size - 1) / 2) * t.total_stride / t.response_up
        search_side = self.base_search * self.scale * self.scale_factors[scale_id]
        self.center = self.center + displacement * search_side / t.search_size
        self.scale *= (1 - t.scale_lr) + t.scale_lr * self.scale_factors[scale_id]
        self._clamp_state()
        self.score = score
        if np.isnan(self.reference_score):
            self.reference_score = score
        return self.box()

    def _locate_peak(self, responses: torch.Tensor) -> tuple[int, int, float]:
        """Best scale (penalised), window-weighted peak index in the upsampled map, raw peak score."""
        t = self.cfg.track
        up = self._upsampler(responses)
        peaks = torch.amax(up, dim=(1, 2))
        scale_id = torch.argmax(peaks * self.scale_penalties)
        # in place in reused buffers: no per-frame allocation of a full-size map
        best = torch.index_select(up, 0, scale_id.view(1), out=self._best)[0]
        best -= best.min()
        best /= best.sum() + 1e-16
        best.mul_(1 - t.window_influence).add_(self._window_term)
        loc = torch.argmax(best)
        scale_id, loc, score = torch.stack([scale_id.float(), loc.float(), peaks[scale_id]]).tolist()
        return int(scale_id), int(loc), score

    def _clamp_state(self) -> None:
        """Keep the box at least min_size px and at most max_size_ratio of the frame, centre inside it."""
        t = self.cfg.track
        low = max(t.min_size / self.base_size.min(), 1e-3)
        high = (t.max_size_ratio * self.frame_size / self.base_size).min()
        # in a frame smaller than min_size the frame wins: the box never outgrows the image
        self.scale = float(np.clip(self.scale, min(low, high), high))
        self.center = np.clip(self.center, 0, self.frame_size)

    @property
    def lost(self) -> bool:
        """Whether the last score fell below lost_ratio of the first update's (target likely gone)."""
        return self.score < self.cfg.track.lost_ratio * self.reference_score

    def box(self) -> np.ndarray:
        size = self.base_size * self.scale
        return np.concatenate([self.center - size / 2, size])


def track_frames(tracker: SiamFCTracker, frames, box) -> Iterator[tuple[int, np.ndarray, np.ndarray, float, float]]:
    """Init on the first frame, update on the rest: yields (index, frame, box, score, seconds)."""
    for index, frame in enumerate(frames):
        start = time.perf_counter()
        if index == 0:
            tracker.init(frame, box)
            result = np.asarray(box, dtype=np.float64)
        else:
            result = tracker.update(frame)
        yield index, frame, result, tracker.score, time.perf_counter() - start
