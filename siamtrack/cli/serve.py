"""`siamtrack serve`: a web page to track in the browser (camera, upload, or a server-side stream)."""
from __future__ import annotations

import argparse
import ipaddress
import os
import socket

from ..errors import SiamtrackError
from ..serve.settings import (ANY_HOST, DEFAULT_HOST, DEFAULT_IDLE_TIMEOUT_S,  # no optional package in these
                              DEFAULT_MAX_DISK_MB, DEFAULT_MAX_FRAME_PIXELS, DEFAULT_MAX_SESSIONS, DEFAULT_MAX_TARGETS,
                              DEFAULT_MAX_UPLOAD_FRAMES, DEFAULT_MAX_UPLOAD_MB, DEFAULT_PORT, MAX_MESSAGE_BYTES,
                              SHUTDOWN_GRACE_S, ServeSettings)
from ..text import plural
from .options import add_tracker_args, positive_int, say, tracker_spec, whole_number

ANY_ADDRESS = ("0.0.0.0", "::")


def add_address_args(parser: argparse.ArgumentParser, port: int, secret: str) -> None:
    """--host and --port of a server: this machine only by default, any other address needs `secret`."""
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"address to listen on (default: {DEFAULT_HOST}, this machine only); any other needs "
                             f"{secret}")
    parser.add_argument("--port", type=whole_number(0), default=port, help=f"port (default: {port}; 0: any free one)")


def add_parser(sub) -> None:
    serve = sub.add_parser("serve", help="a web page to track in the browser: camera, upload or stream")
    add_address_args(serve, DEFAULT_PORT, "the token the server prints, unless --no-token")
    serve.add_argument("--max-sessions", type=positive_int, default=DEFAULT_MAX_SESSIONS,
                       help=f"browser tabs tracking at once, one tracker each; more are told to try later "
                            f"(default: {DEFAULT_MAX_SESSIONS})")
    serve.add_argument("--max-upload-mb", type=positive_int, default=DEFAULT_MAX_UPLOAD_MB,
                       help=f"largest video a visitor may upload, in MB (default: {DEFAULT_MAX_UPLOAD_MB})")
    serve.add_argument("--max-targets", type=positive_int, default=DEFAULT_MAX_TARGETS,
                       help=f"targets one session tracks at once; each costs a crop through the network every "
                            f"frame (default: {DEFAULT_MAX_TARGETS})")
    serve.add_argument("--idle-timeout", type=whole_number(0), default=DEFAULT_IDLE_TIMEOUT_S, metavar="S",
                       help=f"close a session after S seconds with nothing sent or tracked, freeing its place; "
                            f"0: never (default: {DEFAULT_IDLE_TIMEOUT_S})")
    serve.add_argument("--max-frame-pixels", type=positive_int, default=DEFAULT_MAX_FRAME_PIXELS, metavar="N",
                       help=f"largest frame, in pixels (width x height), of a camera frame or an upload "
                            f"(default: {DEFAULT_MAX_FRAME_PIXELS}, 4096x2160)")
    serve.add_argument("--max-upload-frames", type=positive_int, default=DEFAULT_MAX_UPLOAD_FRAMES, metavar="N",
                       help=f"frames of an upload tracked, at most; the rest are left (default: "
                            f"{DEFAULT_MAX_UPLOAD_FRAMES})")
    serve.add_argument("--max-disk-mb", type=positive_int, default=DEFAULT_MAX_DISK_MB,
                       help=f"a session's files on disk, in MB: its upload, the annotated mp4 and the frames the "
                            f"page plays back; tracking an upload stops there (default: {DEFAULT_MAX_DISK_MB})")
    serve.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                       help=f"a host name the page may be opened by besides IP addresses, localhost and --host "
                            f"(repeatable; '{ANY_HOST}': any, behind a proxy that checks it). Other names are "
                            "refused: a web page must not reach this server by pointing its own name at it")
    serve.add_argument("--allow-server-sources", action="store_true",
                       help="let visitors open a camera index or stream URL on this server (default: off; "
                            "the server then opens no device and fetches no URL)")
    serve.add_argument("--no-token", action="store_true",
                       help="serve a non-loopback --host without a token: anyone who reaches it may use it")
    add_tracker_args(serve)
    serve.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    try:
        import uvicorn  # noqa: F401 (run_until_stopped uses it: a missing extra fails here, in one line)

        from ..serve.app import Sessions, build_app
        from ..serve.folders import remove_stale_folders
        from ..serve.memory import freeze_startup_objects, limit_heaps
        from ..serve.models import Models
        from ..serve.security import is_loopback, new_token
        from ..serve.server_source import restrict_ffmpeg_formats
    except ImportError as exc:
        raise SiamtrackError(f"siamtrack serve needs the serve extra ({exc.name} is missing): "
                             "pip install 'siamtrack[serve]'") from None
    if args.max_upload_mb > args.max_disk_mb:
        raise SiamtrackError(f"--max-upload-mb {args.max_upload_mb} is more than --max-disk-mb {args.max_disk_mb}, "
                             "which the upload counts against")
    with listen(args.host, args.port) as listener:  # a taken port fails before seconds of building
        limit_heaps()  # before the sessions' threads
        restrict_ffmpeg_formats()  # before any capture opens
        stale = remove_stale_folders()
        if stale:
            say(f"removed {plural(len(stale), 'session folder')} left by servers that were killed")
        spec = tracker_spec(args)
        models = Models(spec.model)  # built once, here: a bad config or weights file fails before any page
        token = None if args.no_token or is_loopback(args.host) else new_token()
        settings = ServeSettings(spec, args.max_sessions, args.max_upload_mb, args.allow_server_sources, token,
                                 args.max_targets, args.idle_timeout, host_names(args.host, args.allowed_host),
                                 args.max_frame_pixels, args.max_upload_frames, args.max_disk_mb)
        sessions = Sessions(settings.max_sessions)
        for url in page_urls(args.host, listener.getsockname()[1], token):
            print(f"serve: open {url}", flush=True)
        if args.allow_server_sources:
            say("--allow-server-sources: visitors may open cameras and stream URLs on this machine")
        app = build_app(settings, models, sessions)
        freeze_startup_objects()  # after the model and the app: collections skip them from now on
        run_until_stopped(app, listener, ws_max_size=MAX_MESSAGE_BYTES)
    print(f"serve: stopped after {plural(sessions.served, 'session')}")
    return 0

def run_until_stopped(app, listener: socket.socket, **options) -> None:
    """uvicorn serves the app on the listening socket until Ctrl-C or SIGTERM, the server's normal end."""
    import uvicorn
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
                            **options)
    try:
        uvicorn.Server(config).run(sockets=[listener])
    except KeyboardInterrupt:  # uvicorn has closed every socket
        pass


def host_names(host: str, allowed: list[str]) -> tuple[str, ...]:
    """The Host names the page may be opened by, besides IP addresses and localhost: --host, this machine's
    name when it listens on every address, and --allowed-host."""
    names = [socket.gethostname()] if host in ANY_ADDRESS else [host]
    return tuple(dict.fromkeys(name.lower() for name in [*names, *allowed]))


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or a one-line error saying why not."""
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        return socket.create_server(address, family=family)
    except socket.gaierror:
        raise SiamtrackError(f"--host {host}: no such address on this machine") from None
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        raise SiamtrackError(f"cannot listen on {host}:{port} ({why}); is another server there? "
                             "Choose another --port") from None


def page_urls(host: str, port: int, token: str | None) -> list[str]:
    """Where to open the page: the host given, or for every address, this machine's name and loopback."""
    query = f"/?token={token}" if token else "/"
    hosts = [socket.gethostname(), "127.0.0.1"] if host in ANY_ADDRESS else [host]
    return [f"http://{_bracketed(name)}:{port}{query}" for name in hosts]


def _bracketed(host: str) -> str:
    try:
        return f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:
        return host
