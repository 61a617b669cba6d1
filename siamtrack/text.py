"""Words for people: counts in the messages siamtrack prints, and the status line of a step that takes seconds."""
from contextlib import contextmanager

from tqdm import tqdm


def plural(count: int, noun: str) -> str:
    """`1 epoch`, `2 epochs`: the count with its noun, in the number the count takes."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def one_line(exc: BaseException) -> str:
    """An exception as one line: its message's first line, or its type where it has none."""
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


@contextmanager
def status(what: str, quiet: bool = False):
    """A line on a terminal's stderr while a step of a few seconds runs, cleared when it ends; none in a
    log or a pipe, where it would stay, nor when `quiet`."""
    with tqdm(total=1, desc=what, bar_format="{desc} {elapsed}", leave=False,
              disable=True if quiet else None) as line:
        yield
        line.update()
