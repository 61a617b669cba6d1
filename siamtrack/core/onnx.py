"""ONNX: the folded branches exported (`siamtrack export`), and run by ONNX Runtime (the onnxruntime and
onnxruntime-int8 backends). Both need the `onnx` extra, imported here only when used."""
from __future__ import annotations

import importlib
import io
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..config import Config, TrackConfig
from ..errors import ConfigError
from ..models.backbones import INPUT_NORMS
from ..models.levels import LevelNet, Levels
from .backends import Backend, example_inputs, exemplar_branch, fold_batchnorm, quiet_tracing, search_branch

ONNX_OPSET = 17
# each exported branch, as <branch>.onnx: its input's name and its first level's output's; a second level's
# output (model.fusion) is named FUSION_OUTPUT after the first
ONNX_NAMES = {"exemplar": ("exemplar", "kernel"), "search": ("search", "features")}
FUSION_OUTPUT = "fusion_{}"
ORT_LOG_ERRORS = 3  # ONNX Runtime's severity levels: 0 verbose, 1 info, 2 warning, 3 error


def import_onnx(module: str):
    """onnx or onnxruntime, or a one-line error naming the extra that installs them."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"ONNX export and the onnxruntime backend need the onnx extra "
                          f"({module} is not installed): pip install 'siamtrack[onnx]'") from None


def onnx_names(kind: str, net: LevelNet) -> tuple[str, ...]:
    """A branch's input name and its output names: one a level."""
    name, output = ONNX_NAMES[kind]
    return (name, output, *(FUSION_OUTPUT.format(output) for _ in range(net.levels - 1)))


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
    """What the exported graphs take and give: the crops as the tracker hands them over, normalised inside;
    with model.fusion, a second level's kernel and features beside the first's."""
    crops = (f"float32 NCHW RGB crops with 0-255 pixel values (exemplar Nx3x{cfg.track.exemplar_size}x"
             f"{cfg.track.exemplar_size}, search Nx3x{cfg.track.search_size}x{cfg.track.search_size})")
    if cfg.model.backbone == "alexnet":
        text = crops + ", used as they are (AlexNet takes raw pixels)"
    else:
        mean, std = (" ".join(f"{v:g}" for v in values) for values in INPUT_NORMS[cfg.model.input_norm])
        text = crops + f", normalised inside the graph ((x - [{mean}]) / [{std}])"
    if cfg.model.fusion == "blocks":
        text += (f"; outputs: kernel and features, and {FUSION_OUTPUT.format('kernel')} and "
                 f"{FUSION_OUTPUT.format('features')}, the trunk's level after block {cfg.model.fusion_blocks}, "
                 "correlated apart and fused by the tracker (model.fusion)")
    return text


def cpu_branches(net: LevelNet, track: TrackConfig) -> dict[str, tuple[nn.Module, torch.Tensor]]:
    """The folded exemplar and search branches on the CPU, each with an example input: what is exported."""
    folded = fold_batchnorm(net).cpu()
    z, x = example_inputs(track, torch.device("cpu"))
    return {"exemplar": (exemplar_branch(folded), z), "search": (search_branch(folded), x)}


def export_onnx(net: LevelNet, track: TrackConfig, out_dir: str | Path) -> dict[str, Path]:
    """Write the exemplar and search branches (batch norm folded) to out_dir; the paths, by branch."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {kind: out / f"{kind}.onnx" for kind in ONNX_NAMES}
    for kind, (branch, example) in cpu_branches(net, track).items():
        export_branch(branch, example, onnx_names(kind, net), paths[kind])
    return paths


class OrtBranch(nn.Module):
    """One ONNX branch run by ONNX Runtime, reading the input tensor and writing its output tensors (one a
    level) in place.

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

    def forward(self, x: torch.Tensor) -> Levels:
        if x.shape[0] != self.outputs[0].shape[0]:  # another batch (several targets): output buffers to fit
            self._bind_outputs([torch.empty((x.shape[0], *o.shape[1:]), device=o.device) for o in self.outputs])
        self._bind(self.input_name, x.contiguous(), self.binding.bind_input)
        self.session.run_with_iobinding(self.binding)
        return tuple(self.outputs)


def onnx_model(branch: nn.Module, example: torch.Tensor, names: tuple[str, ...]) -> bytes:
    """`branch` as an ONNX model in memory."""
    model = io.BytesIO()
    export_branch(branch, example, names, model)
    return model.getvalue()


def onnxruntime_backend(net: LevelNet, track: TrackConfig, device: torch.device, int8: bool = False) -> Backend:
    name = "onnxruntime-int8" if int8 else "onnxruntime"
    if int8 and device.type != "cpu":
        raise ConfigError(f"the {name} backend runs on the CPU only")
    import_onnx("onnxruntime")
    branches = cpu_branches(net, track)
    models = {kind: onnx_model(branch, example, onnx_names(kind, net)) for kind, (branch, example) in branches.items()}
    if int8:
        from .quantize import cached_int8
        sizes = {"exemplar": track.exemplar_size, "search": track.search_size}
        models = {kind: cached_int8(model, ONNX_NAMES[kind][0], track, sizes[kind]) for kind, model in models.items()}
    with torch.no_grad():
        runners = {kind: OrtBranch(models[kind], [level.shape for level in branch(example)], device)
                   for kind, (branch, example) in branches.items()}
    return Backend(name, runners["exemplar"], runners["search"], net.head, thread_safe=False)
