"""What a server is started with, and the limits every session keeps."""
from __future__ import annotations

from dataclasses import dataclass

from ..config import DEFAULT_CONFIG
from ..spec import TrackerSpec

DEFAULT_HOST = "127.0.0.1"  # loopback: nothing outside this machine can reach the page unless asked
DEFAULT_PORT = 8000
DEFAULT_MAX_SESSIONS = 8  # one tracker each; more answer "busy, try later" instead of slowing everyone
DEFAULT_MAX_UPLOAD_MB = 200
MEGABYTE = 1 << 20
MAX_FRAME_PIXELS = 4096 * 2160  # 4K: a small JPEG or video must not decode to gigabytes
MAX_MESSAGE_BYTES = 16 * MEGABYTE  # one WebSocket message: a 4K JPEG fits many times over
MAX_WAITING_COMMANDS = 16  # commands a client may send ahead of the tracker before it is told to wait
JPEG_QUALITY = 85  # frames the server sends back (server sources, an upload's playback)
PROGRESS_INTERVAL_S = 0.25  # an upload's progress messages, at most this often
TOKEN_BYTES = 32  # secrets.token_urlsafe: 43 characters, as unguessable as Jupyter's
SOURCE_RECONNECT_S = 10.0  # a server-side stream that stops is reopened for this long
SHUTDOWN_GRACE_S = 3  # on Ctrl-C, open sockets get this long to close before they are cut


@dataclass(frozen=True)
class ServeSettings:
    spec: TrackerSpec  # every session's tracker is built from it
    max_sessions: int = DEFAULT_MAX_SESSIONS
    max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB
    allow_server_sources: bool = False  # may a visitor make the server open a camera index or stream URL?
    token: str | None = None  # required in every request's URL (except the static files) when set

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * MEGABYTE

    @property
    def model(self) -> str:
        """What the page names the model by."""
        if self.spec.config:
            return self.spec.config
        return f"the weights {self.spec.weights}" if self.spec.weights else f"{DEFAULT_CONFIG} (default)"
