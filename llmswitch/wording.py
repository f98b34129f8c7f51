"""Counts in sentences: "1 line", "2 lines", "1,204 entries"."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` (thousands separated) and ``noun`` in the right number; ``plural`` when it is not noun + s."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"
