"""Checkpoints: written atomically, read with a clear error for every way a file can be wrong."""
from __future__ import annotations

import io
import pickle
import warnings
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Iterable

import torch
from torch import nn

from ..config import Config, config_from_dict, load_config, resolve_weights_path, shipped_dir
from ..errors import CheckpointError, ConfigError
from ..files import write_atomic
from ..models import SiameseNet

# keys that older checkpoints store and configs no longer have: the network now supplies total_stride, and a
# second network as a fused level (model.fusion: branch) is gone
RETIRED_KEYS = {"track": ("total_stride",), "model": ("fusion_branch",)}


def save_checkpoint(obj: dict, path: str | Path) -> None:
    """torch.save, written whole or not at all: a crash keeps the old file."""
    data = io.BytesIO()
    torch.save(obj, data)
    write_atomic(path, data.getvalue())


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    try:
        with warnings.catch_warnings():  # a file that fails is reported below in one line, not in warnings
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    # torch.load meets a damaged file with almost any exception type (KeyError, IndexError, ...)
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint ({_load_failure(path, exc)})") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        raise CheckpointError(f"{path}: not a siamtrack checkpoint (no 'model' entry)")
    return ckpt


def _load_failure(path: Path, exc: Exception) -> str:
    """Why torch.load failed, in a few words: its own messages run over many lines."""
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    if not zipfile.is_zipfile(path):  # every torch.save since torch 1.6 writes a zip archive
        return "truncated, or not a PyTorch file"
    if isinstance(exc, pickle.UnpicklingError):
        return "it holds Python objects besides tensors, which are not loaded for safety"
    return f"corrupt: {str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__}"


def checkpoint_config(ckpt: dict, path: str | Path, overrides: Iterable[str] = ()) -> Config:
    """The config stored in a checkpoint, without its retired keys, with `overrides` applied."""
    stored = {section: dict(values) if isinstance(values, dict) else values
              for section, values in ckpt.get("config", {}).items()}
    for section, keys in RETIRED_KEYS.items():
        for key in keys:
            if isinstance(stored.get(section), dict):
                stored[section].pop(key, None)
    try:
        return config_from_dict(stored, overrides, name=str(path))
    except ConfigError as exc:
        raise CheckpointError(f"{path}: its stored config is invalid ({exc})") from None


def load_weights(net: nn.Module, ckpt: dict, path: str | Path) -> None:
    weights, expected = ckpt["model"], net.state_dict()
    missing = [k for k in expected if k not in weights]
    unexpected = [k for k in weights if k not in expected]
    reshaped = [k for k in expected if k in weights and getattr(weights[k], "shape", None) != expected[k].shape]
    if missing or unexpected or reshaped:
        saved_for = _saved_backbone(ckpt)
        raise CheckpointError(
            f"{path}: weights do not fit this model's architecture ({len(missing)} missing, "
            f"{len(unexpected)} unexpected, {len(reshaped)} of another shape, e.g. "
            f"'{(missing + unexpected + reshaped)[0]}')"
            + (f"; they were saved for backbone '{saved_for}'" if saved_for else ""))
    broken = next((k for k, v in weights.items() if v.is_floating_point() and not torch.isfinite(v).all()), None)
    if broken:
        raise CheckpointError(f"{path}: weight '{broken}' holds NaN or inf (a corrupt file or a diverged training)")
    net.load_state_dict(weights, strict=True)


def _saved_backbone(ckpt: dict) -> str | None:
    """The backbone named in a checkpoint's stored config, if it has one."""
    model = ckpt["config"].get("model") if isinstance(ckpt.get("config"), dict) else None
    return model.get("backbone") if isinstance(model, dict) else None


def unshipped_weights(cfg: Config, weights: Path) -> str:
    """What to do about a config whose weights do not ship (siamfc_alexnet): train them, or name some."""
    name = Path(cfg.name).stem
    return (f"no weights ship for config '{name}' (it names {weights.name}): train them with "
            f"`siamtrack train --config {name} --data DIR --out RUN_DIR` and pass --weights RUN_DIR/best.pt, "
            "or pass --weights with a checkpoint of yours")


def build_net(config: str | Path | Config | None, weights: str | Path | None,
              overrides: Iterable[str] = ()) -> tuple[Config, SiameseNet, Path | None]:
    """The network a config and weights describe, its config (a new one: `config` is left as it was)
    and the weights file used.

    The config defaults to the one stored in the weights; the weights to the ones the config names.
    """
    ckpt = load_checkpoint(weights) if weights else None
    if isinstance(config, Config):
        cfg = config_from_dict(config.to_dict(), overrides, name=config.name) if overrides else config
    elif config is None and ckpt is not None:
        cfg = checkpoint_config(ckpt, weights, overrides)
    else:
        cfg = load_config(config, overrides)
    if ckpt is None and cfg.weights:
        weights = resolve_weights_path(cfg)
        if not weights.is_file() and weights.parent == shipped_dir("weights"):
            raise CheckpointError(unshipped_weights(cfg, weights))
        ckpt = load_checkpoint(weights)
    if ckpt is not None:  # the checkpoint supplies every weight
        cfg = replace(cfg, model=replace(cfg.model, pretrained=False))
    net = SiameseNet(cfg.model)
    if ckpt is not None:
        load_weights(net, ckpt, weights)
    return cfg, net, Path(weights) if weights else None
