"""Frame files: which files are frames, their natural order, and decoding them a few ahead of the tracker.
The one list of frame suffixes and the one frame order of siamtrack: folder sources, dataset readers and
training all use them."""
from __future__ import annotations

import re
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
from PIL import Image

from ..errors import SourceError

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
READ_AHEAD = 4  # frames decoded ahead of the tracker: decoding overlaps tracking, memory holds a handful


def natural_key(path: Path) -> tuple[list, str]:
    """Names sorted as people mean them, numbers as numbers: 2.jpg before 10.jpg without zero padding.

    The one frame order of siamtrack: folder sources, dataset readers and training all sort with it.
    Names equal but for padding (1.jpg, 01.jpg) fall back to plain order, so the order never depends
    on the file system's.
    """
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)], path.name


def list_frames(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise SourceError(f"{folder}: no such frame folder")
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES), key=natural_key)


def read_frame(path: str | Path) -> np.ndarray:
    """A frame file as HxWx3 uint8 RGB, decoded by PIL as got10k's run loop decodes it."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, ValueError) as exc:  # PIL's UnidentifiedImageError and truncated files are OSErrors
        raise SourceError(f"{path}: cannot read the frame ({exc.__class__.__name__})") from None


def read_frames(paths: Iterable, depth: int = READ_AHEAD,
                read: Callable[[str | Path], np.ndarray] = read_frame) -> Iterator[np.ndarray]:
    """The frames of `paths` in order, each decoded in a background thread at most `depth` frames ahead
    of the consumer: decoding overlaps tracking, and memory holds depth + 1 frames however long the
    sequence. A frame that cannot be read raises where it comes, after the frames before it."""
    if depth < 1:
        raise ValueError(f"read-ahead depth must be at least 1, got {depth}")
    paths = iter(paths)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead") as pool:
        pending = deque(pool.submit(read, path) for path in islice(paths, depth))
        try:
            while pending:
                frame = pending.popleft().result()
                pending.extend(pool.submit(read, path) for path in islice(paths, 1))
                yield frame
        finally:  # the consumer stopped early: decode nothing more
            for future in pending:
                future.cancel()
