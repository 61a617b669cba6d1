"""The one place that sets state for the whole process: CPU threads, cuDNN's float precision, torch's global
seed, the numpy alias got10k needs, and signal handlers swapped for a while.

Entry points call it (the command line, evaluation's workers and its driver, the benchmark, training's
workers, the tools); building a model or a tracker changes nothing process-wide.
"""
from __future__ import annotations

import signal
from contextlib import contextmanager
from typing import Callable, Iterator

import cv2
import numpy as np
import torch


def use_threads(threads: int | None) -> None:
    """Give torch and OpenCV `threads` CPU threads; None leaves them as they are."""
    if threads:
        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)


def use_float32_convolutions() -> None:
    """cuDNN convolutions in full float32. By default cuDNN rounds float32 convolutions to TF32 (a 10-bit
    mantissa) on Ampere and later GPUs: enough to move a response peak, so that backends which fold batch
    norm differently part ways. Set once for the process, not around each call: a flag flipped and restored
    per call races between trackers in two threads."""
    torch.backends.cudnn.allow_tf32 = False


def seed_torch(seed: int) -> None:
    """torch's global generator seeded: the same random weights in every run (an untrained model's)."""
    torch.manual_seed(seed)


def numpy_aliases_for_got10k() -> None:
    """got10k 0.1.3's VOT loops time skipped frames as `np.NaN`, an alias numpy 2 removed: put it back (it is
    numpy's own nan)."""
    if not hasattr(np, "NaN"):
        np.NaN = np.nan


def set_up(threads: int | None = None) -> None:
    """What every entry point sets: its CPU threads (None: as they are), float32 convolutions, got10k's alias."""
    if threads is not None:
        use_threads(threads)
    use_float32_convolutions()
    numpy_aliases_for_got10k()


@contextmanager
def signal_handled(signum: int, handler: Callable | int) -> Iterator[None]:
    """`handler` for `signum` in this block, the handler before it back after; nothing where signals cannot be
    set (a thread other than the main one)."""
    try:
        previous = signal.signal(signum, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signum, previous)
