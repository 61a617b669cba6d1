"""A camera or stream opened on the server's side, for a visitor, only when the server allows it.

Only a camera index or a stream URL of a network scheme is ever opened: never a path, nor a URL that
FFmpeg would read from the server's disk (file:, concat:, subfile:, ...).
"""
from __future__ import annotations

from urllib.parse import urlsplit

from ..errors import SourceError
from ..sources import FrameSource, open_source
from .settings import SOURCE_RECONNECT_S

NETWORK_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "tcp", "udp", "srt")


class SourceRefused(SourceError):
    """A server source a visitor may not open: the server was not started with --allow-server-sources,
    or the text is neither a camera index nor a network stream URL."""


def check_source(text: str, allowed: bool) -> str:
    """`text` if it is a camera index or a network stream URL and the server allows server sources."""
    if not allowed:
        raise SourceRefused("this server opens no camera or stream of its own (start it with "
                            "--allow-server-sources to allow that); use your browser's camera or upload a video")
    if text.isdigit():
        return text
    scheme = urlsplit(text).scheme.lower()
    if scheme not in NETWORK_SCHEMES or not urlsplit(text).netloc:
        raise SourceRefused(f"{text!r} is neither a camera index (0, 1, ...) nor a stream URL "
                            f"({', '.join(s + '://' for s in NETWORK_SCHEMES)}); the server opens no files")
    return text


def open_server_source(text: str, allowed: bool) -> FrameSource:
    """The checked source, opened with the newest-frame reader of `siamtrack run` (blocks while it connects)."""
    return open_source(check_source(text, allowed), reconnect=SOURCE_RECONNECT_S)
