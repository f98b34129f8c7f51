"""The response cache's SQLite file (``responses.sqlite3`` in the data dir): plain values in, plain values out.

One row per cached answer, keyed by a digest of (backend, model, base URL, normalised request) that
:mod:`llmswitch.response_cache` computes; this module knows nothing of requests or profiles. Like the ledger it
is shared by every process, through :mod:`llmswitch.store.database` (WAL, busy timeout, ``BEGIN IMMEDIATE``
writes, retries while busy, numbered steps).
"""

from __future__ import annotations

import json
import sqlite3
import time

from llmswitch.errors import LLMSwitchError
from llmswitch.record import record
from llmswitch.store import database

FILE_NAME = "responses.sqlite3"
DEADLINE_S = 10.0  # how long a read or write waits out other processes before the cache is skipped


def _step_1_responses(connection: sqlite3.Connection) -> None:
    """One row per answer, with what is needed to replay it and when it expires."""
    connection.execute(
        """CREATE TABLE responses (
        key TEXT PRIMARY KEY,
        profile TEXT NOT NULL,
        backend TEXT NOT NULL,
        model TEXT,
        pieces TEXT NOT NULL,              -- JSON list of the text pieces as they streamed, replayed as a stream
        finish_reason TEXT,
        input_tokens INTEGER,
        output_tokens INTEGER,
        created REAL NOT NULL,
        expires REAL NOT NULL,
        hits INTEGER NOT NULL DEFAULT 0
    )""")
    connection.execute("CREATE INDEX responses_expires ON responses (expires)")


STEPS: tuple[database.Step, ...] = (_step_1_responses,)


@record(slots=False)
class StoredAnswer:
    pieces: tuple[str, ...]
    finish_reason: str | None
    model: str | None
    input_tokens: int | None
    output_tokens: int | None
    created: float


@record(slots=False)
class CacheStats:
    entries: int
    expired: int
    hits: int
    size_bytes: int
    by_profile: dict[str, tuple[int, int]]  # profile -> (entries, hits)


class ResponseCacheError(LLMSwitchError):
    """The response cache file cannot be opened or written."""

    kind = "cache"


class ResponseStore(database.StoreFile):
    """The cache file. A connection belongs to the thread that opened it: :func:`open_store` keeps one per thread."""

    steps = STEPS
    file_name = FILE_NAME
    what = "the response cache"
    start_over = "start an empty cache (only cached answers are lost; they are asked again)"
    error = ResponseCacheError
    deadline_s = DEADLINE_S

    def get(self, key: str, now: float | None = None) -> StoredAnswer | None:
        """The answer stored under ``key`` unless it has expired; counts the hit."""
        now = time.time() if now is None else now
        rows = self._read("SELECT pieces, finish_reason, model, input_tokens, output_tokens, created FROM responses "
                          "WHERE key = ? AND expires > ?", (key, now))
        if not rows:
            return None
        pieces, finish_reason, model, input_tokens, output_tokens, created = rows[0]
        self._write("UPDATE responses SET hits = hits + 1 WHERE key = ?", (key,))
        return StoredAnswer(tuple(json.loads(pieces)), finish_reason, model, input_tokens, output_tokens, created)

    def holds(self, key: str, at: float) -> bool:
        """Whether an answer is stored under ``key`` that has not expired at the Unix time ``at`` (no hit counted)."""
        return bool(self._read("SELECT 1 FROM responses WHERE key = ? AND expires > ?", (key, at)))

    def put(self, key: str, *, profile: str, backend: str, model: str | None, pieces: list[str],
            finish_reason: str | None, input_tokens: int | None, output_tokens: int | None, ttl_s: float,
            now: float | None = None) -> None:
        now = time.time() if now is None else now
        values = (key, profile, backend, model, json.dumps(pieces, ensure_ascii=False), finish_reason, input_tokens,
                  output_tokens, now, now + ttl_s)

        with self._transaction() as connection:
            connection.execute("DELETE FROM responses WHERE expires <= ?", (now,))  # expired ones go as others come
            connection.execute(
                "INSERT OR REPLACE INTO responses (key, profile, backend, model, pieces, finish_reason, "
                "input_tokens, output_tokens, created, expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)

    def stats(self, now: float | None = None) -> CacheStats:
        now = time.time() if now is None else now
        rows = self._read(
            "SELECT profile, COUNT(*), SUM(hits), SUM(expires <= ?) FROM responses GROUP BY profile", (now,))
        size = sum(path.stat().st_size for path in self.path.parent.glob(self.path.name + "*") if path.is_file())
        return CacheStats(entries=sum(row[1] for row in rows), expired=sum(row[3] or 0 for row in rows),
                          hits=sum(row[2] or 0 for row in rows), size_bytes=size,
                          by_profile={row[0]: (row[1], row[2] or 0) for row in rows})

    def clear(self, profile: str | None = None, *, expired_only: bool = False, now: float | None = None) -> int:
        """Delete entries (all, one profile's, or only expired ones); returns how many."""
        now = time.time() if now is None else now
        where: list[str] = []
        parameters: list[object] = []
        if profile is not None:
            where.append("profile = ?")
            parameters.append(profile)
        if expired_only:
            where.append("expires <= ?")
            parameters.append(now)
        sql = "DELETE FROM responses" + (" WHERE " + " AND ".join(where) if where else "")
        deleted = self._write(sql, parameters)
        self._read("VACUUM")
        return deleted
