"""What a session's client has sent and its tracker has not taken yet: commands in order, frames newest only.

A client that sends frames faster than its tracker runs must not build a queue: while the tracker is
busy, each frame replaces the one waiting before it (counted in `dropped`), so the next frame tracked is
always the newest. Commands are never dropped and keep their order with the frames around them; an init
or add takes the first frame that arrives after it.
"""
from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Any

from .protocol import Command, ProtocolError


@dataclass
class Frame:
    number: int  # its place in the session's frames: the client's count of frames sent, or the source's
    data: Any  # the client's encoded bytes, or an RGB frame from a server source
    tracked: bool = False  # whether the targets have been moved to it (a server source's frame on show)


@dataclass
class Order:
    """A command, with the frame it applies to once that has come (if it needs one)."""

    command: Command
    frame: Frame | None = None

    @property
    def ready(self) -> bool:
        return self.frame is not None or not self.command.needs_frame


class Mailbox:
    def __init__(self, max_commands: int):
        self.max_commands = max_commands
        self.dropped = 0
        self._waiting: deque[Order | Frame] = deque()
        self._arrived = asyncio.Event()

    def put_command(self, command: Command, frame: Frame | None = None, from_client: bool = True) -> None:
        """Queue a command; one that needs a frame takes `frame`, or else the next frame put. A client may
        have at most max_commands waiting."""
        if from_client and sum(isinstance(item, Order) for item in self._waiting) >= self.max_commands:
            raise ProtocolError(f"{self.max_commands} commands are waiting for the tracker already: wait for "
                                "their answers before sending more")
        self._waiting.append(Order(command, frame if command.needs_frame else None))
        self._arrived.set()

    def put_frame(self, frame: Frame) -> None:
        order = next((item for item in self._waiting if isinstance(item, Order) and not item.ready), None)
        if order is not None:
            order.frame = frame
        elif self._waiting and isinstance(self._waiting[-1], Frame):  # not taken yet: the newer one wins
            self._waiting[-1] = frame
            self.dropped += 1
        else:
            self._waiting.append(frame)
        self._arrived.set()

    async def take(self) -> Order | Frame:
        """The oldest command or frame, once it is ready (an init waits for its frame)."""
        while not (self._waiting and _ready(self._waiting[0])):
            self._arrived.clear()
            await self._arrived.wait()
        return self._waiting.popleft()


def _ready(item: Order | Frame) -> bool:
    return isinstance(item, Frame) or item.ready
