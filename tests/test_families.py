"""Families of sequences and the choice rule (siamtrack.evaluation.families), on synthetic numbers; and
tools/families.yaml against the folders it tags."""
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA, require

from siamtrack.errors import ConfigError
from siamtrack.evaluation.families import combined_families, judge, load_tags, measured_families, members

FAMILIES = Path(__file__).resolve().parents[1] / "tools" / "families.yaml"
FOLDERS = ("train_mini", "train_more", "val_long", "val_motion")


def still(box, frames=5):
    return np.tile(np.asarray(box, dtype=float), (frames, 1))


def test_measured_families():
    assert measured_families(still([10, 10, 40, 40])) == set()
    assert measured_families(still([10, 10, 15, 15])) == {"LR", "small"}  # 225 px
    assert measured_families(still([10, 10, 30, 30])) == {"small"}  # 900 px
    grows = np.array([[30, 30, 40, 40], [25, 25, 50, 50], [20, 20, 60, 60], [15, 15, 70, 70], [5, 5, 90, 90]],
                     dtype=float)  # about one centre, side x 2.25
    assert measured_families(grows) == {"SV"}
    jumps = np.array([[10, 10, 40, 40], [35, 10, 40, 40]], dtype=float)  # 25 px in a frame
    assert measured_families(jumps) == {"FM"}
    flattens = np.array([[10, 10, 40, 40], [10, 10, 60, 25]], dtype=float)  # aspect 1 -> 2.4, size about the same
    assert measured_families(flattens) == {"ARC"}
    with_gap = np.array([[10, 10, 40, 40], [np.nan] * 4, [10, 10, 40, 40]])  # no box: left out, not a jump
    assert measured_families(with_gap) == set()


def test_combined_family_of_turning_targets_that_are_small_or_resize():
    assert combined_families({"IPR", "small"}) == combined_families({"IPR", "SV"}) == {"IPR+size"}
    assert combined_families({"IPR", "FM"}) == combined_families({"small", "SV"}) == set()


def test_members_counts_and_drops_small_families():
    families = [{"a", "b"}, {"a"}, {"a", "c"}, {"b"}]
    groups = members(families, min_members=2)
    assert list(groups) == ["a", "b"] and list(groups["a"]) == [0, 1, 2] and list(groups["b"]) == [0, 3]


def test_judge_passes_a_gain_everywhere():
    base = np.full(8, 0.5)
    verdict = judge(base + 0.01, base, {"all": np.arange(8)})
    assert verdict.chosen and (verdict.wins, verdict.losses) == (8, 0) and verdict.worst_family == ""


def test_judge_fails_a_family_that_loses_under_a_mean_that_gains():
    """The outside scoring's case: a gain on most clips hides a loss on a few of one kind."""
    base = np.full(10, 0.5)
    candidate = base + np.array([0.05] * 7 + [-0.04] * 3)  # mean +0.023
    families = {"many": np.arange(7), "turning": np.arange(7, 10)}
    verdict = judge(candidate, base, families)
    assert candidate.mean() > base.mean()
    assert not verdict.chosen and verdict.worst_family == "turning" and verdict.worst_change == pytest.approx(-0.04)
    assert "fail" in str(verdict) and "turning -0.040" in str(verdict)
    # within the allowed loss it passes
    assert judge(base + np.array([0.05] * 7 + [-0.015] * 3), base, families).chosen


def test_judge_needs_more_wins_than_losses():
    base = np.full(6, 0.5)
    candidate = base + np.array([0.1, 0.1, 0.1, -0.01, -0.01, -0.01])  # a big mean gain, as many losses as wins
    assert not judge(candidate, base, {"all": np.arange(6)}).chosen
    ties = base + np.array([0.1, 0.0005, -0.0005, 0, 0, 0])  # within the tie band: neither
    verdict = judge(ties, base, {})
    assert verdict.chosen and (verdict.wins, verdict.losses) == (1, 0)


def test_tags_need_a_families_list(tmp_path):
    path = tmp_path / "families.yaml"
    path.write_text("val_motion:\n  KiteSurf: {families: [IPR], note: x}\n  sphere: {note: y}\n")
    with pytest.raises(ConfigError, match="val_motion/sphere needs a 'families' list"):
        load_tags(path)


def test_every_sequence_is_tagged_and_every_family_has_members():
    require(SHARED_DATA / "val_motion")
    tags = load_tags(FAMILIES)
    on_disk = {f"{folder}/{p.parent.name}" for folder in FOLDERS
               for p in (SHARED_DATA / folder).glob("*/groundtruth_rect.txt")}
    assert set(tags) == on_disk
    counts = {f: len(i) for f, i in members(list(tags.values())).items()}
    assert min(counts.values()) >= 5, counts


def test_the_tool_prints_each_family_and_the_verdict(capsys):
    """tools/choose.py's tables from synthetic scores: a family mean with its change, the verdict of each row."""
    import sys
    sys.path.insert(0, str(FAMILIES.parent))
    from choose import report

    class Seq:
        def __init__(self, name):
            self.name = name

    sequences = [("pooled", "train_mini", Seq(f"s{i}")) for i in range(6)]
    families_of = [{"folder:pooled", "IPR"} if i < 4 else {"folder:pooled"} for i in range(6)]
    aucs = {"base": np.full(6, 0.5), "turns": np.array([0.45, 0.45, 0.46, 0.47, 0.8, 0.8])}
    report(aucs, {k: v + 0.2 for k, v in aucs.items()}, {"base": 10.0, "turns": 8.0}, sequences, families_of,
           "base", per_sequence=True)
    out = capsys.readouterr().out
    assert "| IPR (4) | 0.500 | 0.458 (-0.042) |" in out
    assert "| folder:pooled (6) | 0.500 | 0.572 (+0.072) |" in out
    assert "turns                    fail: 2 sequences better, 4 worse; worst family IPR -0.042" in out
    assert "| pooled/s4 | folder:pooled | 0.500 | 0.800 |" not in out and "| pooled/s4 |  | 0.500 | 0.800 |" in out
