"""Frames over the wire: a client's JPEG or PNG bytes to an RGB frame, checked before it is decoded, and
RGB frames to JPEG for the page."""
from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import FrameError
from .settings import JPEG_QUALITY

IMAGE_FORMATS = ("JPEG", "PNG")


def decode_frame(data: bytes, max_pixels: int) -> np.ndarray:
    """A JPEG or PNG image of at most `max_pixels` as HxWx3 uint8 RGB. Its size is read from its header
    first: a few kilobytes must not decode into gigabytes."""
    try:
        with Image.open(io.BytesIO(data)) as header:  # reads the header only
            kind, (width, height) = header.format, header.size
    except Image.DecompressionBombError:
        raise FrameError("the frame is larger than this server takes") from None
    except (UnidentifiedImageError, OSError):
        raise FrameError(f"a frame must be a JPEG or PNG image; got {len(data)} bytes of something else") from None
    if kind not in IMAGE_FORMATS:
        raise FrameError(f"a frame must be a JPEG or PNG image, got {kind}")
    if width * height > max_pixels:
        raise FrameError(f"a {width}x{height} frame is larger than this server takes ({max_pixels} pixels; "
                         "--max-frame-pixels)")
    bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FrameError(f"the {kind} frame is damaged and cannot be decoded")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def encode_jpeg(frame_rgb: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    bgr = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise FrameError(f"cannot encode a {frame_rgb.shape} frame as JPEG")
    return data.tobytes()
