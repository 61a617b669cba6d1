"""`siamtrack vot`: serve the VOT toolkit over the TraX protocol; the toolkit starts it."""
from __future__ import annotations

import argparse

from .options import add_tracker_args, tracker_spec


def add_parser(sub) -> None:
    vot = sub.add_parser("vot", help="serve the VOT toolkit over the TraX protocol (started by the toolkit)")
    add_tracker_args(vot)
    vot.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from ..vot import serve
    serve(tracker_spec(args).build())  # stdout carries the protocol: print nothing here
    return 0
