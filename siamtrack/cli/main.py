"""The top-level parser and main(): parse, dispatch to the subcommand's handler, turn errors into one line."""
from __future__ import annotations

import argparse
import os
import signal
import sys

import cv2

from ..errors import SiamtrackError
from ..process import set_up, signal_handled
from . import bench, demo, eval as evaluate, export, label_studio, run, serve, train, vot

COMMANDS = (run, demo, vot, train, evaluate, bench, export, serve, label_studio)  # in the order --help lists them
AV_LOG_QUIET = "-8"  # FFmpeg's log level for silence: decoder complaints about a damaged file, line after line


class Parser(argparse.ArgumentParser):
    """argparse with its usage errors in one line, like every other siamtrack error, each pointing to the
    help of the subcommand it was made in; no option is taken from a prefix of its name (--box is not --boxes)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.commands: dict[str, argparse.ArgumentParser] = {}  # the subcommands' parsers, by name

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_args(self, args=None, namespace=None):
        # argparse reports an option no subcommand knows from the top-level parser, which would point
        # to `siamtrack --help` instead of the subcommand's
        parsed, unknown = self.parse_known_args(args, namespace)
        if unknown:
            self.commands.get(getattr(parsed, "command", None), self).error(
                f"unrecognized arguments: {' '.join(unknown)}")
        return parsed


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="siamtrack", description="SiamFC visual object tracking")
    sub = parser.add_subparsers(dest="command", required=True)
    parser.commands = sub.choices
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(run.attach_bbox_values(sys.argv[1:] if argv is None else argv))
    # this process reports bad input itself, in one line: OpenCV's and FFmpeg's own logs would bury it
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_FATAL)
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", AV_LOG_QUIET)
    set_up(getattr(args, "threads", None))  # the one place a command sets this process's state
    try:
        # SIGTERM (kill, a service manager, a container stop) handled as Ctrl-C: a run keeps its outputs, its
        # video finalised, and exits 130
        with signal_handled(signal.SIGTERM, signal.default_int_handler):
            return args.func(args)
    except SiamtrackError as exc:
        print(f"siamtrack: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a folder that cannot be made, a disk that is full: the user's to fix
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"siamtrack: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("siamtrack: interrupted", file=sys.stderr)
        return 130
