"""OUTPUT: one JSON record a line, written as lines finish (or in input order with ``ordered``).

Each line is written with one ``write`` and flushed at once, after its result is in the checkpoint: a
``kill -9`` can leave at most the last line half-written, and :func:`read_existing` repairs that on
``--resume`` (a line that does not parse is cut off; the checkpoint still holds its result, so it is written
again). A model's text is JSON-escaped here, and on a terminal no raw control byte is printed
(:func:`llmswitch.terminal.json_for_display`).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from llmswitch.batch.results import Record, record_failed, record_key
from llmswitch.errors import ConfigError

STDOUT = "-"


class OutputError(ConfigError):
    """OUTPUT cannot be used as it is (damaged in the middle, or it holds something else)."""

    kind = "output"


@dataclass
class ExistingOutput:
    """What an earlier run left in OUTPUT: the ids written (and which of them failed), and whether its last
    line had to be cut off."""

    keys: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    repaired: bool = False


def read_existing(path: Path) -> ExistingOutput:
    """Read OUTPUT as an earlier run left it, repairing a half-written last line in place."""
    found = ExistingOutput()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return found
    except OSError as exc:
        raise OutputError(f"cannot read {path}: {exc.strerror or exc}", remedy="check the path and its permissions") \
            from None
    complete, newline, tail = data.rpartition(b"\n")
    if tail.strip():
        record = _parse(tail)
        if record is None:  # cut off mid-line by a kill: the checkpoint has it, so drop it and write it again
            with path.open("r+b") as handle:
                handle.truncate(len(complete) + len(newline))
            found.repaired = True
        else:  # whole, only its newline is missing
            with path.open("ab") as handle:
                handle.write(b"\n")
            _note(found, record)
    for number, raw in enumerate(complete.split(b"\n") if complete else [], start=1):
        if not raw.strip():
            continue
        record = _parse(raw)
        if record is None:
            raise OutputError(f"{path} line {number} is not a batch result (it is not a JSON object with an id)",
                              remedy="choose another OUTPUT, or start over with --restart (it rewrites OUTPUT)")
        _note(found, record)
    return found


def _parse(raw: bytes) -> Record | None:
    try:
        record = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(record, dict) or ("id" not in record and "line" not in record):
        return None
    return record


def _note(found: ExistingOutput, record: Record) -> None:
    key = record_key(record)
    found.keys.add(key)
    if record_failed(record):
        found.failed.add(key)
    else:
        found.failed.discard(key)


def drop_failed(path: Path) -> int:
    """Rewrite OUTPUT without its failed lines (``--retry-failed`` asks them again); return how many went."""
    kept: list[bytes] = []
    dropped = 0
    with path.open("rb") as handle:
        for raw in handle:
            record = _parse(raw)
            if record is not None and record_failed(record):
                dropped += 1
            else:
                kept.append(raw)
    if dropped:
        temporary = path.with_name(path.name + ".partial")
        temporary.write_bytes(b"".join(kept))
        os.replace(temporary, path)  # atomic: a kill leaves the old file or the new one, never half of each
    return dropped


class OutputWriter:
    """Writes records to OUTPUT (a path, or ``-`` for stdout) as they come, or in input order.

    ``order`` is every id of the input in order; ``written`` the ids OUTPUT already holds (they are skipped
    when ordering). With ``ordered``, a record waits until every line before it is written or was written
    before; what still waits at the end stays in the checkpoint (``--resume`` writes it).
    """

    def __init__(self, target: str, *, ordered: bool = False, order: Sequence[str] = (),
                 written: set[str] | None = None, append: bool = True) -> None:
        self.target = target
        self.ordered = ordered
        self.order = order
        self.written = set(written or ())
        self._waiting: dict[str, Record] = {}
        self._next = 0
        self._stream: IO[str] | None = None
        self._file: IO[bytes] | None = None
        if target == STDOUT:
            self._stream = sys.stdout
        else:
            path = Path(target)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("ab" if append else "wb")

    @property
    def waiting(self) -> int:
        """Records held back by ``ordered`` (each waits for a line before it)."""
        return len(self._waiting)

    def write(self, record: Record) -> None:
        key = record_key(record)
        if not self.ordered:
            self._emit(key, record)
            return
        self._waiting[key] = record
        order = self.order
        while self._next < len(order):
            next_key = order[self._next]
            if next_key in self.written:
                self._next += 1
            elif next_key in self._waiting:
                self._emit(next_key, self._waiting.pop(next_key))
                self._next += 1
            else:
                break

    def _emit(self, key: str, record: Record) -> None:
        document = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        if self._file is not None:
            self._file.write(document.encode("utf-8") + b"\n")  # one write per line: a kill cuts at most one
            self._file.flush()
        else:
            from llmswitch.terminal import json_for_display

            assert self._stream is not None
            self._stream.write(json_for_display(document, self._stream) + "\n")
            self._stream.flush()
        self.written.add(key)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> OutputWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
