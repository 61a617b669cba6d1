"""`siamtrack train`: train a model on sequence folders, on one process or several (DistributedDataParallel)."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..text import plural
from .options import add_config, add_device, add_overrides, add_quiet, positive_int, say


def add_parser(sub) -> None:
    train = sub.add_parser("train", help="train a model on sequence folders (GOT-10k, OTB or VOT layout)")
    add_config(train, note="; a resumed run keeps its own")
    train.add_argument("--data", nargs="+", required=True, metavar="DIR", help="dataset folders, any layout")
    train.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder: checkpoints, metrics, plot")
    train.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR from its last epoch")
    add_overrides(train, example="train.epochs=10")
    train.add_argument("--freeze-backbone", action="store_true", help="train only the layers after the backbone")
    train.add_argument("--nproc", type=positive_int, default=1,
                       help="local processes (DistributedDataParallel; default: 1)")
    add_device(train)
    add_quiet(train)
    train.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from ..training import check_run, launch, run_config, train
    overrides = args.overrides + (["train.freeze_backbone=true"] if args.freeze_backbone else [])
    cfg = run_config(args.out, args.config, overrides, args.resume)
    run = (cfg, args.data, args.out, args.resume, args.device, not args.quiet)
    try:
        if args.nproc > 1:
            check_run(cfg, args.data, args.out, args.resume)  # a user's mistake as one line, not N tracebacks
            launch(args.nproc, train, *run)
        else:
            train(*run)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the trainer saved where it was
        last = Path(args.out) / "last.pt"
        if last.exists():
            say(f"stopped: {last} keeps the run so far; the same command with --resume goes on from there")
        raise
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, one report
        out = Path(args.out)
        print(f"trained {plural(cfg.train.epochs, 'epoch')} -> {out / 'last.pt'}, {out / 'best.pt'} "
              f"(lowest validation loss), {out / 'metrics.jsonl'}, {out / 'curves.png'}")
    return 0
