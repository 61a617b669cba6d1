"""Inference backends behind one small interface: an Engine runs the two branches and the head.

An Engine is what SiamFCTracker calls: `embed_exemplar(z)` once per target, `embed_search(x)` and
`correlate(kernel, features)` once per frame. Inputs are float NCHW RGB batches (0-255) on the engine's
device; outputs stay on that device.

- eager: the plain SiameseNet as trained, kept as the reference every other backend is held to.
- torch: batch norm folded into the convolutions, each branch traced, frozen and optimised for
  inference (TorchScript; on a CPU the graph runs on oneDNN, which is what makes the depthwise and
  dilated convolutions of the Lite0 trunks fast).
- onnxruntime: the folded branches exported to ONNX and run by ONNX Runtime (the `onnx` extra).
- onnxruntime-int8: the same with both branches quantised to int8 (siamtrack.quantize); CPU
  only, opt-in, and the one backend whose boxes differ from eager's: its accuracy is measured
  (success AUC), not asserted equal.
"""
from __future__ import annotations

import copy
import importlib
import io
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.fx.experimental.optimization import fuse

from .config import Config, TrackConfig
from .errors import ConfigError
from .models import SiameseNet
from .models.backbones import INPUT_NORMS
from .models.levels import TwoLevelNet

EXACT_BACKENDS = ("eager", "torch", "onnxruntime")  # the same boxes, to float rounding
BACKENDS = (*EXACT_BACKENDS, "onnxruntime-int8")
DEFAULT_BACKEND = "torch"  # the fastest backend that needs nothing beyond torch
ONNX_OPSET = 17
# each exported branch, as <branch>.onnx: its input and output names
ONNX_NAMES = {"exemplar": ("exemplar", "kernel"), "search": ("search", "features")}
FUSION_OUTPUT = "fusion_{}"  # a fused model's (model.fusion) second output: its second level's kernel or features
# TorchScript's profiling executor specialises a graph over its first calls; run them at build time
# so that no tracked frame pays for them.
TORCHSCRIPT_PROFILING_RUNS = 2
ORT_LOG_ERRORS = 3  # ONNX Runtime's severity levels: 0 verbose, 1 info, 2 warning, 3 error


class ExemplarBranch(nn.Module):
    """SiameseNet.embed_exemplar as a module of its own, to trace or export."""

    def __init__(self, net: SiameseNet):
        super().__init__()
        self.net = net

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net.embed_exemplar(z)


class SearchBranch(nn.Module):
    """SiameseNet.embed_search as a module of its own, to trace or export."""

    def __init__(self, net: SiameseNet):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.embed_search(x)


def use_float32_convolutions() -> None:
    """cuDNN convolutions in full float32, for the whole process. By default cuDNN rounds float32
    convolutions to TF32 (a 10-bit mantissa) on Ampere and later GPUs: enough to move a response peak,
    so that backends which fold batch norm differently part ways. Set once, when a GPU engine is built,
    not around each call: a flag flipped and restored per call races between trackers in two threads."""
    torch.backends.cudnn.allow_tf32 = False


class Engine(nn.Module):
    """The exemplar branch, the search branch (`embed_x`) and the cross-correlation head, as one backend runs them.

    `search_batch`: the most search crops one call of the search branch takes; a larger batch is run in
    parts of that size (0: in one call). On a CPU a batch past a few crops costs more per crop, not
    less: its activations no longer fit the caches (siamtrack bench --targets measures it).
    """

    def __init__(self, backend: str, embed_z: nn.Module, embed_x: nn.Module, head: nn.Module):
        super().__init__()
        self.backend = backend
        self.embed_z = embed_z
        self.embed_x = embed_x
        self.head = head
        self.search_batch = 0  # build_engine sets it for the device

    def embed_exemplar(self, z: torch.Tensor) -> torch.Tensor:
        return self.embed_z(z)

    def embed_search(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if not self.search_batch or x.shape[0] <= self.search_batch:
            return self.embed_x(x)
        # each part copied out: the onnxruntime branches hand back one output buffer, call after call
        parts = [copied(self.embed_x(part)) for part in x.split(self.search_batch)]
        if isinstance(parts[0], tuple):  # two levels of features (model.fusion): joined level by level
            return tuple(torch.cat(level) for level in zip(*parts))
        return torch.cat(parts)

    def correlate(self, kernel: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return self.head(kernel, features)


def copied(outputs: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """A copy of a branch's output, or of each level's (model.fusion)."""
    return tuple(o.clone() for o in outputs) if isinstance(outputs, tuple) else outputs.clone()


def fold_batchnorm(net: SiameseNet) -> SiameseNet:
    """A copy of `net` whose batch norms are folded into the convolutions before them (eval mode)."""
    folded = copy.deepcopy(net).eval()
    folded.embed_x = fuse(folded.embed_x)
    if folded.embed_z is not None:
        folded.embed_z = fuse(folded.embed_z)
    return folded


def example_inputs(track: TrackConfig, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """An exemplar batch (1 crop) and a search batch (one crop per scale) of the tracker's sizes."""
    z = torch.zeros(1, 3, track.exemplar_size, track.exemplar_size, device=device)
    x = torch.zeros(track.scale_num, 3, track.search_size, track.search_size, device=device)
    return z, x


@contextmanager
def quiet_tracing():
    """Tracing without its warning about the exemplar's centre crop, which reads the feature size:
    the config fixes that size, so the constant the trace records is right."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        yield


class Frozen(nn.Module):
    """A frozen TorchScript graph as a plain module, so that forward hooks still see every call."""

    def __init__(self, graph: torch.jit.ScriptModule):
        super().__init__()
        self.graph = graph

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.graph(x)


def freeze(branch: nn.Module, example: torch.Tensor) -> Frozen:
    """Trace `branch` on `example`, freeze its weights into the graph and optimise it for inference."""
    with torch.no_grad(), quiet_tracing():
        traced = torch.jit.trace(branch.eval(), example, check_trace=False)
        graph = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
        for _ in range(TORCHSCRIPT_PROFILING_RUNS):
            graph(example)
    return Frozen(graph)


def eager_engine(net: SiameseNet) -> Engine:
    return Engine("eager", ExemplarBranch(net), SearchBranch(net), net.head)


def torch_engine(net: SiameseNet, track: TrackConfig, device: torch.device) -> Engine:
    folded = fold_batchnorm(net)
    z, x = example_inputs(track, device)
    return Engine("torch", freeze(ExemplarBranch(folded), z), freeze(SearchBranch(folded), x), folded.head)


def import_onnx(module: str):
    """onnx or onnxruntime, or a one-line error naming the extra that installs them."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"ONNX export and the onnxruntime backend need the onnx extra "
                          f"({module} is not installed): pip install 'siamtrack[onnx]'") from None


def onnx_names(kind: str, net: nn.Module) -> tuple[str, ...]:
    """A branch's input name and its output names: one output, or one a level with model.fusion."""
    name, output = ONNX_NAMES[kind]
    return (name, output, FUSION_OUTPUT.format(output)) if isinstance(net, TwoLevelNet) else (name, output)


def export_branch(branch: nn.Module, example: torch.Tensor, names: tuple[str, ...], target) -> None:
    """Write `branch` as ONNX (opset ONNX_OPSET) to a path or file object, its batch dimension dynamic;
    `names`: its input's, then its outputs'.

    This is the TorchScript-based exporter: the torch.export-based one needs onnxscript as well.
    """
    import_onnx("onnx")
    batch = {0: "batch"}
    with quiet_tracing(), torch.no_grad():
        torch.onnx.export(branch, (example,), target, input_names=[names[0]], output_names=list(names[1:]),
                          dynamic_axes={name: batch for name in names}, opset_version=ONNX_OPSET, dynamo=False)


def onnx_inputs(cfg: Config) -> str:
    """What the exported graphs take: the crops as the tracker hands them over, normalised inside."""
    crops = (f"float32 NCHW RGB crops with 0-255 pixel values (exemplar Nx3x{cfg.track.exemplar_size}x"
             f"{cfg.track.exemplar_size}, search Nx3x{cfg.track.search_size}x{cfg.track.search_size})")
    if cfg.model.backbone == "alexnet":
        return crops + ", used as they are (AlexNet takes raw pixels)"
    mean, std = (" ".join(f"{v:g}" for v in values) for values in INPUT_NORMS[cfg.model.input_norm])
    return crops + f", normalised inside the graph ((x - [{mean}]) / [{std}])"


def export_onnx(net: SiameseNet, track: TrackConfig, out_dir: str | Path) -> dict[str, Path]:
    """Write the exemplar and search branches (batch norm folded) to out_dir; the paths, by branch."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {kind: out / f"{kind}.onnx" for kind in ONNX_NAMES}
    for kind, (branch, example) in cpu_branches(net, track).items():
        export_branch(branch, example, onnx_names(kind, net), paths[kind])
    return paths


def cpu_branches(net: SiameseNet, track: TrackConfig) -> dict[str, tuple[nn.Module, torch.Tensor]]:
    """The folded exemplar and search branches on the CPU, each with an example input: what is exported."""
    folded = fold_batchnorm(net).cpu()
    z, x = example_inputs(track, torch.device("cpu"))
    return {"exemplar": (ExemplarBranch(folded), z), "search": (SearchBranch(folded), x)}


class OrtBranch(nn.Module):
    """One ONNX branch run by ONNX Runtime, reading the input tensor and writing its output tensors in place
    (one, or one a level of features with model.fusion).

    The output buffers are reused: each call overwrites what the previous call returned.
    """

    def __init__(self, model: bytes, output_shapes: list[torch.Size], device: torch.device):
        super().__init__()
        ort = import_onnx("onnxruntime")
        provider = "CUDAExecutionProvider" if device.type == "cuda" else "CPUExecutionProvider"
        if provider not in ort.get_available_providers():
            raise ConfigError(f"the onnxruntime backend cannot run on {device}: this onnxruntime "
                              f"has no {provider}")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = torch.get_num_threads()  # the same budget as torch
        options.inter_op_num_threads = 1  # a chain of convolutions: nothing to run side by side
        # idle pool threads would otherwise spin on the cores the head and post-processing run on next
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = ORT_LOG_ERRORS  # not its notes on initialisers the exporter left unused
        self.session = ort.InferenceSession(model, options, providers=[provider])
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [output.name for output in self.session.get_outputs()]
        self.binding = self.session.io_binding()
        self.device_type, self.device_id = device.type, device.index or 0
        self._bind_outputs([torch.empty(shape, device=device) for shape in output_shapes])

    def _bind(self, name: str, tensor: torch.Tensor, bind) -> None:
        bind(name, self.device_type, self.device_id, np.float32, list(tensor.shape), tensor.data_ptr())

    def _bind_outputs(self, outputs: list[torch.Tensor]) -> None:
        self.outputs = outputs
        for name, output in zip(self.output_names, outputs):
            self._bind(name, output, self.binding.bind_output)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if x.shape[0] != self.outputs[0].shape[0]:  # another batch (several targets): output buffers to fit
            self._bind_outputs([torch.empty((x.shape[0], *o.shape[1:]), device=o.device) for o in self.outputs])
        self._bind(self.input_name, x.contiguous(), self.binding.bind_input)
        self.session.run_with_iobinding(self.binding)
        return self.outputs[0] if len(self.outputs) == 1 else tuple(self.outputs)


def onnx_model(branch: nn.Module, example: torch.Tensor, names: tuple[str, ...]) -> bytes:
    """`branch` as an ONNX model in memory."""
    model = io.BytesIO()
    export_branch(branch, example, names, model)
    return model.getvalue()


def output_shapes(outputs: torch.Tensor | tuple[torch.Tensor, ...]) -> list[torch.Size]:
    return [o.shape for o in outputs] if isinstance(outputs, tuple) else [outputs.shape]


def onnxruntime_engine(net: SiameseNet, track: TrackConfig, device: torch.device, int8: bool = False) -> Engine:
    backend = "onnxruntime-int8" if int8 else "onnxruntime"
    if int8 and device.type != "cpu":
        raise ConfigError(f"the {backend} backend runs on the CPU only")
    import_onnx("onnxruntime")
    branches = cpu_branches(net, track)
    models = {kind: onnx_model(branch, example, onnx_names(kind, net)) for kind, (branch, example) in branches.items()}
    if int8:
        from .quantize import cached_int8
        sizes = {"exemplar": track.exemplar_size, "search": track.search_size}
        models = {kind: cached_int8(model, ONNX_NAMES[kind][0], track, sizes[kind]) for kind, model in models.items()}
    with torch.no_grad():
        runners = {kind: OrtBranch(models[kind], output_shapes(branch(example)), device)
                   for kind, (branch, example) in branches.items()}
    return Engine(backend, runners["exemplar"], runners["search"], net.head)


def build_engine(net: SiameseNet, backend: str, track: TrackConfig, device: torch.device) -> Engine:
    """`net` (in eval mode, on `device`) as `backend` runs it."""
    if device.type == "cuda":
        use_float32_convolutions()
    if backend == "eager":
        engine = eager_engine(net)
    elif backend == "torch":
        engine = torch_engine(net, track, device)
    elif backend in ("onnxruntime", "onnxruntime-int8"):
        engine = onnxruntime_engine(net, track, device, int8=backend == "onnxruntime-int8")
    else:
        raise ConfigError(f"unknown backend '{backend}' (known: {', '.join(BACKENDS)})")
    engine.search_batch = track.cpu_search_batch if device.type == "cpu" else 0
    return engine
