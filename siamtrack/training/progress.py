"""How fast a training run goes and how long the rest of it will take, for its progress bar."""
from __future__ import annotations

ESTIMATE_AFTER = 3  # steps before the run's time is first told: the first one is not timed (start-up)


class RunClock:
    """Pairs per second over this process's training steps, and from it the time the run still needs.

    Validation pairs count as training ones: the estimate errs long, not short.
    """

    def __init__(self, pairs_left: int):
        self.pairs_left = pairs_left  # this process's training and validation pairs still to go
        self.steps = 0
        self.timed_pairs, self.timed_seconds = 0, 0.0

    def step(self, pairs: int, seconds: float) -> None:
        """A training step of `pairs` that took `seconds`, loading its batch included."""
        self.steps += 1
        self.pairs_left -= pairs
        if self.steps > 1:  # the first pays for worker start-up and first-call costs
            self.timed_pairs += pairs
            self.timed_seconds += seconds

    def validated(self, pairs: int) -> None:
        self.pairs_left -= pairs

    @property
    def pairs_per_s(self) -> float | None:
        return self.timed_pairs / self.timed_seconds if self.timed_seconds > 0 else None

    def seconds_left(self) -> float | None:
        rate = self.pairs_per_s
        return None if rate is None else max(0, self.pairs_left) / rate


def duration(seconds: float) -> str:
    """1 h 05 min, 4 min 10 s, 12 s."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"
