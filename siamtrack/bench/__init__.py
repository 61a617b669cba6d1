"""`siamtrack bench`: the speed benchmarks, each tracker timed in lockstep with the others on the frames
of one decoded video (siamtrack.bench.lockstep).

- stages: each model and backend timed stage by stage beside OpenCV's trackers;
- targets: many targets at once, batched against one tracker per target and one CSRT per target.
"""
from .clip import BenchClip, bench_clip
from .stages import TIMED_STAGES, BenchReport, format_report, run_bench
from .targets import TargetsReport, format_targets_report, run_targets_bench

__all__ = ["BenchClip", "BenchReport", "TIMED_STAGES", "TargetsReport", "bench_clip", "format_report",
           "format_targets_report", "run_bench", "run_targets_bench"]
