"""Files written whole or not at all: the one atomic writer (checkpoints, evaluation's results, the int8 cache)."""
from __future__ import annotations

import os
from pathlib import Path

PARTIAL = ".partial"  # the suffix of a file being written: never read as a result, removed when a run starts


def write_atomic(path: str | Path, data: bytes) -> None:
    """`data` as the file `path`, complete or not there at all: written under a temporary name in the same
    folder (made if missing), then renamed; a crash keeps the old file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}{PARTIAL}")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
