"""Checkpoints: written atomically, read with a clear error for every way a file can be wrong."""
from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path

import torch
from torch import nn

from .config import Config, config_from_dict
from .errors import CheckpointError, ConfigError


def save_atomic(obj: dict, path: str | Path) -> None:
    """torch.save to a temp file in the same folder, then rename: a crash keeps the old file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a checkpoint is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, OSError) as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint ({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointError(f"{path}: not a siamtrack checkpoint (no 'model' entry)")
    return ckpt


def checkpoint_config(ckpt: dict, path: str | Path) -> Config:
    try:
        return config_from_dict(ckpt.get("config", {}), name=str(path))
    except ConfigError as exc:
        raise CheckpointError(f"{path}: its stored config is invalid ({exc})") from None


def load_weights(net: nn.Module, ckpt: dict, path: str | Path) -> None:
    try:
        net.load_state_dict(ckpt["model"], strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())[:200]
        raise CheckpointError(f"{path}: weights do not fit this model's architecture ({detail})") from None
