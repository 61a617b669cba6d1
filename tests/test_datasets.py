"""Dataset readers: GOT-10k, OTB and VOT layouts built in tmp_path, plus the real shared folders."""
from pathlib import Path

import cv2
import numpy as np
import pytest

from siamtrack.datasets import detect_layout, list_frames, load_many, load_sequences, read_frame, read_frames
from siamtrack.errors import SourceError

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FRAME = np.zeros((12, 16, 3), np.uint8)


def write_frames(folder: Path, count: int, pattern: str = "{:08d}.jpg", first: int = 1) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(first, first + count):
        cv2.imwrite(str(folder / pattern.format(i)), FRAME)


def write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def make_got10k(root: Path) -> Path:
    split = root / "train"
    seq = split / "GOT-10k_Train_000001"
    write_frames(seq, 3)
    write_lines(seq / "groundtruth.txt", ["1,2,3,4", "5,6,7,8", "0,0,0,0"])
    write_lines(seq / "absence.label", ["0", "0", "1"])
    write_lines(seq / "cover.label", ["8", "3", "0"])
    write_lines(split / "list.txt", ["GOT-10k_Train_000001"])
    return root


def make_vot(root: Path) -> Path:
    write_frames(root / "ball" / "color", 2)
    write_lines(root / "ball" / "groundtruth.txt", ["11,21,31,21,31,41,11,41", "2,3,4,5"])
    write_frames(root / "car", 1)
    write_lines(root / "car" / "groundtruth.txt", ["1,1,10,10"])
    write_lines(root / "list.txt", ["ball", "car"])
    return root


def make_otb(root: Path) -> Path:
    write_frames(root / "Walk" / "img", 3, "{:04d}.jpg")
    write_lines(root / "Walk" / "groundtruth_rect.txt", ["1\t2\t3\t4", "5 6 7 8", "NaN,NaN,NaN,NaN"])
    write_frames(root / "Jog", 2, "{}.jpg")  # frames straight in NAME/, two targets
    write_lines(root / "Jog" / "groundtruth_rect.1.txt", ["1,1,2,2", "2,2,2,2"])
    write_lines(root / "Jog" / "groundtruth_rect.2.txt", ["3,3,2,2", "4,4,2,2"])
    return root


def test_got10k_split_reads_one_based_boxes_and_labels(tmp_path):
    root = make_got10k(tmp_path)
    assert detect_layout(root) == "got10k_root" and detect_layout(root / "train") == "got10k"
    (seq,) = load_sequences(root)
    assert seq.name == "GOT-10k_Train_000001" and seq.layout == "got10k" and seq.one_based
    assert [p.name for p in seq.frames] == ["00000001.jpg", "00000002.jpg", "00000003.jpg"]
    np.testing.assert_array_equal(seq.boxes[:2], [[0, 1, 3, 4], [4, 5, 7, 8]])
    assert seq.absent.tolist() == [False, False, True]
    assert seq.cover.tolist() == [8, 3, 0]
    np.testing.assert_array_equal(seq.to_source(seq.boxes[:1]), [[1, 2, 3, 4]])
    assert [s.name for s in load_sequences(root / "train")] == [seq.name]


def test_got10k_missing_split_is_an_error(tmp_path):
    with pytest.raises(SourceError, match="no GOT-10k split 'val'"):
        load_sequences(make_got10k(tmp_path), split="val")


def test_vot_polygons_become_zero_based_axis_aligned_boxes(tmp_path):
    ball, car = load_sequences(make_vot(tmp_path))
    assert ball.layout == "vot" and ball.one_based and len(ball) == 2
    np.testing.assert_array_equal(ball.boxes, [[10, 20, 20, 20], [1, 2, 4, 5]])
    assert ball.frames[0].parent.name == "color" and car.frames[0].parent.name == "car"
    np.testing.assert_array_equal(ball.to_source(ball.boxes[:1]), [[11, 21, 20, 20]])


def test_otb_separators_frames_in_folder_targets_and_nan(tmp_path):
    seqs = load_sequences(make_otb(tmp_path))
    assert [s.name for s in seqs] == ["Jog.1", "Jog.2", "Walk"]
    walk = seqs[2]
    np.testing.assert_array_equal(walk.boxes[:2], [[0, 1, 3, 4], [4, 5, 7, 8]])
    assert walk.absent.tolist() == [False, False, True]
    assert walk.cover is None and walk.one_based
    assert seqs[1].frames[0].parent.name == "Jog"
    np.testing.assert_array_equal(seqs[1].boxes[1], [3, 3, 2, 2])
    assert [s.name for s in load_sequences(tmp_path / "Walk")] == ["Walk"]


def test_load_many_concatenates_layouts(tmp_path):
    seqs = load_many([make_otb(tmp_path / "otb"), make_vot(tmp_path / "vot")])
    assert [s.layout for s in seqs] == ["otb", "otb", "otb", "vot", "vot"]


def test_frames_without_zero_padding_are_listed_in_numeric_order(tmp_path):
    write_frames(tmp_path, 12, "{}.jpg")  # 1.jpg ... 12.jpg: plain sorting lists 1, 10, 11, 12, 2, ...
    assert [p.name for p in list_frames(tmp_path)] == [f"{i}.jpg" for i in range(1, 13)]


def test_folder_matching_no_layout(tmp_path):
    (tmp_path / "stuff").mkdir()
    with pytest.raises(SourceError, match=r"matches no dataset layout") as info:
        load_sequences(tmp_path)
    assert str(tmp_path) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(SourceError, match="not found"):
        load_sequences(tmp_path / "missing")


def test_line_count_must_match_frames(tmp_path):
    root = make_otb(tmp_path)
    write_lines(root / "Walk" / "groundtruth_rect.txt", ["1,2,3,4"])
    with pytest.raises(SourceError, match=r"groundtruth_rect.txt: 1 lines for 3 frames"):
        load_sequences(root)


def test_missing_frames(tmp_path):
    root = make_vot(tmp_path)
    for frame in (root / "car").glob("*.jpg"):
        frame.unlink()
    with pytest.raises(SourceError, match=r"car: no frames"):
        load_sequences(root)


def test_unparsable_line_names_file_and_line(tmp_path):
    root = make_got10k(tmp_path)
    seq = root / "train" / "GOT-10k_Train_000001"
    write_lines(seq / "groundtruth.txt", ["1,2,3,4", "1,2,3", "0,0,0,0"])
    with pytest.raises(SourceError, match=r"groundtruth.txt:2: expected 4 or 8 numbers"):
        load_sequences(root)
    write_lines(seq / "groundtruth.txt", ["1,2,3,4", "5,6,7,8", "0,0,0,0"])
    write_lines(seq / "cover.label", ["8", "x", "0"])
    with pytest.raises(SourceError, match=r"cover.label:2: expected an integer"):
        load_sequences(root)


def test_list_naming_a_missing_folder(tmp_path):
    root = make_vot(tmp_path)
    write_lines(root / "list.txt", ["ball", "gone"])
    with pytest.raises(SourceError, match=r"list.txt: lists 'gone'"):
        load_sequences(root)


@pytest.mark.slow
@pytest.mark.skipif(not (DATA / "train_mini").is_dir(), reason=f"real data not present at {DATA / 'train_mini'}")
def test_real_train_mini_reads_with_one_based_boxes_shifted():
    seqs = load_sequences(DATA / "train_mini")
    assert len(seqs) == 25 and all(s.layout == "otb" and s.one_based for s in seqs)
    assert all(len(s.boxes) == len(s.frames) > 0 and not s.absent.any() for s in seqs)
    blur = next(s for s in seqs if s.name == "otb_BlurCar2")
    np.testing.assert_array_equal(blur.boxes[0], [226, 206, 122, 99])  # file: 227,207,122,99
    assert cv2.imread(str(blur.frames[0])).shape == (480, 640, 3)


@pytest.mark.slow
@pytest.mark.skipif(not (DATA / "otb_mini").is_dir(), reason=f"real data not present at {DATA / 'otb_mini'}")
def test_real_otb_mini_reads():
    seqs = load_sequences(DATA / "otb_mini")
    assert len(seqs) == 13 and sum(len(s) for s in seqs) == 4055


# --- LaSOT and TrackingNet layouts

def make_lasot(root: Path) -> Path:
    """Two LaSOT sequences of one class: frames in img/, comma-separated 1-based boxes, one-line flags."""
    for name, frames in (("cat-1", 3), ("cat-2", 2)):
        write_frames(root / "cat" / name / "img", frames)
        write_lines(root / "cat" / name / "groundtruth.txt", [f"{i + 1},{i + 2},5,6" for i in range(frames)])
    write_lines(root / "cat" / "cat-1" / "full_occlusion.txt", ["0,1,0"])
    write_lines(root / "cat" / "cat-1" / "out_of_view.txt", ["0,0,1"])
    write_lines(root / "cat" / "cat-2" / "full_occlusion.txt", ["0,0"])
    return root


def make_trackingnet(root: Path) -> Path:
    """A TEST chunk (first boxes only) and a TRAIN_0 chunk (every box), frames numbered from 0."""
    for chunk, lines in (("TEST", ["3,4,5,6"]), ("TRAIN_0", ["3,4,5,6", "4,4,5,6", "5,4,5,6"])):
        write_frames(root / chunk / "frames" / "clip", 3, "{}.jpg", first=0)
        write_lines(root / chunk / "anno" / "clip.txt", lines)
    return root


def test_lasot_reads_one_based_boxes_flags_and_attributes(tmp_path):
    root = make_lasot(tmp_path)
    assert detect_layout(root) == "lasot"
    cat1, cat2 = load_sequences(root)
    assert (cat1.name, cat1.layout, cat1.one_based) == ("cat-1", "lasot", True)
    np.testing.assert_array_equal(cat1.boxes[0], [0, 1, 5, 6])
    assert cat1.absent.tolist() == [False, True, True]  # fully occluded, then out of view
    assert cat1.attributes == ("Full Occlusion", "Out-of-View") and cat2.attributes == ()
    assert [p.name for p in cat1.frames] == ["00000001.jpg", "00000002.jpg", "00000003.jpg"]


def test_lasot_toolkit_attribute_files_and_test_list_choose_attributes_and_split(tmp_path):
    root = make_lasot(tmp_path)
    write_lines(root / "att" / "cat-2.txt", ["1,0,0,0,0,0,0,0,0,0,0,0,1,0"])  # the toolkit's 14 flags
    write_lines(root / "testing_set.txt", ["cat-2"])
    (test,) = load_sequences(root, split="test")
    assert test.name == "cat-2" and test.attributes == ("Illumination Variation", "Low Resolution")
    assert [s.name for s in load_sequences(root)] == ["cat-1"]  # train: the sequences it does not list
    write_lines(root / "testing_set.txt", ["cat-2", "dog-7"])
    with pytest.raises(SourceError, match="testing_set.txt: lists 'dog-7'"):
        load_sequences(root, split="test")


def test_lasot_flags_must_match_the_frames(tmp_path):
    root = make_lasot(tmp_path)
    write_lines(root / "cat" / "cat-1" / "out_of_view.txt", ["0,0"])
    with pytest.raises(SourceError, match=r"out_of_view.txt: 2 lines for 3 frames"):
        load_sequences(root)
    write_lines(root / "cat" / "cat-1" / "out_of_view.txt", ["0,2,0"])
    with pytest.raises(SourceError, match=r"out_of_view.txt: expected 0 or 1 values, got '2'"):
        load_sequences(root)


def test_trackingnet_chunks_and_a_test_split_that_gives_first_boxes_only(tmp_path):
    root = make_trackingnet(tmp_path)
    assert detect_layout(root) == "trackingnet_root" and detect_layout(root / "TEST") == "trackingnet"
    (train,) = load_sequences(root)
    (test,) = load_sequences(root, split="test")
    assert (train.layout, train.one_based, test.name) == ("trackingnet", False, "clip")
    np.testing.assert_array_equal(train.boxes[2], [5, 4, 5, 6])  # 0-based, as written
    assert [p.name for p in test.frames] == ["0.jpg", "1.jpg", "2.jpg"]
    np.testing.assert_array_equal(test.boxes[0], [3, 4, 5, 6])
    assert np.isnan(test.boxes[1:]).all() and test.absent.tolist() == [False, True, True]


# --- frames as the tracker consumes them

def test_frames_are_read_in_order_a_few_ahead_of_the_consumer(tmp_path):
    write_frames(tmp_path, 30)
    paths = list_frames(tmp_path)
    started = []

    def read(path):
        started.append(path)
        return read_frame(path)

    for consumed, frame in enumerate(read_frames(paths, depth=3, read=read), start=1):
        assert frame.shape == (12, 16, 3) and frame.dtype == np.uint8
        assert len(started) <= consumed + 3  # never more than 3 frames beyond those handed out
    assert started == paths
    stopped = read_frames(paths, depth=3, read=read)
    started.clear()
    next(stopped)
    stopped.close()  # a tracker that stops early: nothing more is read
    assert len(started) <= 1 + 3


def test_an_unreadable_frame_fails_where_it_comes(tmp_path):
    write_frames(tmp_path, 4)
    bad = list_frames(tmp_path)[2]
    bad.write_bytes(b"not a jpeg")
    frames = read_frames(list_frames(tmp_path))
    assert next(frames).shape == next(frames).shape == (12, 16, 3)
    with pytest.raises(SourceError, match=rf"{bad.name}: cannot read the frame"):
        next(frames)
