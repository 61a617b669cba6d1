"""`siamtrack eval`: score trackers on a benchmark folder through the got10k toolkit."""
from __future__ import annotations

import argparse

from tqdm import tqdm

from ..text import plural
from .options import DEFAULT_THREADS, add_quiet, add_tracker_args, positive_int, say_if_slow, tracker_spec


def add_parser(sub) -> None:
    from ..baselines import OPENCV_TRACKERS
    from ..datasets import DATASETS
    evaluate = sub.add_parser("eval", help="score trackers on a benchmark folder (got10k toolkit)")
    evaluate.add_argument("--dataset", required=True, choices=DATASETS,
                          help="the benchmark: its folder layout, box convention and scores")
    evaluate.add_argument("--root", required=True, metavar="DIR", help="the benchmark's folder")
    evaluate.add_argument("--trackers", default="siamtrack",
                          help=f"comma-separated: siamtrack, {', '.join(OPENCV_TRACKERS)}, or shipped config names "
                               "and YAML paths, each a siamtrack model with the weights it names (default: siamtrack)")
    evaluate.add_argument("--out", metavar="DIR", help="results, reports, summary.md, plots (default: eval_DATASET)")
    evaluate.add_argument("--resume", action="store_true", help="keep finished sequences in --out, run the rest")
    evaluate.add_argument("--workers", type=positive_int, default=1,
                          help="processes running sequences in parallel (default: 1)")
    add_tracker_args(evaluate, threads_help=f"CPU threads in all, shared by the workers (default: {DEFAULT_THREADS} "
                                            "per worker)")
    evaluate.set_defaults(threads=None)
    add_quiet(evaluate)
    evaluate.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..evaluation import evaluate
    from ..inputs import resolve_device
    from ..registry import resolve_trackers
    from ..report import overall_table
    trackers = [name.strip() for name in args.trackers.split(",") if name.strip()]
    summary = evaluate(args.dataset, args.root, trackers, args.out or f"eval_{args.dataset}", tracker_spec(args),
                       workers=args.workers, threads=args.threads or DEFAULT_THREADS * args.workers,
                       resume=args.resume,
                       progress=lambda jobs, total: tqdm(jobs, total=total, unit="seq", disable=args.quiet))
    print(f"{summary.benchmark}, {plural(len(summary.sequences), 'sequence')}:\n{overall_table(summary)}")
    print("wrote " + ", ".join(str(path) for path in summary.files))
    for label, spec in resolve_trackers(trackers, tracker_spec(args)).items():
        if spec is not None and spec.weights is None:  # a siamtrack model whose config is known here
            say_if_slow(summary.overall[label]["fps"], load_config(spec.config, spec.overrides),
                        resolve_device(spec.device).type, spec.backend, label)
    return 0
