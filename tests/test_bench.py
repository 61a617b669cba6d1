import json
from dataclasses import replace

import numpy as np
import pytest
from conftest import OTB_MINI, require

from siamtrack import TrackerSpec, busy
from siamtrack.baselines import OPENCV_TRACKERS, OpenCVTracker
from siamtrack.bench import TIMED_STAGES, BenchReport, bench_clip, format_report, run_bench
from siamtrack.bench.clip import decoded_clip
from siamtrack.cli import main
from siamtrack.config import load_config, shipped_configs
from siamtrack.core.backends import DEFAULT_BACKEND

FRAMES = 4


@pytest.fixture(scope="module")
def report():
    return run_bench(["siamfc_lite0_fast"], ["eager"], TrackerSpec(device="cpu"), bench_clip(FRAMES), baselines=["csrt"])


def test_every_stage_of_every_frame_is_timed(report):
    siamfc, csrt = report.rows
    assert (siamfc.tracker, siamfc.backend, csrt.tracker) == ("siamfc_lite0_fast", "eager", "csrt")
    for stage in TIMED_STAGES:
        assert len(siamfc.times[stage]) == (FRAMES if stage == "decode" else FRAMES - 1)
    assert np.allclose(np.sum([siamfc.times[s] for s in TIMED_STAGES[1:-1]], axis=0), siamfc.times["total"])
    assert csrt.times["crop"] == [] and len(csrt.times["total"]) == FRAMES - 1


def test_report_has_ratios_to_csrt_and_eager(report):
    data = report.to_dict()
    siamfc, csrt = data["rows"]
    assert data["size"] == [640, 360] and data["frames"] == FRAMES and len(data["load"]) == 2
    assert siamfc["vs_eager"] == 1.0 and csrt["vs_csrt"] == 1.0 and csrt["vs_eager"] is None
    assert siamfc["box_shift_px"] == 0.0 and siamfc["ms"]["backbone"]["p90"] >= siamfc["ms"]["backbone"]["median"]
    table = format_report(data)
    assert "siamfc_lite0_fast" in table and "csrt" in table and "x eager" in table


def test_every_shipped_config_is_benched_by_default():
    report = run_bench(backends=["eager"], spec=TrackerSpec(device="cpu"), clip=bench_clip(2), baselines=[])
    assert [(r.tracker, r.backend) for r in report.rows] == [(name, "eager") for name in shipped_configs()]
    assert {"siamfc_alexnet", "siamfc_lite0", "siamfc_lite0_fast"} <= set(shipped_configs())


@pytest.mark.skipif("csrt" not in OPENCV_TRACKERS, reason="this OpenCV build lacks CSRT")
def test_bench_times_the_csrt_that_eval_scores():
    clip = bench_clip(6)
    report = run_bench(["siamfc_lite0_fast"], ["eager"], TrackerSpec(device="cpu"), clip, baselines=["csrt"])
    rgb = [frame for frame, _, _ in decoded_clip(clip)]  # the frames the bench's trackers met
    csrt = OpenCVTracker("csrt")  # as eval builds it (siamtrack.evaluation.registry): on RGB frames
    csrt.init(rgb[0], clip.box)
    scored = [csrt.update(frame) for frame in rgb[1:]]
    assert np.array_equal(report.row("csrt", "opencv").boxes, scored)


def test_slow_notes_name_each_model_far_below_its_idle_fps(report):
    siamfc, csrt = report.rows
    slow = BenchReport([replace(siamfc, backend=DEFAULT_BACKEND, times={"total": [1000.0]}),
                        replace(csrt, times={"total": [1000.0]})], report.conditions)
    (name, note), = slow.slow_notes()  # none for OpenCV's tracker, which has no reference fps
    reference = load_config("siamfc_lite0_fast").reference_fps
    assert name == "siamfc_lite0_fast" and note.startswith(f"note: 1.0 fps is under a third of the {reference:g} fps")
    fast = BenchReport([replace(siamfc, backend=DEFAULT_BACKEND, times={"total": [1.0]})], report.conditions)
    assert fast.slow_notes() == []


@pytest.mark.parametrize("load, why", [(3.0, "the machine is busy (load average 3.0"),
                                       (0.4, "the machine is not busy, so its CPU is slower")])
def test_the_slow_note_blames_the_load_only_where_there_is_one(load, why, monkeypatch):
    monkeypatch.setattr(busy, "load_average", lambda: load)
    monkeypatch.setattr(busy.os, "cpu_count", lambda: 2)
    note = busy.slow_note(1.0, load_config("siamfc_lite0_fast"), "cpu", DEFAULT_BACKEND)
    assert why in note and "docs/running.md" in note


def test_bench_command_prints_the_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--config", "siamfc_alexnet", "--backend", "eager", "--frames", "3",
                 "--device", "cpu", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "siamfc_alexnet" in printed and "kcf" in printed and "mil" in printed
    rows = json.loads(out.read_text())["rows"]
    assert [r["tracker"] for r in rows] == ["siamfc_alexnet", "csrt", "kcf", "mil"]


def test_targets_bench_times_batched_separate_and_csrt_for_each_count(capsys):
    assert main(["bench", "--targets", "1", "3", "--config", "siamfc_lite0_fast", "--frames", "3",
                 "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    rows = [line.split() for line in printed.splitlines() if line.startswith(("siamfc_lite0_fast", "csrt"))]
    assert [(r[2], r[3]) for r in rows] == [("1", "batched"), ("1", "separate"), ("1", "csrt"),
                                            ("3", "batched"), ("3", "separate"), ("3", "csrt")]
    assert "target-updates/s" in printed and "x separate" in printed


def test_bench_on_a_real_sequence_folder(capsys):
    sequence = require(OTB_MINI) / "Crossing"
    assert main(["bench", "--sequence", str(sequence), "--frames", "3", "--config", "siamfc_lite0_fast",
                 "--backend", "eager", "--device", "cpu"]) == 0
    assert "Crossing clip, 3 frames 360x240" in capsys.readouterr().out


def test_frames_in_the_lost_state_are_timed_apart(capsys):
    """A stretch without the target: the frames a tracker starts with its target lost are timed apart from the
    tracked ones, and the table gives their cost against a tracked frame's."""
    clip = bench_clip(6, absent=8)
    assert len(clip.frames) == 14 and clip.absent == 8
    report = run_bench(["siamfc_lite0_fast"], ["eager"], TrackerSpec(device="cpu"), clip, baselines=[])
    row = report.rows[0]
    assert len(row.lost) == 13 and any(row.lost) and not all(row.lost)
    assert len(row.timings("total")) + len(row.timings("total", lost=True)) == 13
    data = report.to_dict()["rows"][0]
    assert data["lost_frames"] == sum(row.lost) and data["x_lost"] == pytest.approx(
        np.median(row.timings("total", lost=True)) / np.median(row.timings("total")))
    assert main(["bench", "--config", "siamfc_lite0_fast", "--backend", "eager", "--frames", "4", "--absent", "5",
                 "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "4 frames 640x360 and 5 of another scene (the target gone)" in printed and "x lost" in printed
