"""The one place that sets how many CPU threads torch and OpenCV use in this process.

Entry points call it (the command line, evaluation's workers, the benchmark, training); a TrackerSpec
only describes a tracker and changes nothing process-wide.
"""
from __future__ import annotations

import cv2
import torch


def use_threads(threads: int | None) -> None:
    """Give torch and OpenCV `threads` CPU threads; None leaves them as they are."""
    if threads:
        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)
