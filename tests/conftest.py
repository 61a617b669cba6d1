import os
from pathlib import Path

# one CPU thread for torch and OpenMP here and in every process a test starts: on a busy 2-core machine
# two threads spin against other processes and run several times slower (README, 'Threads on a busy machine')
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

# ../shared/data beside the repository: real sequences, present in CI, absent in a user's clone
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OTB_MINI = SHARED_DATA / "otb_mini"
TRAIN_MINI = SHARED_DATA / "train_mini"

torch.set_num_threads(1)


def require(folder: Path) -> Path:
    if not folder.is_dir():
        pytest.skip(f"real data folder {folder} not found (it ships beside the repo in CI only)")
    return folder


def write_video(path: Path, frames_rgb, fps: float = 25.0) -> Path:
    """Frames (RGB) to an mp4v file, as a user's phone video would arrive."""
    from siamtrack.video import write_rgb_video
    return write_rgb_video(path, frames_rgb, fps)


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
