"""Write the boxes every shipped config and backend gives on a few real frames, as the reference
tests/test_reference_boxes.py holds later code to (a refactor must not move a box).

    python tools/reference_boxes.py ../shared/data/otb_mini tests/data/reference_boxes.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from siamtrack import SiamFCTracker
from siamtrack.config import load_config, resolve_weights_path, shipped_configs
from siamtrack.core.backends import BACKENDS
from siamtrack.datasets import load_sequences
from siamtrack.inputs import read_rgb

SEQUENCE = "Crossing"
FRAMES = 12


UNTRAINED = ('weights=""', "model.pretrained=false")  # a config whose weights do not ship: seeded random ones


def reference_tracker(config: str, backend: str) -> SiamFCTracker:
    """A tracker built alone, as the reference's were: seeded random weights where a config's do not ship."""
    path = resolve_weights_path(load_config(config))
    torch.manual_seed(0)
    return SiamFCTracker(config, device="cpu", backend=backend,
                         overrides=() if path is not None and path.is_file() else UNTRAINED)


def boxes_of(tracker: SiamFCTracker, frames: list[np.ndarray], first: np.ndarray) -> list[list[float]]:
    tracker.init(frames[0], first)
    return [tracker.update(frame).round(4).tolist() for frame in frames[1:]]


def main(root: str, out: str) -> None:
    torch.set_num_threads(1)
    sequence = next(s for s in load_sequences(Path(root) / SEQUENCE))
    frames = [read_rgb(path) for path in sequence.frames[:FRAMES]]
    reference = {"sequence": SEQUENCE, "frames": FRAMES, "first": sequence.boxes[0].tolist(), "boxes": {}}
    for config in shipped_configs():
        for backend in BACKENDS:
            tracker = reference_tracker(config, backend)
            reference["boxes"][f"{Path(config).stem}/{backend}"] = boxes_of(tracker, frames, sequence.boxes[0])
    Path(out).write_text(json.dumps(reference, indent=1) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
