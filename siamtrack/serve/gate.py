"""Trackers are built alone, and tracked together.

Building a tracker folds its batch norms with torch.fx (siamtrack.engines), whose tracing replaces
torch.nn.Module.__call__ for the whole process while it runs: a tracker called from another thread in
that time fails ("module is not installed as a submodule"), and so did two builds at once. So a build
waits until no tracker call runs and holds new ones back until it is done (1-3 s); tracker calls of
different sessions run in parallel otherwise. A waiting build goes first, or a busy server would never
let one through.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator


class BuildGate:
    def __init__(self):
        self._changed = threading.Condition()
        self._calls = 0  # tracker calls running
        self._builds_waiting = 0
        self._building = False

    @contextmanager
    def tracking(self) -> Iterator[None]:
        """Around a call into a tracker."""
        with self._changed:
            self._changed.wait_for(lambda: not self._building and not self._builds_waiting)
            self._calls += 1
        try:
            yield
        finally:
            with self._changed:
                self._calls -= 1
                self._changed.notify_all()

    @contextmanager
    def building(self) -> Iterator[None]:
        """Around building a tracker."""
        with self._changed:
            self._builds_waiting += 1
            self._changed.wait_for(lambda: not self._building and not self._calls)
            self._builds_waiting -= 1
            self._building = True
        try:
            yield
        finally:
            with self._changed:
                self._building = False
                self._changed.notify_all()
