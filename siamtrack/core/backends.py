"""Inference backends behind one small interface: a Backend runs a LevelNet's exemplar branch, search branch
and correlation head.

Its calls: `embed_exemplar(z)` once per target, `embed_search(x)` and `correlate(kernels, features)` once per
frame. Inputs are float NCHW RGB batches (0-255) on the backend's device; every branch answers a tuple of
levels of features (siamtrack.models.levels), the head one response per level, all on that device.

- eager: the plain network as trained, kept as the reference every other backend is held to.
- torch: batch norm folded into the convolutions, each branch traced, frozen and optimised for
  inference (TorchScript; on a CPU the graph runs on oneDNN, which is what makes the depthwise and
  dilated convolutions of the Lite0 trunks fast).
- onnxruntime: the folded branches exported to ONNX and run by ONNX Runtime (the `onnx` extra;
  siamtrack.core.onnx).
- onnxruntime-int8: the same with both branches quantised to int8 (siamtrack.core.quantize); CPU
  only, opt-in, and the one backend whose boxes differ from eager's: its accuracy is measured
  (success AUC), not asserted equal.

Building one changes nothing outside it: batch norm is folded pair by pair over the convolution / batch-norm
pairs each model declares (siamtrack.models.conv_bn_pairs), on a copy of the network.
"""
from __future__ import annotations

import copy
import warnings
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..config import TrackConfig
from ..models import conv_bn_pairs
from ..models.levels import LevelNet, Levels

EXACT_BACKENDS = ("eager", "torch", "onnxruntime")  # the same boxes, to float rounding
BACKENDS = (*EXACT_BACKENDS, "onnxruntime-int8")
DEFAULT_BACKEND = "torch"  # the fastest backend that needs nothing beyond torch
# TorchScript's profiling executor specialises a graph over its first calls; run them at build time
# so that no tracked frame pays for them.
TORCHSCRIPT_PROFILING_RUNS = 2


class Branch(nn.Module):
    """One branch of a LevelNet, `embed_exemplar` or `embed_search`, as a module of its own, to trace or export."""

    def __init__(self, net: LevelNet, embed: str):
        super().__init__()
        self.net = net
        self.embed = embed

    def forward(self, crops: torch.Tensor) -> Levels:
        return getattr(self.net, self.embed)(crops)


def exemplar_branch(net: LevelNet) -> Branch:
    return Branch(net, "embed_exemplar")


def search_branch(net: LevelNet) -> Branch:
    return Branch(net, "embed_search")


class Backend(nn.Module):
    """The exemplar branch, the search branch and the cross-correlation head, as one backend runs them.

    `search_batch`: the most search crops one call of the search branch takes; a larger batch is run in
    parts of that size (0: in one call). On a CPU a batch past a few crops costs more per crop, not
    less: its activations no longer fit the caches (siamtrack bench --targets measures it).
    `thread_safe`: whether trackers on several threads may call it at once (ONNX Runtime's branches reuse
    their output buffers: they may not).
    """

    def __init__(self, name: str, exemplar_branch: nn.Module, search_branch: nn.Module, head: nn.Module,
                 thread_safe: bool = True):
        super().__init__()
        self.name = name
        self.exemplar_branch = exemplar_branch
        self.search_branch = search_branch
        self.head = head
        self.thread_safe = thread_safe
        self.search_batch = 0  # build_backend sets it for the device

    def embed_exemplar(self, z: torch.Tensor) -> Levels:
        return self.exemplar_branch(z)

    def embed_search(self, x: torch.Tensor) -> Levels:
        if not self.search_batch or x.shape[0] <= self.search_batch:
            return self.search_branch(x)
        # each part copied out (a branch may hand back one output buffer, call after call), then joined by level
        parts = [tuple(level.clone() for level in self.search_branch(part)) for part in x.split(self.search_batch)]
        return tuple(torch.cat(level) for level in zip(*parts))

    def correlate(self, kernels: Levels, features: Levels) -> Levels:
        return self.head(kernels, features)


def fold_batchnorm(net: LevelNet) -> LevelNet:
    """A copy of `net` (eval mode) with each batch norm folded into the convolution before it."""
    folded = copy.deepcopy(net).eval()
    for module in list(folded.modules()):
        for conv, norm in conv_bn_pairs(module):
            setattr(module, conv, fuse_conv_bn_eval(getattr(module, conv), getattr(module, norm)))
            setattr(module, norm, nn.Identity())
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

    def forward(self, x: torch.Tensor) -> Levels:
        return self.graph(x)


def freeze(branch: nn.Module, example: torch.Tensor) -> Frozen:
    """Trace `branch` on `example`, freeze its weights into the graph and optimise it for inference."""
    with torch.no_grad(), quiet_tracing():
        traced = torch.jit.trace(branch.eval(), example, check_trace=False)
        graph = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
        for _ in range(TORCHSCRIPT_PROFILING_RUNS):
            graph(example)
    return Frozen(graph)


def eager_backend(net: LevelNet) -> Backend:
    return Backend("eager", exemplar_branch(net), search_branch(net), net.head)


def torch_backend(net: LevelNet, track: TrackConfig, device: torch.device) -> Backend:
    folded = fold_batchnorm(net)
    z, x = example_inputs(track, device)
    return Backend("torch", freeze(exemplar_branch(folded), z), freeze(search_branch(folded), x), folded.head)
