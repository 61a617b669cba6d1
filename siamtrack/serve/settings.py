"""What a server is started with, and the limits every session keeps.

Every limit a visitor can push against has a default here, shown in `siamtrack serve --help` and changed
there with an option; the rest are fixed constants.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import DEFAULT_CONFIG
from ..spec import TrackerSpec

DEFAULT_HOST = "127.0.0.1"  # loopback: nothing outside this machine can reach the page unless asked
DEFAULT_PORT = 8000
DEFAULT_MAX_SESSIONS = 8  # one tracker each; more answer "busy, try later" instead of slowing everyone
DEFAULT_MAX_UPLOAD_MB = 200
# targets one session tracks at once: each costs a batch of crops through the network every frame (the
# default model, 1 thread: 0.2 s a frame for 1, 1.4 s for 8, 2.7 s for 16; 400 of them took 5 GB of memory)
DEFAULT_MAX_TARGETS = 8
DEFAULT_IDLE_TIMEOUT_S = 300  # a session with nothing in or out this long is closed and its slot freed
DEFAULT_MAX_FRAME_PIXELS = 4096 * 2160  # 4K: a small JPEG or video must not decode to gigabytes
DEFAULT_MAX_UPLOAD_FRAMES = 9000  # frames of an upload tracked, at most: 5 minutes at 30 fps
DEFAULT_MAX_DISK_MB = 1000  # a session's folder: the upload, its boxes, its annotated mp4 and playback frames
MEGABYTE = 1 << 20
MAX_MESSAGE_BYTES = 16 * MEGABYTE  # one WebSocket message: a 4K JPEG fits many times over
MAX_WAITING_COMMANDS = 16  # commands a client may send ahead of the tracker before it is told to wait
JPEG_QUALITY = 85  # frames the server sends back live (server sources)
PLAYBACK_SIDE = 1280  # an upload's playback frames are stored at most this wide and high ...
PLAYBACK_QUALITY = 75  # ... at this JPEG quality: a 4K video must not expand a hundredfold on disk
PROGRESS_INTERVAL_S = 0.25  # an upload's progress messages, at most this often
TOKEN_BYTES = 32  # secrets.token_urlsafe: 43 characters, as unguessable as Jupyter's
SOURCE_RECONNECT_S = 10.0  # a server-side stream that stops is reopened for this long
SHUTDOWN_GRACE_S = 3  # on Ctrl-C, open sockets get this long to close before they are cut
ANY_HOST = "*"  # --allowed-host '*': every Host header is taken (behind a proxy that checks it)


@dataclass(frozen=True)
class ServeSettings:
    spec: TrackerSpec  # every session's tracker is built from it
    max_sessions: int = DEFAULT_MAX_SESSIONS
    max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB
    allow_server_sources: bool = False  # may a visitor make the server open a camera index or stream URL?
    token: str | None = None  # required in every request's URL (except the static files) when set
    max_targets: int = DEFAULT_MAX_TARGETS
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S  # 0: never
    allowed_hosts: tuple[str, ...] = ()  # Host names taken besides loopback's and IP addresses (security.py)
    max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS
    max_upload_frames: int = DEFAULT_MAX_UPLOAD_FRAMES
    max_disk_mb: int = DEFAULT_MAX_DISK_MB

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * MEGABYTE

    @property
    def max_disk_bytes(self) -> int:
        return self.max_disk_mb * MEGABYTE

    @property
    def model(self) -> str:
        """What the page names the model by."""
        if self.spec.config:
            return self.spec.config
        return f"the weights {self.spec.weights}" if self.spec.weights else f"{DEFAULT_CONFIG} (default)"

    @property
    def limits(self) -> dict:
        """The limits a page is told in its hello, to say what it may send."""
        return {"max_upload_mb": self.max_upload_mb, "max_targets": self.max_targets,
                "idle_timeout_s": self.idle_timeout_s, "max_frame_pixels": self.max_frame_pixels,
                "max_upload_frames": self.max_upload_frames, "max_disk_mb": self.max_disk_mb}
