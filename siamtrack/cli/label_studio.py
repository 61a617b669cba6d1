"""`siamtrack label-studio`: a Label Studio ML backend that tracks the boxes people draw on video tasks."""
from __future__ import annotations

import argparse
import logging
import os

from ..errors import SiamtrackError
from ..serve.settings import ANY_HOST  # no optional package in these
from ..text import plural
from .options import add_tracker_args, positive_int, say, tracker_spec
from .serve import add_address_args, host_names, listen, page_urls, run_until_stopped

DEFAULT_PORT = 9090  # Label Studio's ML backends' usual port
ENV_URL, ENV_KEY = "LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY"  # as Label Studio's own ML backends read them


def add_parser(sub) -> None:
    from ..integrations.label_studio import DEFAULT_KEYFRAME_STRIDE, DEFAULT_MAX_VIDEO_MB  # no optional package
    parser = sub.add_parser("label-studio", help="a Label Studio ML backend: track the boxes drawn on video tasks",
                            description=f"Reads each task's video from Label Studio at ${ENV_URL} with ${ENV_KEY} "
                                        "(a personal access token or a legacy token).")
    add_address_args(parser, DEFAULT_PORT, "the password the backend prints, unless --no-auth")
    parser.add_argument("--keyframe-stride", type=positive_int, default=DEFAULT_KEYFRAME_STRIDE,
                        help=f"a keyframe every this many frames; Label Studio interpolates between them "
                             f"(default: {DEFAULT_KEYFRAME_STRIDE})")
    parser.add_argument("--max-frames", type=positive_int,
                        help="track at most this many frames past the earliest box (default: to the video's end)")
    parser.add_argument("--max-video-mb", type=positive_int, default=DEFAULT_MAX_VIDEO_MB,
                        help=f"largest video read from Label Studio, in MB (default: {DEFAULT_MAX_VIDEO_MB})")
    parser.add_argument("--workers", type=positive_int, default=1,
                        help="tasks tracked at once, one tracker each; more wait their turn (default: 1)")
    parser.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                        help=f"a host name Label Studio may reach the backend by besides IP addresses, localhost and "
                             f"--host, e.g. a container's name (repeatable; '{ANY_HOST}': any, behind a proxy that "
                             "checks it)")
    parser.add_argument("--no-auth", action="store_true",
                        help="serve a non-loopback --host without a password: anyone who reaches it may use it")
    add_tracker_args(parser)
    parser.set_defaults(func=handle)


def show_log() -> None:
    """The backend's log lines (a task tracked, a request refused) on stderr, as this command's own."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("label-studio: %(message)s"))
    log = logging.getLogger("siamtrack.integrations")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def handle(args: argparse.Namespace) -> int:
    try:
        import uvicorn  # noqa: F401 (run_until_stopped uses it: a missing extra fails here, in one line)

        from ..integrations.label_studio import Backend, BackendSettings, build_trackers, model_version
        from ..integrations.label_studio_api import LabelStudio
        from ..integrations.label_studio_app import BASIC_AUTH_USER, build_app
        from ..serve.memory import limit_heaps
        from ..serve.security import is_loopback, new_token
    except ImportError as exc:
        raise SiamtrackError(f"siamtrack label-studio needs the label-studio extra ({exc.name} is missing): "
                             "pip install 'siamtrack[label-studio]'") from None
    url, key = os.environ.get(ENV_URL), os.environ.get(ENV_KEY)
    if not url or not key:
        raise SiamtrackError(f"set {ENV_URL} (Label Studio's address, e.g. http://localhost:8080) and {ENV_KEY} "
                             "(Account & Settings > Personal Access Token): the backend reads the tasks' videos there")
    label_studio = LabelStudio(url, key, args.max_video_mb << 20)
    with listen(args.host, args.port) as listener:  # a taken port fails before seconds of building
        limit_heaps()  # before the requests' threads
        spec = tracker_spec(args)
        trackers = build_trackers(spec, args.workers)  # a bad config or weights file fails here, not in a request
        with trackers.lease() as tracker:
            version = model_version(spec, tracker.model)
        backend = Backend(BackendSettings(label_studio, args.keyframe_stride, args.max_frames), trackers, version)
        password = None if args.no_auth or is_loopback(args.host) else new_token()
        port = listener.getsockname()[1]
        for address in page_urls(args.host, port, None):
            print(f"label-studio: connect Label Studio's Model to {address.rstrip('/')} (model version {version})",
                  flush=True)
        if password:
            print(f"label-studio: with Basic Authentication, user {BASIC_AUTH_USER}, password {password}", flush=True)
        if is_loopback(args.host):
            say("a Label Studio on this machine connects only if started with ML_BLOCK_LOCAL_IP=false "
                "(Label Studio refuses local addresses by default)")
        show_log()
        app = build_app(backend, password, host_names(args.host, args.allowed_host))
        run_until_stopped(app, listener)
    print(f"label-studio: stopped after {plural(backend.tracked_tasks, 'task')} tracked")
    return 0
