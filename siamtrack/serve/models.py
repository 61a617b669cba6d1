"""The server's models, built once at start: each session (browser tab) gets a tracker over one of them.

A model whose backend is thread-safe (eager, torch) is one for every session. ONNX Runtime's branches write
into output buffers they reuse, so two sessions' threads may not call one at once: those backends get a
small pool of models, handed to sessions in turn, each with a lock that its sessions' calls take.
"""
from __future__ import annotations

import itertools
import threading
from contextlib import nullcontext
from typing import Callable, ContextManager

from ..core.model import Model

UNSHARED_MODELS = 2  # models of a backend that is not thread-safe: as many sessions track at once


class Models:
    def __init__(self, build: Callable[[], Model]):
        """`build()` makes one model: called once, or UNSHARED_MODELS times for a backend that is not thread-safe."""
        first = build()
        models = [first] + ([build() for _ in range(UNSHARED_MODELS - 1)] if not first.backend.thread_safe else [])
        guards = [threading.Lock() if not first.backend.thread_safe else nullcontext() for _ in models]
        self.first = first
        self._turns = itertools.cycle(list(zip(models, guards)))

    def lease(self) -> tuple[Model, ContextManager]:
        """A model for a new session, and the guard each of its calls into the model goes through."""
        return next(self._turns)
