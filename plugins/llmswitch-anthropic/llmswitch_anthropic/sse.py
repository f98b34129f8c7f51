"""A small, fast Server-Sent Events decoder: bytes in whatever chunks the socket gives, events out.

Written here rather than taken from the SDK because the SDK's decoder builds an object per event and its
stream builds a pydantic model per chunk, about ten times the cost of the parse itself. This one follows
the WHATWG rules that matter for an API stream:

- lines end with ``\\n``, ``\\r\\n`` or a lone ``\\r``, and a chunk may end anywhere, even between the two;
- ``event:`` names the event, ``data:`` lines accumulate (joined with ``\\n``), one optional space after the
  colon is dropped, a line starting with ``:`` is a comment, other fields (``id``, ``retry``) are ignored;
- a blank line dispatches the event if it has data; an event left unfinished when the stream ends is
  dropped (the caller notices that the stream never said it was done).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

DEFAULT_EVENT = "message"


def iter_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Split a byte stream into lines without their line endings (``\\n``, ``\\r\\n`` or ``\\r``)."""
    pending = b""
    for chunk in chunks:
        if pending:
            chunk = pending + chunk
        if b"\r" in chunk:
            # Hold a trailing CR back: the LF that may complete it can arrive in the next chunk.
            held_cr = chunk.endswith(b"\r")
            if held_cr:
                chunk = chunk[:-1]
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if held_cr:
                chunk += b"\r"
        lines = chunk.split(b"\n")
        pending = lines.pop()
        yield from lines
    if pending:
        # A last line without its ending still counts as a line (a lone CR was an ending).
        yield pending[:-1] if pending.endswith(b"\r") else pending


def iter_events(chunks: Iterable[bytes]) -> Iterator[tuple[str, bytes]]:
    """Yield ``(event name, data)`` for each complete event; the name is ``"message"`` when none was given."""
    event = DEFAULT_EVENT
    data: list[bytes] = []
    for line in iter_lines(chunks):
        if not line:
            if data:
                yield event or DEFAULT_EVENT, data[0] if len(data) == 1 else b"\n".join(data)
                data = []
            event = DEFAULT_EVENT
            continue
        # The common lines first: this loop runs once per line of a long answer.
        if line.startswith(b"data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(b" ") else value)
            continue
        if line.startswith(b"event:"):
            value = line[6:]
            event = (value[1:] if value.startswith(b" ") else value).decode("utf-8", "replace")
            continue
        if line.startswith(b":"):
            continue  # a comment (some proxies send ": keep-alive")
        name, colon, value = line.partition(b":")
        if not colon:
            name, value = line, b""  # a field with no colon has an empty value
        elif value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            data.append(value)
        elif name == b"event":
            event = value.decode("utf-8", "replace")
