"""`siamtrack eval`: score trackers on a benchmark folder through the got10k toolkit, on this machine or a
Ray cluster."""
from __future__ import annotations

import argparse
from typing import Iterable, Iterator

from tqdm import tqdm

from ..text import plural
from .options import DEFAULT_THREADS, add_quiet, add_tracker_args, positive_int, say, tracker_spec

RAY = "ray"
RAY_CLIENT = "ray://"


def cluster_address(text: str) -> str:
    """An argparse type: `ray` (RAY_ADDRESS, else this machine's cluster) or ray://HOST:PORT."""
    if text == RAY or (text.startswith(RAY_CLIENT) and len(text) > len(RAY_CLIENT)):
        return text
    raise argparse.ArgumentTypeError(f"must be '{RAY}' or {RAY_CLIENT}HOST:PORT, got '{text}'")


def add_parser(sub) -> None:
    from ..baselines import OPENCV_TRACKERS
    from ..datasets import DATASETS
    evaluate = sub.add_parser("eval", help="score trackers on a benchmark folder (got10k toolkit), here or on a "
                                           "Ray cluster")
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
    evaluate.add_argument("--cluster", type=cluster_address, metavar="ray|ray://HOST:PORT",
                          help="run each job (a tracker on a sequence) as a task on a running Ray cluster: 'ray' "
                               "joins RAY_ADDRESS's, else this machine's; ray://HOST:PORT through Ray Client. One "
                               "CPU per task, and a share of a GPU with --device cuda; every node reads --root at "
                               "the same path. Needs the cluster extra (default: local processes, --workers)")
    add_tracker_args(evaluate, threads_help=f"CPU threads in all, shared by the workers (default: {DEFAULT_THREADS} "
                                            "per worker; on a cluster, 1 per task)")
    evaluate.set_defaults(threads=None)
    add_quiet(evaluate)
    evaluate.set_defaults(func=handle)


def progress_bar(results: Iterator, total: int, quiet: bool, show_nodes: bool) -> Iterable:
    """One bar over all jobs; on a cluster, with the number of nodes that have run them."""
    nodes = set()
    with tqdm(total=total, unit="seq", disable=quiet) as bar:
        for result in results:
            nodes.add(result.node)
            if show_nodes:
                bar.set_postfix_str(plural(len(nodes), "node"), refresh=False)
            bar.update()
            yield result


def handle(args: argparse.Namespace) -> int:
    from ..evaluation import evaluate
    from ..evaluation.report import overall_table
    runner = None
    if args.cluster:
        from ..evaluation.cluster import RayCluster
        runner = RayCluster(None if args.cluster == RAY else args.cluster, device=args.device)
    trackers = [name.strip() for name in args.trackers.split(",") if name.strip()]
    summary = evaluate(args.dataset, args.root, trackers, args.out or f"eval_{args.dataset}", tracker_spec(args),
                       workers=args.workers, threads=args.threads or DEFAULT_THREADS * args.workers,
                       resume=args.resume, runner=runner,
                       progress=lambda results, total: progress_bar(results, total, args.quiet, bool(args.cluster)))
    print(f"{summary.benchmark}, {plural(len(summary.sequences), 'sequence')}:\n{overall_table(summary)}")
    print("wrote " + ", ".join(str(path) for path in summary.files))
    for label, note in summary.notes.items():  # the label may be "siamtrack": not "siamtrack: siamtrack: note"
        say(f"note on {label}: {note.removeprefix('note: ')}")
    for name, reasons in summary.failed.items():
        say(f"not scored: {name}: {failure_line(reasons)}")
    return 1 if summary.failed else 0


def failure_line(reasons: dict[str, str]) -> str:
    """Why a sequence failed, once per distinct reason: bad data fails every tracker alike."""
    trackers = {}
    for tracker, why in reasons.items():
        trackers.setdefault(why, []).append(tracker)
    return "; ".join(f"{why} ({', '.join(names)})" for why, names in trackers.items())
