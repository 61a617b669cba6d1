"""Model: a network built for tracking, once, and shared by every tracker that runs it.

    model = Model.load("siamfc_lite0_fast", backend="torch")    # seconds: load, fold, trace
    trackers = [SiamFCTracker(model) for _ in range(8)]         # cheap: targets and buffers only

A Model holds the config, the network as trained (its levels of features, siamtrack.models.levels), the
backend that runs it on its device (siamtrack.core.backends), the weights file it came from, and the
constants its trackers read their response maps with (siamtrack.core.response.ResponseGrid). Building one
changes nothing outside it. Trackers on several threads may share one where its backend is `thread_safe`
(eager and torch); ONNX Runtime's branches reuse their output buffers, so each thread needs its own.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import torch

from ..config import Config, TrackConfig
from ..errors import ConfigError
from ..inputs import resolve_device
from ..models import SiameseNet
from ..models.levels import LevelNet, tracking_net
from ..text import status
from .backends import BACKENDS, DEFAULT_BACKEND, Backend, eager_backend, example_inputs, torch_backend
from .checkpoint import build_net
from .onnx import onnxruntime_backend
from .response import ResponseGrid


class Model:
    def __init__(self, cfg: Config, net: LevelNet, backend: Backend, device: torch.device,
                 weights_path: Path | None):
        self.cfg = cfg
        self.net = net  # as trained, in eval mode on `device`
        self.backend = backend
        self.device = device
        self.weights_path = weights_path
        self.grid = ResponseGrid(cfg.track, self._response_size(), device)  # shared by its trackers

    @classmethod
    def load(cls, config: str | Path | Config | None = None, weights: str | Path | None = None, device: str = "auto",
             backend: str = DEFAULT_BACKEND, overrides: Iterable[str] = (), quiet: bool = False) -> Model:
        """The model a config and weights describe (siamtrack.core.checkpoint.build_net: a shipped config name,
        a YAML path or a Config, with `overrides`; default: the shipped default model, or the config the
        weights store), run by `backend` on `device`. On a terminal a status line says so while it builds
        (loading, tracing or calibrating takes seconds), unless `quiet`."""
        label = Path(config.name if isinstance(config, Config) else config or "default config").stem
        with status(f"building the model ({label}, {backend} backend)", quiet):
            cfg, net, weights_path = build_net(config, weights, overrides)
            return cls.from_net(cfg, net, weights_path, resolve_device(device), backend)

    @classmethod
    def from_net(cls, cfg: Config, net: SiameseNet, weights_path: Path | None, device: torch.device,
                 backend: str = DEFAULT_BACKEND) -> Model:
        """A network already built from `cfg` (and loaded from `weights_path`), run by `backend` on `device`."""
        levels = tracking_net(net, cfg.model).to(device).eval()
        return cls(cfg, levels, build_backend(levels, backend, cfg.track, device), device, weights_path)

    @property
    def name(self) -> str:
        """The config's name: a shipped config's, or a YAML file's stem."""
        return Path(self.cfg.name).stem

    @property
    def total_stride(self) -> int:
        return self.net.total_stride

    @property
    def levels(self) -> int:
        """Levels of features correlated a frame: 1, or 2 with model.fusion."""
        return self.net.levels

    @torch.inference_mode()
    def _response_size(self) -> int:
        """The side of a response map at the config's crop sizes."""
        z, x = example_inputs(self.cfg.track, self.device)
        return self.backend.correlate(self.backend.embed_exemplar(z), self.backend.embed_search(x))[0].shape[-1]

    def __repr__(self) -> str:
        return f"Model({self.name!r}, backend={self.backend.name!r}, device={str(self.device)!r})"


def build_backend(net: LevelNet, backend: str, track: TrackConfig, device: torch.device) -> Backend:
    """`net` (in eval mode, on `device`) as `backend` runs it."""
    if backend == "eager":
        built = eager_backend(net)
    elif backend == "torch":
        built = torch_backend(net, track, device)
    elif backend in ("onnxruntime", "onnxruntime-int8"):
        built = onnxruntime_backend(net, track, device, int8=backend == "onnxruntime-int8")
    else:
        raise ConfigError(f"unknown backend '{backend}' (known: {', '.join(BACKENDS)})")
    built.search_batch = track.cpu_search_batch if device.type == "cpu" else 0
    return built
