"""The ASGI app: the page, its WebSocket (one Session each), uploads and downloads.

Routes (each but /static needs ?token= when the server has a token):
  GET  /                              the page
  GET  /static/...                    its script and style
  WS   /ws                            a session (README: the protocol)
  POST /sessions/{id}/upload          the request body is a video file; answers its size and rate as JSON
  GET  /sessions/{id}/frames/{n}.jpg  frame n of the tracked upload (the page's playback)
  GET  /sessions/{id}/{file}          live.boxes.txt, upload.boxes.txt or upload.mp4
A session's id is a random secret, handed only to its own socket; files are found by fixed names in the
session's private folder, never by a path from the request.
"""
from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path
from typing import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..core.model import Model
from ..core.tracker import SiamFCTracker
from ..draw import RED, TARGET_COLOURS
from ..errors import SiamtrackError
from .models import Models
from .protocol import error_message
from .security import POLICY_VIOLATION, HostGate, SecureHeaders, TokenGate, same_origin
from .session import LIVE_BOXES_NAME, Session
from .settings import ServeSettings
from .upload import BOXES_NAME, VIDEO_NAME, UploadBusy, UploadError, UploadTooLarge, check_video, frame_path

STATIC = Path(__file__).parent / "static"
TRY_AGAIN_LATER = 1013  # WebSocket close code: the server is at its session cap
IDLE_CLOSE = 4000  # WebSocket close code (the application's range): the session was idle too long
IDLE_CHECKS = 4  # the idle timeout is checked this many times over its length (and at least every 5 s)
SESSION_ID_BYTES = 16
UNSUPPORTED_MEDIA = 415  # an upload that is not a video this server reads
UPLOAD_STATUS = {UploadTooLarge: 413, UploadBusy: 409}
DOWNLOADS = {LIVE_BOXES_NAME: "siamtrack-live.boxes.txt", BOXES_NAME: "siamtrack-upload.boxes.txt",
             VIDEO_NAME: "siamtrack-upload.mp4"}  # a session's file -> the name it downloads as


def css_colour(bgr: tuple[int, int, int]) -> str:
    return "#{2:02x}{1:02x}{0:02x}".format(*bgr)


class NoSession(Exception):
    """A request for a session that is not open (it closed with its page, or never was)."""


class Sessions:
    """The open sessions, at most `limit` of them."""

    def __init__(self, limit: int):
        self.limit, self.open, self.served = limit, {}, 0

    def get(self, session_id: str) -> Session:
        session = self.open.get(session_id)
        if session is None:
            raise NoSession(session_id)
        return session


def build_app(settings: ServeSettings, models: Models | None = None, sessions: Sessions | None = None,
              new_tracker: Callable[[Model], SiamFCTracker] = SiamFCTracker) -> ASGIApp:
    """The app; each session gets `new_tracker(model)` over one of `models` (default: built now from
    settings.spec), and `sessions` (default: new) holds the open ones."""
    sessions = sessions or Sessions(settings.max_sessions)
    models = models or Models(lambda: settings.spec.model(quiet=True))

    hello = {"type": "hello", "model": settings.model, "server_sources": settings.allow_server_sources,
             **settings.limits, "colours": [css_colour(c) for c in TARGET_COLOURS], "lost_colour": css_colour(RED)}

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def socket(websocket: WebSocket) -> None:
        if not same_origin(websocket.headers):
            await websocket.close(code=POLICY_VIOLATION, reason="a page of another site may not use this server")
            return
        await websocket.accept()
        if len(sessions.open) >= sessions.limit:
            await websocket.send_json({"type": "busy", "message": f"busy: all {sessions.limit} sessions of this "
                                                                  "server are in use, try again later"})
            await websocket.close(code=TRY_AGAIN_LATER)
            return
        model, guard = models.lease()
        session = Session(secrets.token_urlsafe(SESSION_ID_BYTES), settings, new_tracker(model), guard,
                          _sender(websocket))
        sessions.open[session.id] = session
        sessions.served += 1
        worker = asyncio.create_task(session.work())
        try:
            await session.send({**hello, "session": session.id})
            if await _receive_until_idle(websocket, session, settings.idle_timeout_s):
                await session.send({"type": "idle", "message": f"closed after {settings.idle_timeout_s:g} s with "
                                                               "nothing sent or tracked (the server's --idle-timeout),"
                                                               " to free its place: reload the page to start again"})
                await websocket.close(code=IDLE_CLOSE)
        except WebSocketDisconnect:
            pass
        finally:  # no await here: on shutdown this task is cancelled, and the session must be freed all the same
            worker.cancel()
            del sessions.open[session.id]
            session.close()

    async def upload(request: Request) -> Response:
        session = sessions.get(request.path_params["session"])
        if not same_origin(request.headers):
            return JSONResponse({"error": "a page of another site may not upload here"}, status_code=403)
        try:
            path = session.upload_path()
            session.upload_receiving = True
            await _receive_file(request, path, settings.max_upload_bytes, settings.max_upload_mb)
            session.upload = await asyncio.to_thread(check_video, path, settings.max_frame_pixels)
        except UploadError as exc:
            return JSONResponse({"error": str(exc)}, status_code=UPLOAD_STATUS.get(type(exc), UNSUPPORTED_MEDIA))
        finally:
            session.upload_receiving, session.last_active = False, time.monotonic()
        info = session.upload
        return JSONResponse({"width": info.width, "height": info.height, "fps": info.fps, "frames": info.frames})

    async def frame(request: Request) -> Response:
        session = sessions.get(request.path_params["session"])
        index = _frame_index(request.path_params["name"], settings.max_upload_frames)
        if index is None:
            return _missing()
        return _file(frame_path(session.folder, index), media_type="image/jpeg")

    async def download(request: Request) -> Response:
        session = sessions.get(request.path_params["session"])
        name = request.path_params["name"]
        if name not in DOWNLOADS:
            return _missing()
        return _file(session.folder / name, filename=DOWNLOADS[name])

    async def no_session(request: Request, exc: NoSession) -> Response:
        return JSONResponse({"error": "no such session: it closed with its page (reload the page)"}, status_code=404)

    app = Starlette(routes=[
        Route("/", page),
        Mount("/static", StaticFiles(directory=STATIC)),
        WebSocketRoute("/ws", socket),
        Route("/sessions/{session}/upload", upload, methods=["POST"]),
        Route("/sessions/{session}/frames/{name}", frame),
        Route("/sessions/{session}/{name}", download),
    ], exception_handlers={NoSession: no_session})
    gated = TokenGate(app, settings.token) if settings.token else app
    return SecureHeaders(HostGate(gated, settings.allowed_hosts))


def _sender(websocket: WebSocket):
    async def send(message: dict | bytes) -> None:
        if isinstance(message, bytes):
            await websocket.send_bytes(message)
        else:
            await websocket.send_json(message)
    return send


async def _receive_until_idle(websocket: WebSocket, session: Session, timeout: float) -> bool:
    """The client's messages into its session until it leaves (False) or the session has been idle for
    `timeout` seconds (True; 0: never)."""
    receiver = asyncio.create_task(_receive(websocket, session))
    if not timeout:
        await receiver
        return False
    try:
        while not receiver.done():
            await asyncio.wait([receiver], timeout=min(5.0, timeout / IDLE_CHECKS))
            if not receiver.done() and session.idle_for() >= timeout:
                return True
        return receiver.result() or False
    finally:
        receiver.cancel()


async def _receive(websocket: WebSocket, session: Session) -> None:
    """The client's messages into its session until it leaves; a bad one is answered, never fatal."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        try:
            if message.get("bytes") is not None:
                session.frame_arrived(message["bytes"])
            elif message.get("text") is not None:
                session.text_arrived(message["text"])
        except SiamtrackError as exc:
            await session.send(error_message(str(exc)))


async def _receive_file(request: Request, path: Path, limit: int, limit_mb: int) -> None:
    """The request's body into `path`, refused (and removed) past `limit` bytes."""
    too_large = UploadTooLarge(f"the upload is larger than this server takes ({limit_mb} MB; --max-upload-mb)")
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise too_large
    written = 0
    try:
        with path.open("wb") as file:
            async for chunk in request.stream():
                written += len(chunk)
                if written > limit:
                    raise too_large
                file.write(chunk)
    except UploadError:
        path.unlink(missing_ok=True)
        raise
    if not written:
        raise UploadError("the upload is empty: send the video file as the request's body")


def _frame_index(name: str, frames: int) -> int | None:
    """n of a playback frame's name `n.jpg`, if an upload can have it: a number of 5000 digits is neither
    read nor made into a path."""
    number = name.removesuffix(".jpg")
    if name == number or not (number.isascii() and number.isdigit()) or len(number) > len(str(frames)):
        return None
    return int(number) if int(number) < frames else None


def _file(path: Path, **kwargs) -> Response:
    return FileResponse(path, **kwargs) if path.is_file() else _missing()


def _missing() -> Response:
    return JSONResponse({"error": "not there (yet): nothing of that name in this session"}, status_code=404)
