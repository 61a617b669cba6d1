"""`siamtrack serve`: a web page to track in the browser (camera, upload, or a server-side stream)."""
from __future__ import annotations

import argparse
import ipaddress
import os
import socket

from ..errors import SiamtrackError
from ..serve.settings import (DEFAULT_HOST, DEFAULT_MAX_SESSIONS, DEFAULT_MAX_UPLOAD_MB,  # no optional package in these
                              DEFAULT_PORT, MAX_MESSAGE_BYTES, SHUTDOWN_GRACE_S, ServeSettings)
from ..text import plural
from .options import add_tracker_args, positive_int, say, tracker_spec, whole_number

ANY_ADDRESS = ("0.0.0.0", "::")


def add_parser(sub) -> None:
    serve = sub.add_parser("serve", help="a web page to track in the browser: camera, upload or stream")
    serve.add_argument("--host", default=DEFAULT_HOST,
                       help=f"address to listen on (default: {DEFAULT_HOST}, this machine only); any other needs "
                            "the token the server prints, unless --no-token")
    serve.add_argument("--port", type=whole_number(0), default=DEFAULT_PORT,
                       help=f"port (default: {DEFAULT_PORT}; 0: any free one)")
    serve.add_argument("--max-sessions", type=positive_int, default=DEFAULT_MAX_SESSIONS,
                       help=f"browser tabs tracking at once, one tracker each; more are told to try later "
                            f"(default: {DEFAULT_MAX_SESSIONS})")
    serve.add_argument("--max-upload-mb", type=positive_int, default=DEFAULT_MAX_UPLOAD_MB,
                       help=f"largest video a visitor may upload, in MB (default: {DEFAULT_MAX_UPLOAD_MB})")
    serve.add_argument("--allow-server-sources", action="store_true",
                       help="let visitors open a camera index or stream URL on this server (default: off; "
                            "the server then opens no device and fetches no URL)")
    serve.add_argument("--no-token", action="store_true",
                       help="serve a non-loopback --host without a token: anyone who reaches it may use it")
    add_tracker_args(serve)
    serve.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..serve.app import Sessions, build_app
        from ..serve.memory import limit_heaps
        from ..serve.models import Models
        from ..serve.security import is_loopback, new_token
    except ImportError as exc:
        raise SiamtrackError(f"siamtrack serve needs the serve extra ({exc.name} is missing): "
                             "pip install 'siamtrack[serve]'") from None
    with listen(args.host, args.port) as listener:  # a taken port fails before seconds of building
        limit_heaps()  # before the sessions' threads
        spec = tracker_spec(args)
        models = Models(spec.model)  # built once, here: a bad config or weights file fails before any page
        token = None if args.no_token or is_loopback(args.host) else new_token()
        settings = ServeSettings(spec, args.max_sessions, args.max_upload_mb, args.allow_server_sources, token)
        sessions = Sessions(settings.max_sessions)
        for url in page_urls(args.host, listener.getsockname()[1], token):
            print(f"serve: open {url}", flush=True)
        if args.allow_server_sources:
            say("--allow-server-sources: visitors may open cameras and stream URLs on this machine")
        config = uvicorn.Config(build_app(settings, models, sessions), log_level="warning", lifespan="off",
                                ws_max_size=MAX_MESSAGE_BYTES, timeout_graceful_shutdown=SHUTDOWN_GRACE_S)
        try:
            uvicorn.Server(config).run(sockets=[listener])
        except KeyboardInterrupt:  # uvicorn has closed every socket: stopping is this command's normal end
            pass
    print(f"serve: stopped after {plural(sessions.served, 'session')}")
    return 0

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
