"""The options several subcommands share, and the small helpers their handlers use."""
from __future__ import annotations

import argparse
import sys
from typing import Callable

from ..busy import slow_note
from ..config import Config, shipped_configs
from ..core.backends import BACKENDS, DEFAULT_BACKEND
from ..spec import TrackerSpec

# torch's CPU threads: 1 never fell more than 29 % behind the best setting with 0, 1 or 3 other busy
# processes, while 2 collapsed to a sixth of it with one (tools/thread_policy.py; README)
DEFAULT_THREADS = 1
DEVICE_HELP = "auto, cpu or cuda (default: auto, cuda when available)"
THREADS_HELP = (f"CPU threads for torch (default: {DEFAULT_THREADS}: it holds up when other processes share the "
                "cores; see README, 'Threads on a busy machine')")


def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: an int >= minimum, or a one-line usage error."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {minimum}, got '{text}'")
        return value
    return parse


positive_int = whole_number(1)


def add_config(parser: argparse.ArgumentParser, several: bool = False, note: str = "") -> None:
    """--config: which model (several, for bench)."""
    many = {"nargs": "+"} if several else {}
    default = "every shipped config" if several else "the default model"
    parser.add_argument("--config", **many, help=f"shipped config name ({', '.join(shipped_configs())}) or YAML "
                                                 f"path (default: {default}{note})")


def add_model_args(parser: argparse.ArgumentParser, several: bool = False) -> None:
    """--config and --weights: which model, and its checkpoint."""
    add_config(parser, several)
    parser.add_argument("--weights", help="checkpoint path (default: the weights the config names)")


def add_overrides(parser: argparse.ArgumentParser, example: str = "track.window_influence=0.2") -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a config value, e.g. {example} (repeatable)")


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)


def add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def add_tracker_args(parser: argparse.ArgumentParser, several: bool = False, threads_help: str = THREADS_HELP) -> None:
    """The options a TrackerSpec is made of, and the CPU threads; `several` takes a list of configs and of
    backends (bench)."""
    add_model_args(parser, several)
    add_overrides(parser)
    add_device(parser)
    parser.add_argument("--backend", choices=BACKENDS, default=[DEFAULT_BACKEND] if several else DEFAULT_BACKEND,
                        **({"nargs": "+"} if several else {}),
                        help=f"inference backend (default: {DEFAULT_BACKEND}); all but onnxruntime-int8 "
                             "give the same boxes, the onnxruntime ones need the onnx extra")
    parser.add_argument("--threads", type=positive_int, default=DEFAULT_THREADS, help=threads_help)


def tracker_spec(args: argparse.Namespace) -> TrackerSpec:
    """The TrackerSpec the options of add_tracker_args describe (for one config and backend)."""
    return TrackerSpec(args.config, args.weights, tuple(args.overrides), args.device, args.backend)


def say_if_slow(fps: float, cfg: Config, device: str, backend: str, label: str = "") -> None:
    """The busy-machine note on stderr when the fps measured is far below the model's on an idle machine."""
    note = slow_note(fps, cfg, device, backend)
    if note:
        print(f"siamtrack: {label + ': ' if label else ''}{note}", file=sys.stderr)


def say(message: str) -> None:
    """A one-line notice on stderr, beside the results on stdout."""
    print(f"siamtrack: {message}", file=sys.stderr)
