"""Who may use a server, and what a browser may do with its answers.

- The Host header: only the names the server was started for (HostGate). A web page the visitor opens
  elsewhere can point its own domain at 127.0.0.1 (DNS rebinding); the browser then sends that domain as
  the Host, and the Origin matches it, so only the Host check tells that page from this server's own.
- The token in every request's URL (when the server has one: any host but loopback; TokenGate).
- Same-origin WebSockets and uploads, so that another web site open in the visitor's browser cannot drive
  the tracker (same_origin).
- Headers on every answer: a Content-Security-Policy that lets the page load only its own script, style
  and images and talk only to this server, no framing by other pages, no content-type sniffing, no
  Referer carrying the token (SecureHeaders).
"""
from __future__ import annotations

import ipaddress
import secrets
from urllib.parse import parse_qs, urlsplit

from starlette.datastructures import MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocketClose

from .settings import ANY_HOST, TOKEN_BYTES

OPEN_PREFIX = "/static/"  # the page's script and style: the same for everyone, no secret in them
POLICY_VIOLATION = 1008  # WebSocket close code
LOOPBACK_NAMES = ("localhost",)  # and every *.localhost, which browsers resolve to loopback themselves
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
                               "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
                               "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the page's URL may hold the token
    "Cross-Origin-Resource-Policy": "same-origin",  # another site's page may not embed a session's frames
}


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the server to this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def host_name(header: str) -> str:
    """The name in a Host header, without its port and brackets, lower case: '[::1]:8000' -> '::1'."""
    name = header.strip().lower()
    if name.startswith("["):
        return name[1:].split("]", 1)[0]
    return name.rsplit(":", 1)[0] if name.count(":") == 1 else name


def host_allowed(header: str | None, names: tuple[str, ...]) -> bool:
    """Whether a request's Host header names this server: an IP address (a page that rebinds a name to this
    machine sends its name, never an address), localhost (and *.localhost), or one of `names` (the --host
    the server was started on, this machine's name when it listens on every address, and --allowed-host);
    ANY_HOST among them takes every header."""
    if ANY_HOST in names:
        return True
    if not header:
        return False
    name = host_name(header).rstrip(".")
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    return name in LOOPBACK_NAMES or name.endswith(".localhost") or name in {n.lower() for n in names}


def same_origin(headers) -> bool:
    """A browser's request from a page of this server (a script or robot, sending no Origin, passes)."""
    origin = headers.get("origin")
    return origin is None or urlsplit(origin).netloc == headers.get("host")


class HostGate:
    """ASGI middleware: a request whose Host header is not one of this server's names is refused before
    anything else runs (400, or a WebSocket closed with 1008)."""

    def __init__(self, app: ASGIApp, names: tuple[str, ...]):
        self.app, self.names = app, names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or host_allowed(_header(scope, b"host"), self.names):
            await self.app(scope, receive, send)
        else:
            await _refuse(scope, receive, send, 400, "this server does not answer to that host name. Open it by its "
                                                     "address, or start it with --allowed-host NAME.")


class TokenGate:
    """ASGI middleware: every HTTP request and WebSocket but the static files needs `?token=` (or an
    `Authorization: token ...` header) equal to the server's token."""

    def __init__(self, app: ASGIApp, token: str):
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"].startswith(OPEN_PREFIX) \
                or self._carries_token(scope):
            await self.app(scope, receive, send)
        else:
            await _refuse(scope, receive, send, 403, "this server needs its token. Open the URL `siamtrack serve` "
                                                     "printed, which ends in ?token=..., or ask whoever started it.")

    def _carries_token(self, scope: Scope) -> bool:
        given = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0]
        authorization = _header(scope, b"authorization") or ""
        if authorization.startswith("token "):
            given = authorization[len("token "):]
        return secrets.compare_digest(given.encode(), self.token.encode())


class SecureHeaders:
    """ASGI middleware: HEADERS on every HTTP answer."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, why: str) -> None:
    """A request turned away: an HTTP status with `why`, or a WebSocket closed for policy (its reason, short)."""
    if scope["type"] == "websocket":
        await WebSocketClose(code=POLICY_VIOLATION, reason=why.split(".")[0])(scope, receive, send)
    else:
        await PlainTextResponse(f"{status}: {why}\n", status_code=status)(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    return next((value.decode("latin-1") for key, value in scope.get("headers", []) if key == name), None)
