"""A small, fast server-sent-events decoder: bytes in whatever chunks the network gives, events out.

It follows the SSE format (``field: value`` lines, events ended by a blank line, ``data`` lines joined
with newlines, ``:`` comments ignored) with two practical choices:

- lines end in ``\\n`` or ``\\r\\n``. A lone ``\\r`` is not treated as a line end: no chat server sends one,
  and supporting it would mean looking one byte past every chunk;
- an event still open when the stream ends is delivered, not discarded, so a server that forgets the last
  blank line loses nothing.

Each network read is decoded to text once (an incremental UTF-8 decoder, so a character split between two
reads survives); parsing JSON from ``str`` is about twice as fast as from ``bytes``, which makes the decode
pay for itself many times over. Bytes that are not UTF-8 become U+FFFD rather than an exception.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator
from typing import NamedTuple


class Event(NamedTuple):
    """One dispatched event: its type (``message`` unless the server said) and its data."""

    event: str
    data: str


def iter_events(chunks: Iterable[bytes]) -> Iterator[Event]:
    """Decode an SSE byte stream. Chunk boundaries may fall anywhere, even inside a ``\\r\\n``."""
    event = ""
    data: list[str] = []
    for lines in _line_batches(chunks):
        for line in lines:
            if line.startswith("data:"):  # the common case first: almost every line is data
                value = line[5:]
                if value.endswith("\r"):
                    value = value[:-1]
                data.append(value[1:] if value.startswith(" ") else value)
                continue
            if line.endswith("\r"):
                line = line[:-1]
            if not line:
                if data:
                    yield Event(event or "message", data[0] if len(data) == 1 else "\n".join(data))
                    data = []
                event = ""
            elif not line.startswith(":"):  # ":" starts a comment (keep-alives, ": OPENROUTER PROCESSING")
                name, _, value = line.partition(":")
                if value.startswith(" "):
                    value = value[1:]
                if name == "data":
                    data.append(value)
                elif name == "event":
                    event = value
                # "id" and "retry" only matter for reconnecting, which a chat answer never does.
    if data:
        yield Event(event or "message", data[0] if len(data) == 1 else "\n".join(data))


def _line_batches(chunks: Iterable[bytes]) -> Iterator[list[str]]:
    """The complete lines of each chunk, in one list per chunk (one split per network read, not per line)."""
    decode = codecs.getincrementaldecoder("utf-8")("replace").decode
    pending: list[str] = []
    for chunk in chunks:
        text = decode(chunk)
        if "\n" not in text:
            if text:
                pending.append(text)  # a line longer than a read: join once it ends, not on every read
            continue
        if pending:
            pending.append(text)
            text = "".join(pending)
            pending = []
        lines = text.split("\n")
        tail = lines.pop()
        if tail:
            pending.append(tail)
        yield lines
    pending.append(decode(b"", True))
    rest = "".join(pending)
    if rest:
        yield rest.split("\n")


def encode_event(data: str, event: str | None = None) -> bytes:
    """The wire form of one event (used by tests and benchmarks, and as the decoder's specification)."""
    lines = [f"event: {event}"] if event else []
    lines.extend(f"data: {part}" for part in data.split("\n"))
    return ("\n".join(lines) + "\n\n").encode("utf-8")
