"""Frame sources read from disk: the order of a folder's frames and why the frames ran out."""
from pathlib import Path

import cv2
import numpy as np
from conftest import write_video

from siamtrack.sources import open_source


def write_numbered_frames(folder: Path, names: list[str]) -> None:
    """One flat grey frame per name, its grey level the name's place in `names`."""
    folder.mkdir(exist_ok=True)
    for level, name in enumerate(names):
        cv2.imwrite(str(folder / name), np.full((8, 8, 3), 10 * level, np.uint8))


def read_levels(spec: str) -> list[int]:
    source = open_source(spec)
    try:
        return [int(round(frame.mean() / 10)) for frame in source]
    finally:
        source.close()


def test_folder_frames_are_read_in_numeric_order_without_zero_padding(tmp_path):
    names = [f"{i}.png" for i in range(1, 13)]  # 1.png ... 12.png: plain sorting reads 1, 10, 11, 12, 2, ...
    write_numbered_frames(tmp_path, names)
    assert read_levels(str(tmp_path)) == list(range(12))


def test_numbers_inside_names_sort_as_numbers_too(tmp_path):
    names = ["cam1_frame2.png", "cam1_frame10.png", "cam2_frame1.png", "cam10_frame1.png"]
    write_numbered_frames(tmp_path, names)
    assert read_levels(str(tmp_path)) == [0, 1, 2, 3]


def test_a_folder_and_a_file_say_they_ended(tmp_path):
    write_numbered_frames(tmp_path / "frames", ["1.png", "2.png"])
    video = write_video(tmp_path / "clip.mp4", [np.zeros((16, 16, 3), np.uint8)] * 3)
    for spec, reason in ((tmp_path / "frames", "end of folder"), (video, "end of file")):
        source = open_source(str(spec))
        assert source.ended is None
        list(source)
        assert source.ended == reason and source.gaps == []
