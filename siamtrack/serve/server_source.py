"""A camera or stream opened on the server's side, for a visitor, only when the server allows it.

Only a camera index or a URL of the stream schemes README lists is ever opened: never a path, nor a URL that
FFmpeg would read from the server's disk (file:, concat:, subfile:, ...), nor one that makes it listen or
bind a port (tcp://...?listen=1, udp://), nor FFmpeg options in the URL. FFmpeg reads only the container
formats of video streams and files (FFMPEG_FORMATS): an HLS or DASH playlist, which would make the server
fetch whatever URLs it names, on any host, is refused.
"""
from __future__ import annotations

import os
from urllib.parse import urlsplit

from ..errors import SourceError
from ..sources import MAX_CAMERA_INDEX, FrameSource, is_camera_index, open_source
from .settings import SOURCE_RECONNECT_S

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "tcp")
NO_QUERY_SCHEMES = ("tcp",)  # FFmpeg reads its query as options: ?listen=1 makes it a server
# the demuxers FFmpeg may use in this process: streams (RTSP, MPEG-TS, FLV for RTMP, multipart JPEG of IP
# cameras) and video files (uploads, an mp4 over http); not hls, dash, concat, sdp, image2 and the like
FFMPEG_FORMATS = ("rtsp,mpegts,flv,mpjpeg,mjpeg,mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mpeg,ogg,asf,"
                  "h264,hevc,m4v,ivf,yuv4mpegpipe")
CAPTURE_OPTIONS = "OPENCV_FFMPEG_CAPTURE_OPTIONS"  # OpenCV hands these to FFmpeg at every open


class SourceRefused(SourceError):
    """A server source a visitor may not open: the server was not started with --allow-server-sources,
    or the text is neither a camera index nor a stream URL it may open."""


def restrict_ffmpeg_formats() -> None:
    """FFmpeg in this process reads FFMPEG_FORMATS only. Process-wide (an environment variable OpenCV reads at
    each open): called by `siamtrack serve` at its start, before any capture opens."""
    given = os.environ.get(CAPTURE_OPTIONS)
    os.environ[CAPTURE_OPTIONS] = "|".join(filter(None, [given, f"format_whitelist;{FFMPEG_FORMATS}"]))


def check_source(text: str, allowed: bool) -> str:
    """`text` if it is a camera index or a stream URL a visitor may open and the server allows server sources."""
    if not allowed:
        raise SourceRefused("this server opens no camera or stream of its own (start it with "
                            "--allow-server-sources to allow that); use your browser's camera or upload a video")
    if is_camera_index(text):
        if int(text) > MAX_CAMERA_INDEX:
            raise SourceRefused(f"camera {_excerpt(text)}: a camera index is a number from 0 to {MAX_CAMERA_INDEX}")
        return text
    url = _url(text)
    scheme = url.scheme.lower() if url else ""
    if url is None or scheme not in STREAM_SCHEMES or not url.hostname:
        raise SourceRefused(f"{_excerpt(text)} is neither a camera index (0, 1, ...) nor a stream URL "
                            f"({', '.join(s + '://' for s in STREAM_SCHEMES)}); the server opens no files")
    if scheme in NO_QUERY_SCHEMES and (url.query or url.fragment or url.path not in ("", "/")):
        raise SourceRefused(f"{_excerpt(text)}: a {scheme}:// source is tcp://HOST:PORT, with no options "
                            "(FFmpeg would read them: ?listen=1 makes the server listen)")
    return text


def open_server_source(text: str, allowed: bool) -> FrameSource:
    """The checked source, opened with the newest-frame reader of `siamtrack run` (blocks while it connects)."""
    return open_source(check_source(text, allowed), reconnect=SOURCE_RECONNECT_S)


def _url(text: str):
    """The parts of `text` as a URL; None for one with spaces or control characters, or that does not parse."""
    if not text.isprintable() or " " in text:
        return None
    try:
        return urlsplit(text)
    except ValueError:  # e.g. an unclosed [ of an IPv6 address
        return None


def _excerpt(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")
