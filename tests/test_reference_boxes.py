"""Every shipped config and backend still gives the boxes it gave when tests/data/reference_boxes.json
was written (tools/reference_boxes.py, before the design step that reshaped the tracker's state)."""
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import OTB_MINI, require

REFERENCE = json.loads((Path(__file__).parent / "data" / "reference_boxes.json").read_text())
TOLERANCE_PX = 1e-3  # the file keeps 4 decimals


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(REFERENCE["boxes"]))
def test_boxes_equal_the_reference(key):
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    from reference_boxes import boxes_of

    from siamtrack.datasets import load_sequences
    from siamtrack.inputs import read_rgb
    sequence = load_sequences(require(OTB_MINI) / REFERENCE["sequence"])[0]
    frames = [read_rgb(path) for path in sequence.frames[:REFERENCE["frames"]]]
    config, backend = key.split("/")
    if backend.startswith("onnxruntime"):
        pytest.importorskip("onnxruntime")
    boxes = boxes_of(config, backend, frames, np.array(REFERENCE["first"]))
    np.testing.assert_allclose(boxes, REFERENCE["boxes"][key], atol=TOLERANCE_PX)
