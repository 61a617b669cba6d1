"""The WebSocket protocol: the JSON messages a client sends, checked into commands, and those the server
answers with. README ("siamtrack serve", the protocol) documents every message; this is their one home.

Client -> server: a binary message is one frame (a JPEG or PNG image); a text message is one JSON object
with a "type": init, add, remove, clear, source, pause, resume, track_upload (see Command's subclasses).
Server -> client: JSON objects (hello, ready, boxes, frame, source_opened, source_ended, progress,
upload_done, error, busy); a `frame` message is followed by one binary message, the frame's JPEG.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from ..core.targets import Answers
from ..errors import SiamtrackError


class ProtocolError(SiamtrackError):
    """A client's message that is not one the protocol has: answered with an error message, never fatal."""


# every number a client sends is bounded before it is used: a box's coordinates (no frame is this wide: the
# pixel cap keeps them far smaller), a frame's number and a target's id (a 5000-digit integer is valid JSON)
MAX_COORDINATE = 1e6
MAX_COUNT = 2 ** 53  # frame numbers and target ids: exact as JavaScript numbers, far past any session's


@dataclass(frozen=True)
class Command:
    """A client's instruction; `needs_frame`: it applies to a frame (the next one the client sends, or the
    server source's frame on show)."""

    needs_frame = False


@dataclass(frozen=True)
class Init(Command):
    """Track these boxes (ids 0, 1, ...) from the frame, forgetting every target before. The frame: the next
    one the client sends, or with a server source, the one it showed as `frame`."""

    boxes: np.ndarray  # N x 4, x, y, w, h in the frame's pixels
    frame: int | None = None  # server sources: the number of the frame shown, on which the boxes were drawn
    needs_frame = True


@dataclass(frozen=True)
class Add(Init):
    """Track these boxes too, from the frame on (ids continue after the highest so far)."""


@dataclass(frozen=True)
class Remove(Command):
    target_id: int


@dataclass(frozen=True)
class Clear(Command):
    """Stop tracking every target."""


@dataclass(frozen=True)
class OpenSource(Command):
    """Frames from a camera index or stream URL the server opens (only with --allow-server-sources); None
    closes the one open and goes back to frames from the client."""

    source: str | None


@dataclass(frozen=True)
class Pause(Command):
    """Server sources: hold the frame on show (boxes drawn on it apply to it) until resume."""


@dataclass(frozen=True)
class Resume(Command):
    pass


@dataclass(frozen=True)
class TrackUpload(Command):
    """Track these boxes through the session's uploaded video, from its first frame."""

    boxes: np.ndarray


def parse_command(text: str, max_boxes: int) -> Command:
    """One client text message as a Command, or a ProtocolError saying what is wrong with it; a message may
    name at most `max_boxes` boxes (the session's cap on targets)."""
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):  # ValueError: JSONDecodeError, or an integer of over 4300 digits
        raise ProtocolError(f"not a JSON message (or a number in it too long): {_excerpt(text)}") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError(f'a message must be a JSON object with a "type", got {_excerpt(text)}')
    kind = message["type"]
    if kind == "track_upload":
        return TrackUpload(parse_boxes(message.get("boxes"), max_boxes))
    if kind in ("init", "add"):
        frame = message.get("frame")
        if frame is not None and not _is_count(frame):
            raise ProtocolError(f'"frame" must be the number of a frame shown, got {_excerpt(json.dumps(frame))}')
        return (Init if kind == "init" else Add)(parse_boxes(message.get("boxes"), max_boxes), frame)
    if kind == "remove":
        target_id = message.get("id")
        if not _is_count(target_id):
            raise ProtocolError(f'remove needs the target\'s "id", a whole number, got '
                                f'{_excerpt(json.dumps(target_id))}')
        return Remove(target_id)
    if kind == "source":
        source = message.get("source")
        if source is not None and not (isinstance(source, str) and source.strip()):
            raise ProtocolError(f'source needs "source": a camera index or stream URL (or null), got {source!r}')
        return OpenSource(source.strip() if source else None)
    simple = {"clear": Clear, "pause": Pause, "resume": Resume}
    if kind in simple:
        return simple[kind]()
    known = "init, add, remove, clear, source, pause, resume, track_upload"
    raise ProtocolError(f"unknown message type {_excerpt(kind)} (known: {known})")


def parse_boxes(boxes, max_boxes: int) -> np.ndarray:
    """A list of 1 to `max_boxes` [x, y, w, h] lists of numbers within +-MAX_COORDINATE as an N x 4 array.
    The session checks them against the frame."""
    if not isinstance(boxes, list) or not boxes:
        raise ProtocolError(f'"boxes" must be a non-empty list of [x, y, w, h], got {_excerpt(json.dumps(boxes))}')
    if len(boxes) > max_boxes:
        raise ProtocolError(f"{len(boxes)} boxes: this server tracks at most {max_boxes} targets a session "
                            "(--max-targets)")
    for box in boxes:
        if not isinstance(box, list) or len(box) != 4 or not all(_is_coordinate(v) for v in box):
            raise ProtocolError(f"a box must be [x, y, w, h], four finite numbers within +-{MAX_COORDINATE:g}, "
                                f"got {_excerpt(json.dumps(box))}")
    return np.array(boxes, dtype=np.float64)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_coordinate(value) -> bool:
    """A number within +-MAX_COORDINATE (NaN and infinities fail the comparison), compared as it is: a huge int
    would overflow a float."""
    return _is_number(value) and -MAX_COORDINATE <= value <= MAX_COORDINATE


def _is_count(value) -> bool:
    """A frame number or target id: a whole number from 0 to MAX_COUNT."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT


def _excerpt(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def boxes_message(frame: int, answers: Answers | None, dropped: int, track_ms: float) -> dict:
    """The answer to one frame: every tracked target's box, score (null before the first update) and lost flag
    (none without `answers`: nothing tracked)."""
    rows = zip(answers.ids, answers.boxes, answers.scores, answers.lost) if answers is not None else ()
    targets = [{"id": int(i), "box": [round(float(v), 2) for v in box],
                "score": None if math.isnan(score) else round(float(score), 4), "lost": bool(gone)}
               for i, box, score, gone in rows]
    return {"type": "boxes", "frame": frame, "targets": targets, "dropped": dropped, "track_ms": round(track_ms, 1)}


def error_message(text: str) -> dict:
    return {"type": "error", "message": text}
