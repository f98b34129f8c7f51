"""Newline-delimited JSON from a byte stream: one JSON value per line, lines split across chunks anyhow.

Kept to bytes (no text decoding, no per-line object) because it runs once per token: ``json.loads``
takes UTF-8 bytes directly. Blank lines are skipped; a ``\\r`` before the ``\\n`` is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


def iter_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Each non-blank line of the stream, without its line ending; a last line without one counts too."""
    pending = b""
    for chunk in chunks:
        if pending:
            chunk = pending + chunk
        lines = chunk.split(b"\n")
        pending = lines.pop()
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if line and not line.isspace():
                yield line
    if pending.endswith(b"\r"):
        pending = pending[:-1]
    if pending and not pending.isspace():
        yield pending
