"""The Label Studio ML backend over HTTP (Starlette, run by uvicorn): the routes Label Studio calls.

  GET  /, /health   {"status": "UP", ...}: Label Studio's health check (it waits 1 s for it)
  POST /setup       the project's labeling config, checked as the backend connects (Label Studio waits 3 s)
  POST /predict     tasks -> {"results": [one per task], "model_version"}; tracked on a worker thread, so
                    that /health answers meanwhile, and stopped if Label Studio closes the request
  POST /webhook     Label Studio's events (it sends every action to a backend it can reach): nothing to learn
                    from them, so each is acknowledged and dropped
Errors answer {"error": "..."} with a 4xx/5xx status, and the same line goes to the log.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import secrets
import threading

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import SiamtrackError
from ..serve.security import HostGate
from .errors import LabelStudioUnreachable
from .label_studio import Backend
from .video_tracking import Cancelled

log = logging.getLogger(__name__)

BAD_REQUEST, UNAUTHORISED, BAD_GATEWAY = 400, 401, 502
CLIENT_CLOSED = 499  # nginx's code for a request its client gave up on: nobody reads the answer
DISCONNECT_POLL_S = 0.5  # how often a running prediction checks that Label Studio still waits for it
BASIC_AUTH_USER = "siamtrack"  # the user name Label Studio sends with --host's password (Basic Authentication)


def build_app(backend: Backend, password: str | None = None, allowed_hosts: tuple[str, ...] = ()) -> ASGIApp:
    """The app; with a password, every request needs HTTP Basic Authentication as BASIC_AUTH_USER. As for
    `siamtrack serve`, a request is answered only under an IP address, localhost or `allowed_hosts` (its Host
    header): a web page open in a browser on this machine cannot reach the backend by pointing its own name
    at 127.0.0.1."""

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "UP", "model_class": "SiamFCTracker", "model_version": backend.version})

    async def setup(request: Request) -> Response:
        return await _answer(request, lambda body, cancelled: backend.setup(body))

    async def predict(request: Request) -> Response:
        return await _answer(request, backend.predict)

    async def webhook(request: Request) -> Response:
        return JSONResponse({})

    app = Starlette(routes=[Route("/", health), Route("/health", health), Route("/setup", setup, methods=["POST"]),
                            Route("/predict", predict, methods=["POST"]), Route("/webhook", webhook, methods=["POST"])])
    return HostGate(BasicAuth(app, password) if password else app, allowed_hosts)


async def _answer(request: Request, handle) -> Response:
    """`handle(body, cancelled)` on a worker thread, its answer as JSON; a SiamtrackError as a one-line error."""
    try:
        body = json.loads(await request.body())
    except ValueError:
        return _error(BAD_REQUEST, f"{request.url.path}: the request body is not JSON")
    if not isinstance(body, dict):
        return _error(BAD_REQUEST, f"{request.url.path}: the request body is not a JSON object")
    stop = threading.Event()
    work = asyncio.ensure_future(run_in_threadpool(handle, body, stop.is_set))
    while not work.done():
        await asyncio.wait({work}, timeout=DISCONNECT_POLL_S)
        if not work.done() and await request.is_disconnected():
            stop.set()
    try:
        return JSONResponse(work.result())
    except Cancelled:
        log.info("%s: Label Studio closed the request; stopped tracking", request.url.path)
        return Response(status_code=CLIENT_CLOSED)
    except LabelStudioUnreachable as exc:
        return _error(BAD_GATEWAY, str(exc))
    except SiamtrackError as exc:
        return _error(BAD_REQUEST, str(exc))


def _error(status: int, message: str) -> Response:
    log.warning("%s", message)
    return JSONResponse({"error": message}, status_code=status)


class BasicAuth:
    """ASGI middleware: every request needs `Authorization: Basic` with BASIC_AUTH_USER and the password."""

    def __init__(self, app: ASGIApp, password: str):
        self.app, self.expected = app, f"{BASIC_AUTH_USER}:{password}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._authorised(scope):
            await self.app(scope, receive, send)
            return
        response = JSONResponse({"error": "this backend needs its user and password (Basic Authentication)"},
                                status_code=UNAUTHORISED, headers={"WWW-Authenticate": 'Basic realm="siamtrack"'})
        await response(scope, receive, send)

    def _authorised(self, scope: Scope) -> bool:
        for name, value in scope.get("headers", []):
            if name == b"authorization" and value[:6].lower() == b"basic ":
                try:
                    given = base64.b64decode(value[6:], validate=True)
                except binascii.Error:
                    return False
                return secrets.compare_digest(given, self.expected)
        return False
