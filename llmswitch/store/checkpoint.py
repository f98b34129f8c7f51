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
from typing import Any

from llmswitch.errors import LLMSwitchError
from llmswitch.record import record
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


def _step_2_provider_jobs(connection: sqlite3.Connection) -> None:
    """Jobs at a provider's batch service (``--via provider``): which run, which lines, where they go."""
    connection.execute(
        """CREATE TABLE jobs (
            job_id TEXT PRIMARY KEY,              -- the provider's id for the job
            input_hash TEXT NOT NULL,
            profile TEXT NOT NULL,
            model TEXT NOT NULL,
            backend TEXT NOT NULL,
            input_name TEXT NOT NULL,
            output TEXT NOT NULL,
            lines TEXT NOT NULL,                  -- JSON: custom_id -> [id, line]
            status TEXT NOT NULL,                 -- the provider's word, as last seen
            submitted_at REAL NOT NULL,
            checked_at REAL NOT NULL,
            collected_at REAL                     -- NULL until its results are in the checkpoint
        )"""
    )


def _step_3_ordered_jobs(connection: sqlite3.Connection) -> None:
    """A job of an ``--ordered`` run: its results wait in the checkpoint until every earlier line is written."""
    connection.execute("ALTER TABLE jobs ADD COLUMN ordered INTEGER NOT NULL DEFAULT 0")


STEPS: tuple[database.Step, ...] = (_step_1_runs_and_results, _step_2_provider_jobs, _step_3_ordered_jobs)


class CheckpointError(LLMSwitchError):
    """The checkpoint file cannot be opened or written."""

    kind = "checkpoint"


@record
class RunKey:
    """Which batch: the input's sha256 and the profile that answers it."""

    input_hash: str
    profile: str


@record
class JobRecord:
    """A job at a provider's batch service: which run it belongs to, where its results go, which lines."""

    job_id: str
    key: RunKey
    model: str
    backend: str
    input_name: str
    output: str
    lines: dict[str, list[Any]]  # custom_id -> [id, line]
    status: str
    submitted_at: float = 0.0
    checked_at: float = 0.0
    collected_at: float | None = None
    ordered: bool = False  # the run's OUTPUT is in input order (--ordered)

    @property
    def collected(self) -> bool:
        return self.collected_at is not None


@record
class RunRecord:
    key: RunKey
    input_name: str
    output: str
    lines: int
    done: int
    failed: int
    created_at: float
    updated_at: float


class Checkpoint(database.StoreFile):
    """The checkpoint file; open it, read or write, close it (or use it as a context manager). A connection
    belongs to the thread that opened it."""

    steps = STEPS
    file_name = FILE_NAME
    what = "the batch checkpoint"
    start_over = "start a new one (batches then start from scratch)"
    error = CheckpointError
    deadline_s = RETRY_DEADLINE_S

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

    # ---- provider jobs --------------------------------------------------------------------------------

    def add_job(self, job: JobRecord) -> None:
        """Commit a job just submitted (before the next is), so no process ever loses its id."""
        now = time.time()
        self._write(
            "INSERT INTO jobs (job_id, input_hash, profile, model, backend, input_name, output, lines, status, "
            "submitted_at, checked_at, ordered) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (job.job_id, job.key.input_hash, job.key.profile, job.model, job.backend, job.input_name, job.output,
             json.dumps(job.lines, separators=(",", ":")), job.status, now, now, int(job.ordered)),
        )

    def update_job(self, job_id: str, status: str) -> None:
        self._write("UPDATE jobs SET status = ?, checked_at = ? WHERE job_id = ?", (status, time.time(), job_id))

    def finish_job(self, job_id: str, status: str) -> None:
        """The job's results are all in: it is not polled again."""
        now = time.time()
        self._write("UPDATE jobs SET status = ?, checked_at = ?, collected_at = ? WHERE job_id = ?",
                    (status, now, now, job_id))

    def jobs(self, *, job_id: str | None = None, key: RunKey | None = None,
             open_only: bool = False) -> list[JobRecord]:
        """Jobs, oldest first: one by id, a run's, or those whose results are not collected yet."""
        conditions, parameters = [], []
        if job_id is not None:
            conditions.append("job_id = ?")
            parameters.append(job_id)
        if key is not None:
            conditions += ["input_hash = ?", "profile = ?"]
            parameters += [key.input_hash, key.profile]
        if open_only:
            conditions.append("collected_at IS NULL")
        where = (" WHERE " + " AND ".join(conditions)) if conditions else ""
        rows = self._read(
            "SELECT job_id, input_hash, profile, model, backend, input_name, output, lines, status, submitted_at, "
            f"checked_at, collected_at, ordered FROM jobs{where} ORDER BY submitted_at, rowid", tuple(parameters))
        return [JobRecord(row[0], RunKey(row[1], row[2]), row[3], row[4], row[5], row[6], json.loads(row[7]),
                          row[8], row[9], row[10], row[11], bool(row[12])) for row in rows]
