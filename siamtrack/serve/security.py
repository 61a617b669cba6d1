"""Who may use a server: the token in every request's URL (when the server has one), and same-origin
WebSockets and uploads, so that another web site open in the visitor's browser cannot drive the tracker."""
from __future__ import annotations

import ipaddress
import secrets
from urllib.parse import parse_qs, urlsplit

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocketClose

from .settings import TOKEN_BYTES

OPEN_PREFIX = "/static/"  # the page's script and style: the same for everyone, no secret in them
POLICY_VIOLATION = 1008  # WebSocket close code


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


def same_origin(headers) -> bool:
    """A browser's request from a page of this server (a script or robot, sending no Origin, passes)."""
    origin = headers.get("origin")
    return origin is None or urlsplit(origin).netloc == headers.get("host")


class TokenGate:
    """ASGI middleware: every HTTP request and WebSocket but the static files needs `?token=` (or an
    `Authorization: token ...` header) equal to the server's token."""

    def __init__(self, app: ASGIApp, token: str):
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"].startswith(OPEN_PREFIX) \
                or self._carries_token(scope):
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await WebSocketClose(code=POLICY_VIOLATION, reason="this server needs its token")(scope, receive, send)
        else:
            message = ("403: this server needs its token. Open the URL `siamtrack serve` printed, which ends in "
                       "?token=..., or ask whoever started it.\n")
            await PlainTextResponse(message, status_code=403)(scope, receive, send)

    def _carries_token(self, scope: Scope) -> bool:
        given = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0]
        for name, value in scope.get("headers", []):
            if name == b"authorization" and value.startswith(b"token "):
                given = value[len(b"token "):].decode("latin-1")
        return secrets.compare_digest(given.encode(), self.token.encode())
