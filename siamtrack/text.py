"""Words for counts in the messages siamtrack prints."""


def plural(count: int, noun: str) -> str:
    """`1 epoch`, `2 epochs`: the count with its noun, in the number the count takes."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
