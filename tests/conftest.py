from pathlib import Path

import pytest
import torch

# ../shared/data beside the repository: real sequences, present in CI, absent in a user's clone
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OTB_MINI = SHARED_DATA / "otb_mini"
TRAIN_MINI = SHARED_DATA / "train_mini"

torch.set_num_threads(2)


def require(folder: Path) -> Path:
    if not folder.is_dir():
        pytest.skip(f"real data folder {folder} not found (it ships beside the repo in CI only)")
    return folder


def write_video(path: Path, frames_rgb, fps: float = 25.0) -> Path:
    """Frames (RGB) to an mp4v file, as a user's phone video would arrive."""
    import cv2
    height, width = frames_rgb[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for frame in frames_rgb:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def count_frames(path: Path) -> int:
    import cv2
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def read_boxes(path: Path):
    """A single-target run's boxes file as rows of frame, x, y, w, h, score (its id column, all 0, dropped)."""
    import numpy as np
    rows = np.loadtxt(path, delimiter=",", ndmin=2)
    assert rows.shape[1] == 7 and (rows[:, 1] == 0).all(), rows[:3]
    return np.delete(rows, 1, axis=1)
