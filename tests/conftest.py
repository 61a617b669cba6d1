import os
from pathlib import Path

# one CPU thread for torch and OpenMP here and in every process a test starts: on a busy 2-core machine
# two threads spin against other processes and run several times slower (README, 'Threads on a busy machine')
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

import torch  # noqa: E402

from siamtrack.process import set_up  # noqa: E402

# ../shared/data beside the repository: real sequences, present in CI, absent in a user's clone
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OTB_MINI = SHARED_DATA / "otb_mini"
TRAIN_MINI = SHARED_DATA / "train_mini"

set_up(1)  # as every entry point does: this process is the tests' entry point


@pytest.fixture(autouse=True)
def one_thread():
    """A command a test runs in this process sets its threads (`--threads 2`, say): the next test gets one back.
    Left at 2, every later test ran up to 10 times slower on a busy machine (the whole suite: 29 minutes)."""
    yield
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def require(folder: Path) -> Path:
    if not folder.is_dir():
        pytest.skip(f"real data folder {folder} not found (it ships beside the repo in CI only)")
    return folder


DEFAULT_CLIP_FRAMES = 40
CLIP_FPS = 30.0


@pytest.fixture(scope="module")
def clip(request):
    """The synthetic clip, CLIP_FRAMES long where the test module sets that (DEFAULT_CLIP_FRAMES else)."""
    from siamtrack.synthetic import make_clip
    return make_clip(num_frames=getattr(request.module, "CLIP_FRAMES", DEFAULT_CLIP_FRAMES))


@pytest.fixture(scope="module")
def video(clip, tmp_path_factory) -> Path:
    """The clip as an mp4 file at CLIP_FPS."""
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4", clip.frames, fps=CLIP_FPS)


def write_otb(root: Path, sequences: int, frames: int, names=None) -> Path:
    """`sequences` synthetic clips (seeds 0, 1, ...) in OTB layout under root, ground truth 1-based as OTB
    writes it; named seq0, seq1, ... unless `names` are given."""
    import numpy as np

    from siamtrack.synthetic import make_clip
    for seed, name in zip(range(sequences), names or (f"seq{i}" for i in range(sequences))):
        clip = make_clip(num_frames=frames, seed=seed)
        folder = write_frames(root / name / "img", clip.frames)
        np.savetxt(folder.parent / "groundtruth_rect.txt", clip.boxes + [1, 1, 0, 0], fmt="%g", delimiter=",")
    return root


def write_frames(folder: Path, frames) -> Path:
    """Frames (RGB, grey, RGBA; 8 or 16 bit) as PNG files named in order."""
    import cv2
    to_bgr = {3: cv2.COLOR_RGB2BGR, 4: cv2.COLOR_RGBA2BGRA}
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:04d}.png"), frame if frame.ndim == 2 else cv2.cvtColor(frame, to_bgr[frame.shape[2]]))
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
    """A single-target run's boxes file as rows of frame, x, y, w, h, score (its id column, all 0, and its lost
    column, 0 or 1, dropped)."""
    import numpy as np
    rows = np.loadtxt(path, delimiter=",", ndmin=2)
    assert rows.shape[1] == 8 and (rows[:, 1] == 0).all() and np.isin(rows[:, 7], (0, 1)).all(), rows[:3]
    return np.delete(rows, [1, 7], axis=1)
