"""The long-term benchmark: sequences made with the target known to be absent (tools/make_longterm.py), VOT-LT's
measures on hand-made boxes and flags, and `siamtrack eval --dataset longterm` end to end on a tiny made set."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import write_otb

from siamtrack.datasets import load_sequences
from siamtrack.evaluation import evaluate
from siamtrack.evaluation.benchmark import open_benchmark
from siamtrack.evaluation.longterm import RECOVERY_FRAMES, LongTermCounts, returns_of, sequence_counts

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import make_longterm  # noqa: E402

HOST_FRAMES = 40
OPTIONS = make_longterm.Options(absent=(5, 8), min_present=8, period=150, max_absences=3, min_jump=0.5, max_skip=20)


@pytest.fixture(scope="module")
def hosts(tmp_path_factory) -> Path:
    return write_otb(tmp_path_factory.mktemp("hosts"), sequences=3, frames=HOST_FRAMES)


@pytest.fixture(scope="module")
def made(hosts, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("made") / "longterm"
    return out, make_longterm.make([hosts], out, seed=3, options=OPTIONS)


# --- the generator

def test_made_sequences_are_read_as_lasot_with_absent_frames_nan_boxes_and_flags(hosts, made):
    out, manifest = made
    by_name = {seq.name: seq for seq in load_sequences(hosts)}
    sequences = {seq.name: seq for seq in load_sequences(out, split="test")}
    assert set(sequences) == set(manifest["sequences"]) and {n.split("-")[0] for n in sequences} == {"cut", "skip"}
    for name, seq in sequences.items():
        pieces = manifest["sequences"][name]
        assert seq.layout == "lasot" and seq.attributes == ("Out-of-View",)
        expected_absent = np.concatenate([np.full(p["end"] - p["start"], p["absent"]) for p in pieces])
        np.testing.assert_array_equal(seq.absent, expected_absent)
        assert np.isnan(seq.boxes[seq.absent]).all() and np.isfinite(seq.boxes[~seq.absent]).all()
        host = by_name[name.split("-", 1)[1]]
        kept = np.concatenate([np.arange(p["start"], p["end"]) for p in pieces if not p["absent"]])
        np.testing.assert_allclose(seq.boxes[~seq.absent], host.boxes[kept])  # the host's own boxes, 0-based
        first_kept = np.flatnonzero(~seq.absent)[0]
        assert seq.frames[first_kept].read_bytes() == host.frames[kept[0]].read_bytes()  # the host's files as they are
        assert all(p["source"] != host.name for p in pieces if p["absent"])  # the stretch: another sequence
        assert all(OPTIONS.absent[0] <= p["end"] - p["start"] <= OPTIONS.absent[1] for p in pieces if p["absent"])
        assert all(p["end"] - p["start"] >= OPTIONS.min_present for p in pieces if not p["absent"])


def test_a_cut_goes_on_where_it_left_and_a_skip_comes_back_elsewhere(hosts, made):
    _, manifest = made
    by_name = {seq.name: seq for seq in load_sequences(hosts)}
    for name, pieces in manifest["sequences"].items():
        host = by_name[name.split("-", 1)[1]]
        runs = [p for p in pieces if not p["absent"]]
        for before, after in zip(runs, runs[1:]):
            if name.startswith("cut"):
                assert after["start"] == before["end"]
            else:
                assert before["end"] < after["start"] <= before["end"] - 1 + OPTIONS.max_skip
                assert make_longterm.jump(host, before["end"] - 1, after["start"]) >= OPTIONS.min_jump


def test_the_same_seed_makes_the_same_sequences(hosts, made, tmp_path):
    out, manifest = made
    again = make_longterm.make([hosts], tmp_path / "again", seed=3, options=OPTIONS)
    assert again["sequences"] == manifest["sequences"]
    name = next(iter(manifest["sequences"]))
    kind = name.split("-")[0]
    assert (tmp_path / "again" / kind / name / "groundtruth.txt").read_text() == \
        (out / kind / name / "groundtruth.txt").read_text()
    assert make_longterm.make([hosts], tmp_path / "other", seed=4, options=OPTIONS)["sequences"] != manifest["sequences"]


def test_a_host_too_short_is_left_out_and_said_so(hosts, tmp_path):
    manifest = make_longterm.make([hosts], tmp_path / "lt", seed=0, kinds=("cut",),
                                  options=make_longterm.Options(min_present=HOST_FRAMES))
    assert not manifest["sequences"] and set(manifest["left_out"]) == {f"cut-seq{i}" for i in range(3)}


# --- the measures, by hand

def test_measures_on_hand_made_boxes_and_flags():
    box, elsewhere = [10.0, 10.0, 20.0, 20.0], [200.0, 200.0, 20.0, 20.0]
    #        frame:   0    1    2    3       4       5          6          7    8    9
    absent = np.array([0, 0, 0, 1, 1, 0, 0, 0, 0, 0], dtype=bool)
    truth = np.array([box] * 10)
    truth[absent] = np.nan
    boxes = np.array([box, box, elsewhere, box, box, elsewhere, box, box, box, box])
    lost = np.array([0, 0, 0, 1, 0, 1, 1, 0, 0, 1], dtype=bool)
    counts = sequence_counts(boxes, lost, truth, absent)
    scores = counts.scores()
    # reported: frames 1 2 4 7 8 (IoU 1, 0, 0 absent, 1, 1): precision 3/5; present frames 1 2 5-9 (7): recall 3/7
    assert scores["lt_precision"] == pytest.approx(3 / 5) and scores["lt_recall"] == pytest.approx(3 / 7)
    assert scores["f_score"] == pytest.approx(2 * 0.6 * 3 / 7 / (0.6 + 3 / 7))
    assert scores["absent_flagged"] == pytest.approx(1 / 2)  # frame 3 of 3, 4
    assert scores["tracked_flagged"] == pytest.approx(2 / 5)  # frames 6 and 9 of 1 6 7 8 9
    # flagged with the target there: 5 6 9; of those failed (IoU < 0.1): 5; failed: 2 and 5
    assert scores["failure_precision"] == pytest.approx(1 / 3) and scores["failure_recall"] == pytest.approx(1 / 2)
    assert counts.returns == 1 and scores["recovered"] == 1.0  # back at 5, reported at IoU 1 at frame 7
    assert scores["iou_after_return"] == pytest.approx(4 / 5)  # frames 5-9: 0 1 1 1 1


def test_a_return_not_reported_well_within_the_window_is_not_recovered():
    frames = 5 + RECOVERY_FRAMES + 5
    absent = np.zeros(frames, dtype=bool)
    absent[2:5] = True
    truth = np.tile([10.0, 10.0, 20.0, 20.0], (frames, 1))
    lost = np.zeros(frames, dtype=bool)
    lost[2:5 + RECOVERY_FRAMES] = True  # flagged until the window has passed: found too late
    counts = sequence_counts(truth.copy(), lost, truth, absent)
    assert returns_of(absent).tolist() == [5] and counts.recovered == 0
    lost[5 + RECOVERY_FRAMES - 1] = False  # the window's last frame
    assert sequence_counts(truth.copy(), lost, truth, absent).recovered == 1


def test_sequences_average_precision_and_recall_and_pool_the_shares():
    truth = np.tile([0.0, 0.0, 10.0, 10.0], (3, 1))
    absent = np.zeros(3, dtype=bool)
    good = sequence_counts(truth.copy(), np.zeros(3, dtype=bool), truth, absent)
    silent = sequence_counts(truth.copy(), np.ones(3, dtype=bool), truth, absent)  # reports nothing
    scores = (good + silent).scores()
    assert silent.precision == 1.0 and silent.recall == 0.0  # as VOT's toolkit scores a silent tracker
    assert scores["lt_precision"] == 1.0 and scores["lt_recall"] == 0.5
    assert scores["tracked_flagged"] == pytest.approx(2 / 4)
    assert np.isnan(LongTermCounts().scores()["recovered"])


# --- eval's long-term protocol

def test_eval_longterm_scores_the_lost_flags_and_lasot_on_the_same_folder_writes_none(made, tmp_path):
    out, manifest = made
    summary = evaluate("longterm", out, ["csrt"], tmp_path / "lt")
    row = summary.overall["csrt"]
    assert summary.columns[:3] == ["success_auc", "f_score", "lt_precision"]
    assert all(0 <= row[c] <= 1 for c in ("f_score", "lt_precision", "lt_recall", "absent_flagged", "recovered"))
    benchmark = open_benchmark("longterm", out, tmp_path / "lt")
    for name in benchmark.seq_names:
        flags = benchmark.lost("csrt", name)
        assert len(flags) == len(benchmark.records("csrt", name)[0]) and not flags[0]
    assert "F-score (LT)" in (tmp_path / "lt" / "summary.md").read_text()
    lasot = evaluate("lasot", out, ["csrt"], tmp_path / "lasot")
    assert lasot.columns == ["success_auc", "precision", "norm_precision_20", "size_bound", "fps"]
    assert not list((tmp_path / "lasot").rglob("*_lost.txt"))
    assert lasot.overall["csrt"]["success_auc"] == pytest.approx(row["success_auc"])  # LaSOT's, the same boxes
    assert json.loads((out / "longterm.json").read_text())["seed"] == 3


def test_eval_longterm_on_an_otb_folder_scores_the_flag_against_failures_and_otbs_success(hosts, tmp_path):
    """An OTB-layout folder under the long-term protocol: the target is always there, so the flag is read
    against the frames where the box failed; the success AUC is OTB's."""
    longterm = evaluate("longterm", hosts, ["csrt"], tmp_path / "lt").overall["csrt"]
    otb = evaluate("otb", hosts, ["csrt"], tmp_path / "otb").overall["csrt"]
    assert longterm["success_auc"] == pytest.approx(otb["success_auc"])
    assert np.isnan(longterm["absent_flagged"]) and np.isnan(longterm["recovered"])
    assert 0 <= longterm["tracked_flagged"] <= 1 and longterm["lt_recall"] > 0
