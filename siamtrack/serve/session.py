"""One browser tab: its WebSocket's tracker, frames, files and server source, all freed when it closes.

Everything the tracker does runs on the session's own thread, one thing at a time, in the order the
client asked (the Mailbox keeps that order and drops stale frames); the event loop only moves messages.
"""
from __future__ import annotations

import asyncio
import logging
import shutil
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable, ContextManager

import numpy as np

from ..core.tracker import SiamFCTracker
from ..errors import SiamtrackError
from ..inputs import check_boxes, clip_to_frame
from ..outputs import RunOutputs
from ..sources import FrameSource
from .folders import session_folder
from .frames import decode_frame, encode_jpeg
from .mailbox import Frame, Mailbox, Order
from .memory import release_memory
from .protocol import (Add, Clear, Command, Init, OpenSource, Pause, ProtocolError, Remove, Resume, TrackUpload,
                       boxes_message, error_message, parse_command)
from .server_source import open_server_source
from .settings import MAX_WAITING_COMMANDS, PROGRESS_INTERVAL_S, ServeSettings
from .upload import UPLOAD_NAME, UploadBusy, UploadLimits, VideoInfo, remove_results, track_upload


@dataclass(frozen=True)
class SourceEnded(Command):
    """The server source ran out of frames: the session's own command, queued behind the source's last frame."""

    source: FrameSource


LIVE_BOXES_NAME = "live.boxes.txt"  # the rows of every frame tracked live in this session
SHOWN_KEPT = 8  # server sources: the frames shown last, one of which a client's boxes were drawn on
log = logging.getLogger("siamtrack.serve")

Send = Callable[[dict | bytes], Awaitable[None]]


class Session:
    """`tracker` is the session's own, over a model it may share with other sessions; each call into it goes
    through `guard` (siamtrack.serve.models)."""

    def __init__(self, session_id: str, settings: ServeSettings, tracker: SiamFCTracker, guard: ContextManager,
                 send: Send):
        self.id, self.settings, self._send = session_id, settings, send
        self._tracker, self._guard = tracker, guard
        self.folder = session_folder()  # mode 0700: this session's files only
        self.mailbox = Mailbox(MAX_WAITING_COMMANDS)
        self.frames_received = 0  # the client's frames, each numbered by its place among them
        self.tracking = False  # whether the tracker holds targets of the live frames
        self.upload: VideoInfo | None = None
        self.upload_running = False
        self.upload_receiving = False  # an upload's body is coming in
        self.working = False  # the worker handles a frame or command
        self.closed = threading.Event()  # set on close: a running upload job stops
        self.source: FrameSource | None = None
        self.paused = False
        self._shown: deque[Frame] = deque(maxlen=SHOWN_KEPT)
        self._pump: asyncio.Task | None = None
        self._send_lock = asyncio.Lock()
        # one thread per session: its tracker is used there, one call at a time
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"siamtrack-session-{session_id[:6]}")
        self._live_rows = RunOutputs(None, str(self.folder / LIVE_BOXES_NAME), fps=0.0)
        self.last_active = time.monotonic()  # a message in or out: the idle timeout counts from it

    def idle_for(self) -> float:
        """Seconds since the last message in or out; 0 while the tracker works on the client's frame or command,
        while an upload comes in or is tracked (it says nothing for a while when it is large) and while a server
        source is open (it ends by itself when it stops)."""
        if self.working or self.upload_receiving or self.upload_running or self.source is not None:
            return 0.0
        return time.monotonic() - self.last_active

    # --- messages in

    def frame_arrived(self, data: bytes) -> None:
        self.last_active = time.monotonic()
        if self.source is not None:
            raise ProtocolError("this session shows a server source: close it ({\"type\": \"source\", \"source\": "
                                "null}) before sending frames of your own")
        self.mailbox.put_frame(Frame(self.frames_received, data))
        self.frames_received += 1

    def text_arrived(self, text: str) -> None:
        self.last_active = time.monotonic()
        command = parse_command(text, self.settings.max_targets)
        if isinstance(command, Pause | Resume):
            self.paused = isinstance(command, Pause)  # at once: the source's next frame is held back already
        frame = None
        if isinstance(command, Init) and self.source is not None:
            frame = self._shown_frame(command.frame)
        self.mailbox.put_command(command, frame)

    def _shown_frame(self, number: int | None) -> Frame:
        """A server source's frame the client drew its boxes on: the one it names, or the last shown."""
        if not self._shown:
            raise ProtocolError("no frame of the server source has been shown yet to draw boxes on")
        if number is None:
            return self._shown[-1]
        found = next((f for f in self._shown if f.number == number), None)
        if found is None:
            raise ProtocolError(f"frame {number} of the server source is gone (kept: the last {SHOWN_KEPT} shown)")
        return found

    # --- the worker: one item at a time, in order

    async def work(self) -> None:
        tracker = self._tracker
        await self.send({"type": "ready"})
        while True:
            item = await self.mailbox.take()
            self.working = True
            try:
                await self._handle(tracker, item)
            except SiamtrackError as exc:
                await self.send(error_message(str(exc)))
            except Exception:  # a fault of ours must not end the session silently: log it, say so, go on
                log.exception("session %s", self.id)
                await self.send(error_message("internal error in the server (logged there); the session goes on"))
            finally:
                self.working, self.last_active = False, time.monotonic()

    async def _handle(self, tracker: SiamFCTracker, item: Order | Frame) -> None:
        if isinstance(item, Frame):
            await self._track_frame(tracker, item)
            return
        command, frame = item.command, item.frame
        if isinstance(command, Init):
            await self._start_targets(tracker, command, frame)
        elif isinstance(command, Remove):
            await self._on_thread(tracker.remove, command.target_id)
        elif isinstance(command, Clear):
            self.tracking = False
        elif isinstance(command, OpenSource):
            await self._switch_source(command.source)
        elif isinstance(command, Pause | Resume) and self.source is None:
            raise ProtocolError("pause and resume hold a server source's frames; a client pauses by sending none")
        elif isinstance(command, TrackUpload):
            await self._track_upload(tracker, command.boxes)
        elif isinstance(command, SourceEnded) and command.source is self.source:
            await self.send({"type": "source_ended", "message": command.source.ended or "the source stopped"})
            await self._close_source()  # the session takes the client's frames again

    async def _track_frame(self, tracker: SiamFCTracker, frame: Frame) -> None:
        """Track a frame (when there are targets) and answer with the boxes; a server source's frame is shown
        first."""
        def track():
            start = time.perf_counter()
            rgb = self._rgb(frame)
            image = encode_jpeg(rgb) if self.source is not None else None
            found = tracker.update(rgb) if self.tracking else None
            return image, found, 1000 * (time.perf_counter() - start)

        image, found, ms = await self._on_thread(track)
        frame.tracked = self.tracking
        if image is not None:
            await self._show(frame, image)
        if found is not None or self.source is None:
            await self._answer(tracker, frame, ms)

    async def _start_targets(self, tracker: SiamFCTracker, command: Init, frame: Frame) -> None:
        """init (or add, or add to nothing: init) on the command's frame, and the boxes as they start."""
        adding = isinstance(command, Add) and self.tracking
        held = len(tracker.ids) if adding else 0
        if held + len(command.boxes) > self.settings.max_targets:
            raise ProtocolError(f"{held} targets and {len(command.boxes)} more: this server tracks at most "
                                f"{self.settings.max_targets} a session (--max-targets)")

        def start():
            began = time.perf_counter()
            rgb = self._rgb(frame)
            height, width = rgb.shape[:2]
            check_boxes(command.boxes, width, height)  # all or none of them join
            boxes = clip_to_frame(command.boxes, width, height)  # as `run` does: the part inside the frame
            if adding:
                if not frame.tracked:  # the targets so far move to this frame before the new ones join
                    tracker.update(rgb)
                for box in boxes:
                    tracker.add(rgb, box)
            else:
                tracker.init(rgb, boxes)
            return 1000 * (time.perf_counter() - began)

        if not adding:
            self.tracking = False  # until init succeeds: after a bad box the tracker holds no targets
        ms = await self._on_thread(start)
        self.tracking = frame.tracked = True
        await self._answer(tracker, frame, ms)

    async def _answer(self, tracker: SiamFCTracker, frame: Frame, ms: float) -> None:
        """The boxes message of a frame, its rows added to the session's boxes file."""
        answers = tracker.answers() if self.tracking else None
        if answers is not None:
            self._live_rows.write(frame.number, answers, None)
        dropped = self.mailbox.dropped + (getattr(self.source, "dropped", 0) or 0)
        await self.send(boxes_message(frame.number, answers, dropped, ms))

    async def _show(self, frame: Frame, image: bytes) -> None:
        """A server source's frame to the client: a `frame` message, then its JPEG."""
        self._shown.append(frame)
        self.last_active = time.monotonic()
        async with self._send_lock:  # the two belong together: nothing in between
            await self._send({"type": "frame", "frame": frame.number})
            await self._send(image)

    def _rgb(self, frame: Frame) -> np.ndarray:
        if isinstance(frame.data, np.ndarray):
            return frame.data
        return decode_frame(frame.data, self.settings.max_frame_pixels)

    # --- server sources

    async def _switch_source(self, text: str | None) -> None:
        await self._close_source()
        self.tracking = self.paused = False
        if text is None:
            return
        self.source = await asyncio.to_thread(open_server_source, text, self.settings.allow_server_sources)
        self._pump = asyncio.create_task(self._pump_frames(self.source))
        await self.send({"type": "source_opened", "source": self.source.description, "fps": self.source.fps})

    async def _pump_frames(self, source: FrameSource) -> None:
        """The source's newest frames into the mailbox, except while paused; `source_ended` when they end."""
        frames = iter(source)
        while (rgb := await asyncio.to_thread(next, frames, None)) is not None:
            if not self.paused:
                self.mailbox.put_frame(Frame(source.frame_index, rgb))
        self.mailbox.put_command(SourceEnded(source), from_client=False)  # behind the source's last frame

    async def _close_source(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
        if self.source is not None:
            await asyncio.to_thread(self.source.close)
        self.source, self._pump = None, None
        self._shown.clear()

    # --- uploads

    def upload_path(self) -> Path:
        """Where a new upload goes, once the last one's results are gone: a failed upload leaves none."""
        if self.upload_running:
            raise UploadBusy("a video of this session is being tracked: wait until it is done")
        self.upload = None
        remove_results(self.folder)
        return self.folder / UPLOAD_NAME

    async def _track_upload(self, tracker: SiamFCTracker, boxes: np.ndarray) -> None:
        if self.upload is None:
            raise ProtocolError("no video uploaded in this session yet: upload one, then track_upload")
        loop, last = asyncio.get_running_loop(), [0.0]

        def progress(done: int, total: int | None) -> None:  # on the session's thread
            self.last_active = time.monotonic()
            if time.perf_counter() - last[0] >= PROGRESS_INTERVAL_S or done == total:
                last[0] = time.perf_counter()
                asyncio.run_coroutine_threadsafe(self.send({"type": "progress", "done": done, "total": total}), loop)

        check_boxes(boxes, self.upload.width, self.upload.height)
        boxes = clip_to_frame(boxes, self.upload.width, self.upload.height)
        limits = UploadLimits(self.settings.max_upload_frames, self.settings.max_disk_bytes,
                              self.settings.max_disk_mb)
        self.upload_running, self.tracking = True, False
        try:
            result = await asyncio.get_running_loop().run_in_executor(  # a frame at a time through the guard
                self._thread, track_upload, tracker, self.folder, boxes, progress, self.closed, limits, self._guard)
        finally:
            self.upload_running = False
            self.last_active = time.monotonic()
        await self.send({"type": "upload_done", "frames": result.frames, "fps": round(result.fps, 1),
                         "stopped": result.stopped})

    # --- plumbing

    async def _on_thread(self, function, *args):
        """function(*args) on the session's thread, through the guard of the session's model."""
        def call():
            with self._guard:
                return function(*args)
        return await asyncio.get_running_loop().run_in_executor(self._thread, call)

    async def send(self, message: dict) -> None:
        self.last_active = time.monotonic()
        async with self._send_lock:
            await self._send(message)

    def close(self) -> None:
        """Free everything: the source, the tracker and the files, on the session's thread once what runs
        there stops (a running upload sees `closed` and stops at its next frame). Nothing here awaits: a
        server shutting down cancels the socket's task, and the freeing must happen all the same."""
        self.closed.set()
        if self._pump is not None:
            self._pump.cancel()
        self._thread.submit(self._free, self.source)
        self._thread.shutdown(wait=False)

    def _free(self, source: FrameSource | None) -> None:
        if source is not None:
            source.close()
        self._live_rows.close()
        shutil.rmtree(self.folder, ignore_errors=True)
        self._tracker = None
        release_memory()

