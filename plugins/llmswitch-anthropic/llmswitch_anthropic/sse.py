"""A small, fast Server-Sent Events decoder: bytes in whatever chunks the socket gives, events out.

Written here rather than taken from the SDK because the SDK's decoder builds an object per event and its
stream builds a pydantic model per chunk, several times the cost of the parse itself. This one follows
the WHATWG rules that matter for an API stream:

- lines end with ``\\n``, ``\\r\\n`` or a lone ``\\r``, and a chunk may end anywhere, even between the two;
- ``event:`` names the event, ``data:`` lines accumulate (joined with ``\\n``), one optional space after the
  colon is dropped, a line starting with ``:`` is a comment, other fields (``id``, ``retry``) are ignored;
- a blank line dispatches the event if it has data; an event left unfinished when the stream ends is
  dropped (the caller notices that the stream never said it was done).

Splitting lines and reading fields happen in one generator on purpose: this loop runs three times per
token of a long answer, and every extra generator in the chain costs more than the work it would hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

DEFAULT_EVENT = "message"


def iter_events(chunks: Iterable[bytes]) -> Iterator[tuple[str, bytes]]:
    """Yield ``(event name, data)`` for each complete event; the name is ``"message"`` when none was given."""
    event = DEFAULT_EVENT
    data: list[bytes] = []
    pending = b""
    skip_lf = False  # the last chunk ended with CR: an LF opening this one belongs to it
    for chunk in chunks:
        if skip_lf and chunk:
            skip_lf = False
            if chunk.startswith(b"\n"):
                chunk = chunk[1:]
        if b"\r" in chunk:
            skip_lf = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if pending:
            chunk = pending + chunk
        lines = chunk.split(b"\n")
        pending = lines.pop()
        for line in lines:
            if not line:
                if data:
                    yield event, data[0] if len(data) == 1 else b"\n".join(data)
                    data = []
                event = DEFAULT_EVENT
            elif line.startswith(b"data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(b" ") else value)
            elif line.startswith(b"event:"):
                value = line[6:]
                event = (value[1:] if value.startswith(b" ") else value).decode("utf-8", "replace") or DEFAULT_EVENT
            elif not line.startswith(b":"):  # a line starting with ":" is a comment (": keep-alive")
                name, colon, value = line.partition(b":")
                if colon and value.startswith(b" "):
                    value = value[1:]
                if name == b"data":
                    data.append(value)  # "data" alone: a field with an empty value
                elif name == b"event":
                    event = value.decode("utf-8", "replace") or DEFAULT_EVENT

