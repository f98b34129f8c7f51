"""A small, fast server-sent-events decoder: bytes in whatever chunks the network gives, events out.

It follows the SSE format (``field: value`` lines, events ended by a blank line, ``data`` lines joined
with newlines, ``:`` comments ignored) with two practical choices:

- lines end in ``\\n`` or ``\\r\\n``. A lone ``\\r`` is not treated as a line end: no chat server sends one,
  and supporting it would mean looking one byte past every chunk;
- an event still open when the stream ends is delivered, not discarded, so a server that forgets the last
  blank line loses nothing.

Data stays ``bytes``: ``json.loads`` reads UTF-8 bytes directly, which saves a decode per event.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple


class Event(NamedTuple):
    """One dispatched event: its type (``message`` unless the server said) and its data."""

    event: str
    data: bytes


def iter_events(chunks: Iterable[bytes]) -> Iterator[Event]:
    """Decode an SSE byte stream. Chunk boundaries may fall anywhere, even inside a ``\\r\\n``."""
    event = ""
    data: list[bytes] = []
    for lines in _line_batches(chunks):
        for line in lines:
            if line.startswith(b"data:"):  # the common case first: almost every line is data
                value = line[5:]
                if value.endswith(b"\r"):
                    value = value[:-1]
                data.append(value[1:] if value.startswith(b" ") else value)
                continue
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if data:
                    yield Event(event or "message", data[0] if len(data) == 1 else b"\n".join(data))
                    data = []
                event = ""
            elif not line.startswith(b":"):  # ":" starts a comment (keep-alives, ": OPENROUTER PROCESSING")
                name, _, value = line.partition(b":")
                if value.startswith(b" "):
                    value = value[1:]
                if name == b"data":
                    data.append(value)
                elif name == b"event":
                    event = value.decode("utf-8", "replace")
                # "id" and "retry" only matter for reconnecting, which a chat answer never does.
    if data:
        yield Event(event or "message", data[0] if len(data) == 1 else b"\n".join(data))


def _line_batches(chunks: Iterable[bytes]) -> Iterator[list[bytes]]:
    """The complete lines of each chunk, in one list per chunk (one split per network read, not per line)."""
    pending: list[bytes] = []
    for chunk in chunks:
        if b"\n" not in chunk:
            if chunk:
                pending.append(chunk)  # a line longer than a read: join once it ends, not on every read
            continue
        if pending:
            pending.append(chunk)
            chunk = b"".join(pending)
            pending = []
        lines = chunk.split(b"\n")
        tail = lines.pop()
        if tail:
            pending.append(tail)
        yield lines
    if pending:
        yield [b"".join(pending)]


def encode_event(data: str, event: str | None = None) -> bytes:
    """The wire form of one event (used by tests and benchmarks, and as the decoder's specification)."""
    lines = [f"event: {event}"] if event else []
    lines.extend(f"data: {part}" for part in data.split("\n"))
    return ("\n".join(lines) + "\n\n").encode("utf-8")
