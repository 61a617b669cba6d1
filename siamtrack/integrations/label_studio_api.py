"""The part of Label Studio's REST API the backend uses: a task's video, downloaded with the API key.

The key is Label Studio's own (LABEL_STUDIO_API_KEY, as its ML backends read it): a personal access token
(a JWT refresh token, Label Studio's default since 1.18) is exchanged at /api/token/refresh/ for a short-lived
access token sent as `Bearer`; a legacy token is sent as `Token`. Only URLs on Label Studio's own host are
fetched, so that a task cannot make the backend reach anything else on its network.
"""
from __future__ import annotations

import base64
import binascii
import json
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from .errors import AnnotationError, LabelStudioUnreachable

REFRESH_PATH = "/api/token/refresh/"
CHUNK_BYTES = 1 << 20  # a download is copied to disk this much at a time
REQUEST_TIMEOUT_S = 30.0  # a Label Studio that does not answer within this is down, not slow
UNAUTHORISED = (401, 403)
VIDEO_NAME = "video"  # the download's name in the request's own temporary folder


class LabelStudio:
    """Label Studio at `url`, read with `api_key`; videos of at most `max_bytes`."""

    def __init__(self, url: str, api_key: str, max_bytes: int):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise AnnotationError(f"LABEL_STUDIO_URL must be Label Studio's http(s) address, e.g. "
                                  f"http://localhost:8080, got {url!r}")
        self.url, self.api_key, self.max_bytes = url.rstrip("/") + "/", api_key, max_bytes

    def download(self, value: str, folder: Path) -> Path:
        """The task's video (its data value: a path on Label Studio or a URL there), as a file in `folder`."""
        url = self.resolve(value)
        request = urllib.request.Request(url, headers={"Authorization": self._authorization()})
        path = folder / VIDEO_NAME
        with self._open(request, what=f"the video {value}") as response, path.open("wb") as file:
            self._copy_bounded(response, file, value)
        return path

    def resolve(self, value: str) -> str:
        """The absolute URL of a task's video, refused unless it is on Label Studio's own host."""
        url = urljoin(self.url, value)
        if urlsplit(url)[:2] != urlsplit(self.url)[:2]:
            raise AnnotationError(f"the video {value} is not on Label Studio ({self.url}): siamtrack reads "
                                  "videos from Label Studio only (upload the video, or use its storage)")
        return url

    def _authorization(self) -> str:
        if not _is_jwt(self.api_key):
            return f"Token {self.api_key}"
        body = json.dumps({"refresh": self.api_key}).encode()
        request = urllib.request.Request(urljoin(self.url, REFRESH_PATH.lstrip("/")), data=body,
                                         headers={"Content-Type": "application/json"})
        with self._open(request, what="a fresh access token") as response:
            try:
                return f"Bearer {json.load(response)['access']}"
            except (ValueError, KeyError, TypeError):
                raise LabelStudioUnreachable(f"{self.url} answered {REFRESH_PATH} without an access token: is "
                                             "LABEL_STUDIO_URL Label Studio's?") from None

    def _open(self, request: urllib.request.Request, what: str):
        try:
            return urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S)
        except urllib.error.HTTPError as exc:
            if exc.code in UNAUTHORISED:
                raise LabelStudioUnreachable(f"Label Studio refused LABEL_STUDIO_API_KEY ({exc.code}) for {what}: "
                                             "give the key of a user of this project (Account & Settings)") from None
            raise AnnotationError(f"Label Studio answered {exc.code} {exc.reason} for {what}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise LabelStudioUnreachable(f"cannot reach Label Studio at {self.url} for {what} ({reason}); "
                                         "is LABEL_STUDIO_URL right?") from None

    def _copy_bounded(self, response, file, value: str) -> None:
        copied = 0
        while chunk := response.read(CHUNK_BYTES):
            copied += len(chunk)
            if copied > self.max_bytes:
                raise AnnotationError(f"the video {value} is larger than --max-video-mb "
                                      f"({self.max_bytes >> 20} MB)")
            file.write(chunk)


def _is_jwt(key: str) -> bool:
    """Whether the key is a JWT (a personal access token) rather than a legacy token: three base64url parts,
    the first a JSON header naming its algorithm."""
    parts = key.split(".")
    if len(parts) != 3:
        return False
    try:
        header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except (binascii.Error, ValueError):
        return False
    return isinstance(header, dict) and "alg" in header
