"""The batch checkpoint: every finished line of every batch, committed as it completes.

One SQLite file (``data_dir()/batch.sqlite3``) for every batch on the machine. A run is named by the sha256
of its input's bytes and the profile it asks; each result is stored under that name and the line's id, in its
own transaction, so a ``kill -9`` at any moment loses at most the lines in flight. ``--resume`` reads them
back; ``--retry-failed`` forgets the failed ones. Provider batch jobs (``--via provider``) are kept here too,
so a job submitted by one process can be collected by another.

Opened, upgraded, written and read through :mod:`llmswitch.store.database` (WAL, busy timeout, immediate
transactions, numbered steps, a file from a newer llmswitch refused). Plain values in, plain values out.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmswitch.errors import LLMSwitchError
from llmswitch.store import database

FILE_NAME = "batch.sqlite3"
RETRY_DEADLINE_S = 60.0

# ---- the schema's steps: a file at version N has had steps 1..N applied; never edit a released one -------


def _step_1_runs_and_results(connection: sqlite3.Connection) -> None:
    """Runs (input and profile) and each finished line's result, keyed by the line's id."""
    connection.execute(
        """CREATE TABLE runs (
            input_hash TEXT NOT NULL,
            profile TEXT NOT NULL,
            input_name TEXT NOT NULL,
            output TEXT NOT NULL,
            lines INTEGER NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (input_hash, profile)
        )"""
    )
    connection.execute(
        """CREATE TABLE results (
            input_hash TEXT NOT NULL,
            profile TEXT NOT NULL,
            item_key TEXT NOT NULL,
            line INTEGER NOT NULL,
            failed INTEGER NOT NULL,
            record TEXT NOT NULL,               -- the output line, as JSON
            ts REAL NOT NULL,
            PRIMARY KEY (input_hash, profile, item_key)
        )"""
    )


STEPS: tuple[database.Step, ...] = (_step_1_runs_and_results,)


class CheckpointError(LLMSwitchError):
    """The checkpoint file cannot be opened or written."""

    kind = "checkpoint"


@dataclass(frozen=True, slots=True)
class RunKey:
    """Which batch: the input's sha256 and the profile that answers it."""

    input_hash: str
    profile: str


@dataclass(frozen=True, slots=True)
class RunRecord:
    key: RunKey
    input_name: str
    output: str
    lines: int
    done: int
    failed: int
    created_at: float
    updated_at: float


def default_path() -> Path:
    from llmswitch.config import data_dir

    return data_dir() / FILE_NAME


class Checkpoint:
    """The checkpoint file; open it, read or write, close it (or use it as a context manager). A connection
    belongs to the thread that opened it."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self._connection: sqlite3.Connection | None = None

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    @property
    def connection(self) -> sqlite3.Connection:
        if self._connection is None:
            try:
                self._connection = database.open_database(self.path, STEPS, deadline_s=RETRY_DEADLINE_S)
            except (sqlite3.Error, OSError, database.NewerFileError) as exc:
                raise self._failure(exc) from None
        return self._connection

    def _failure(self, exc: BaseException) -> CheckpointError:
        from llmswitch.store.diagnosis import describe_failure

        message, remedy = describe_failure("the batch checkpoint", self.path, exc,
                                           start_over="start a new one (batches then start from scratch)")
        return CheckpointError(message, remedy=remedy)

    def _write(self, sql: str, parameters: tuple[Any, ...]) -> None:
        """One statement in its own write transaction, committed before this returns."""
        try:
            with database.immediate(self.connection, deadline_s=RETRY_DEADLINE_S) as connection:
                connection.execute(sql, parameters)
        except sqlite3.Error as exc:
            raise self._failure(exc) from None

    def _read(self, sql: str, parameters: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        try:
            return database.with_retries(lambda: self.connection.execute(sql, parameters).fetchall(),
                                         RETRY_DEADLINE_S)
        except sqlite3.Error as exc:
            raise self._failure(exc) from None

    # ---- runs -----------------------------------------------------------------------------------------

    def start_run(self, key: RunKey, *, input_name: str, output: str, lines: int) -> None:
        """Note the run (where its input and output are), or refresh the note when it is resumed."""
        now = time.time()
        self._write(
            "INSERT INTO runs (input_hash, profile, input_name, output, lines, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (input_hash, profile) DO UPDATE SET "
            "input_name = excluded.input_name, output = excluded.output, updated_at = excluded.updated_at",
            (key.input_hash, key.profile, input_name, output, lines, now, now),
        )

    def runs(self) -> list[RunRecord]:
        """Every run, most recent first, with how many of its lines are done and failed."""
        rows = self._read(
            "SELECT r.input_hash, r.profile, r.input_name, r.output, r.lines, "
            "(SELECT COUNT(*) FROM results s WHERE s.input_hash = r.input_hash AND s.profile = r.profile), "
            "(SELECT COUNT(*) FROM results s WHERE s.input_hash = r.input_hash AND s.profile = r.profile "
            "AND s.failed), r.created_at, r.updated_at FROM runs r ORDER BY r.updated_at DESC", ())
        return [RunRecord(RunKey(row[0], row[1]), row[2], row[3], row[4], row[5], row[6], row[7], row[8])
                for row in rows]

    # ---- results --------------------------------------------------------------------------------------

    def save(self, key: RunKey, item_key: str, line: int, record: dict[str, Any], *, failed: bool) -> None:
        """Commit one finished line (replacing an earlier result for the same id, as a retry does)."""
        document = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        self._write(
            "INSERT OR REPLACE INTO results (input_hash, profile, item_key, line, failed, record, ts) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (key.input_hash, key.profile, item_key, line, int(failed), document, time.time()),
        )

    def results(self, key: RunKey) -> Iterator[tuple[str, dict[str, Any]]]:
        """The run's finished lines as (id, record), in input order."""
        rows = self._read("SELECT item_key, record FROM results WHERE input_hash = ? AND profile = ? ORDER BY line",
                          (key.input_hash, key.profile))
        for item_key, document in rows:
            yield item_key, json.loads(document)

    def count(self, key: RunKey) -> int:
        rows = self._read("SELECT COUNT(*) FROM results WHERE input_hash = ? AND profile = ?",
                          (key.input_hash, key.profile))
        return int(rows[0][0])

    def forget(self, key: RunKey, *, failed_only: bool = False) -> int:
        """Drop the run's results (only the failed ones with ``failed_only``); return how many."""
        condition = " AND failed" if failed_only else ""
        before = self.count(key)
        self._write(f"DELETE FROM results WHERE input_hash = ? AND profile = ?{condition}",
                    (key.input_hash, key.profile))
        return before - self.count(key)
