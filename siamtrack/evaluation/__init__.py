"""Benchmarks: got10k's experiments over local folders, jobs run locally or on Ray, scores and reports.

    from siamtrack.evaluation import evaluate
    summary = evaluate("otb", "data/OTB", ["siamtrack", "csrt"], "runs/otb")
"""
from .evaluate import evaluate
from .report import Summary

__all__ = ["evaluate", "Summary"]
