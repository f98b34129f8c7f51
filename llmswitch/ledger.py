"""The usage ledger: one SQLite row per call, shared safely by every llmswitch process on the machine.

Each row holds when, which profile, backend and model, the input and output tokens, the cost, the latency
and the outcome (``ok``, ``interrupted``, or the error kind). Never a key, a prompt or an answer.

Many processes may append at once (scripts running ``llmswitch chat`` in parallel, the TUI beside them).
The ``llm`` CLI fails there with "database is locked"; here:

- WAL journal, so readers never block the writer and the writer never blocks readers;
- ``busy_timeout``, so a writer waits for the lock instead of failing at once;
- every write is ``BEGIN IMMEDIATE``: a transaction that starts as a reader and later wants to write can get
  SQLITE_BUSY *without* the busy handler being consulted, which is where "database is locked" usually comes
  from; taking the write lock up front avoids that;
- and whatever still reports busy or locked (switching to WAL while another process holds the file, a very
  long wait) is retried with jittered back-off until a generous deadline.

The schema is upgraded in numbered steps recorded in ``PRAGMA user_version`` (one step so far).
"""

from __future__ import annotations

import random
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from llmswitch.errors import ConfigError, LLMSwitchError

FILE_NAME = "ledger.sqlite3"
BUSY_TIMEOUT_S = 10.0
RETRY_DEADLINE_S = 60.0

# Upgrade steps, applied in order; step N leaves the database at user_version N+1.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE IF NOT EXISTS calls (
            id INTEGER PRIMARY KEY,
            ts REAL NOT NULL,                         -- Unix time, seconds
            profile TEXT NOT NULL,
            backend TEXT NOT NULL,
            model TEXT,
            input_tokens INTEGER,
            output_tokens INTEGER,
            tokens_estimated INTEGER NOT NULL DEFAULT 0,  -- 1: the backend reported no usage; counted here
            cost_usd REAL,                            -- NULL: the price is unknown
            latency_s REAL,
            outcome TEXT NOT NULL                     -- ok, interrupted, or the error kind
        )""",
        "CREATE INDEX IF NOT EXISTS calls_profile_ts ON calls (profile, ts)",
        "CREATE INDEX IF NOT EXISTS calls_ts ON calls (ts)",
    ),
)

GroupBy = Literal["profile", "model", "day"]
GROUP_BY: dict[str, str] = {
    "profile": "profile",
    "model": "backend || '/' || COALESCE(model, '?')",
    "day": "date(ts, 'unixepoch', 'localtime')",
}


class LedgerError(LLMSwitchError):
    """The ledger file cannot be opened or written."""

    kind = "ledger"


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One call, as recorded."""

    profile: str
    backend: str
    model: str | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    latency_s: float | None
    outcome: str = "ok"
    tokens_estimated: bool = False
    ts: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class UsageRow:
    """Calls grouped by profile, model or day."""

    key: str
    calls: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    unpriced_calls: int  # calls whose cost is unknown: ``cost_usd`` leaves them out
    mean_latency_s: float | None

    def as_dict(self) -> dict[str, object]:
        return {
            "key": self.key,
            "calls": self.calls,
            "errors": self.errors,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": round(self.cost_usd, 10),
            "unpriced_calls": self.unpriced_calls,
            "mean_latency_s": round(self.mean_latency_s, 4) if self.mean_latency_s is not None else None,
        }


T = TypeVar("T")


def _is_contention(error: sqlite3.OperationalError) -> bool:
    text = str(error).lower()
    return "locked" in text or "busy" in text


def with_retries(operation: Callable[[], T], deadline_s: float = RETRY_DEADLINE_S) -> T:
    """Run ``operation``; while SQLite says busy or locked, back off (jittered) and try again."""
    give_up = time.monotonic() + deadline_s
    delay = 0.005
    while True:
        try:
            return operation()
        except sqlite3.OperationalError as error:
            if not _is_contention(error) or time.monotonic() >= give_up:
                raise
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.25)


class Ledger:
    """The ledger file; open it, append or query, close it (or use it as a context manager).

    A connection belongs to the thread that opened it: give each thread its own ``Ledger``.
    """

    def __init__(self, path: Path | str | None = None) -> None:
        if path is None:
            from llmswitch.config import data_dir

            path = data_dir() / FILE_NAME
        self.path = Path(path)
        self._connection: sqlite3.Connection | None = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    # ---- connection ---------------------------------------------------------------------------------

    @property
    def connection(self) -> sqlite3.Connection:
        if self._connection is None:
            try:
                self._connection = with_retries(self._open)
            except (sqlite3.Error, OSError) as exc:
                raise self._failure(exc) from None
        return self._connection

    def _failure(self, exc: BaseException) -> LedgerError:
        """Read-only, corrupt or other, each with its remedy (see :mod:`llmswitch.store.diagnosis`)."""
        from llmswitch.store.diagnosis import describe_failure

        message, remedy = describe_failure("the usage ledger", self.path, exc,
                                           start_over="start a new ledger (the spend it recorded then no longer "
                                           "counts toward budgets)")
        return LedgerError(message, remedy=remedy)

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves (see the module docstring).
        connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")  # durable enough in WAL; no fsync per row
            self._migrate(connection)
        except BaseException:
            connection.close()
            raise
        return connection

    @staticmethod
    def _migrate(connection: sqlite3.Connection) -> None:
        def version() -> int:
            return int(connection.execute("PRAGMA user_version").fetchone()[0])

        if version() >= len(MIGRATIONS):
            return
        with _immediate(connection):
            current = version()  # another process may have upgraded while we waited for the lock
            for statements in MIGRATIONS[current:]:
                for statement in statements:
                    connection.execute(statement)
            if current < len(MIGRATIONS):
                connection.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")

    # ---- writing ------------------------------------------------------------------------------------

    def append(self, entry: LedgerEntry) -> None:
        """Add one row; waits and retries while other processes write, never loses the row to a lock."""
        row = (
            entry.ts, entry.profile, entry.backend, entry.model, entry.input_tokens, entry.output_tokens,
            int(entry.tokens_estimated), entry.cost_usd, entry.latency_s, entry.outcome,
        )

        def insert() -> None:
            with _immediate(self.connection):
                self.connection.execute(
                    "INSERT INTO calls (ts, profile, backend, model, input_tokens, output_tokens, "
                    "tokens_estimated, cost_usd, latency_s, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    row,
                )

        try:
            with_retries(insert)
        except sqlite3.Error as exc:
            raise self._failure(exc) from None

    # ---- reading ------------------------------------------------------------------------------------

    def _query(self, sql: str, parameters: tuple[object, ...]) -> list[tuple[Any, ...]]:
        if self._connection is None and not self.path.exists():
            return []  # nothing recorded yet: do not create a file just to read it
        try:
            return with_retries(lambda: self.connection.execute(sql, parameters).fetchall())
        except sqlite3.Error as exc:
            raise self._failure(exc) from None

    def spend(self, profile: str, since: float) -> float:
        """USD spent by ``profile`` since the Unix time ``since`` (calls of unknown cost count as 0)."""
        rows = self._query(
            "SELECT COALESCE(SUM(cost_usd), 0) FROM calls WHERE profile = ? AND ts >= ?", (profile, since)
        )
        return float(rows[0][0]) if rows else 0.0

    def entries(self, since: float = 0.0) -> list[LedgerEntry]:
        """Every row since ``since``, oldest first."""
        rows = self._query(
            "SELECT profile, backend, model, input_tokens, output_tokens, cost_usd, latency_s, outcome, "
            "tokens_estimated, ts FROM calls WHERE ts >= ? ORDER BY ts, id",
            (since,),
        )
        return [
            LedgerEntry(str(r[0]), str(r[1]), r[2], r[3], r[4], r[5], r[6], str(r[7]), bool(r[8]), float(r[9]))
            for r in rows
        ]

    def summary(self, since: float = 0.0, by: GroupBy = "profile") -> list[UsageRow]:
        """Calls, tokens, spend and latency since ``since``, grouped by profile, model or (local) day."""
        if by not in GROUP_BY:
            raise ConfigError(f"cannot group usage by '{by}'", remedy="use profile, model or day")
        key = GROUP_BY[by]
        order = "grp" if by == "day" else "SUM(COALESCE(cost_usd, 0)) DESC, grp"
        rows = self._query(
            f"SELECT {key} AS grp, COUNT(*), SUM(outcome != 'ok'), SUM(COALESCE(input_tokens, 0)), "
            "SUM(COALESCE(output_tokens, 0)), SUM(COALESCE(cost_usd, 0)), "
            "SUM(cost_usd IS NULL AND outcome = 'ok'), AVG(latency_s) "
            f"FROM calls WHERE ts >= ? GROUP BY grp ORDER BY {order}",
            (since,),
        )
        return [
            UsageRow(str(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]), float(r[5]), int(r[6]),
                     float(r[7]) if r[7] is not None else None)
            for r in rows
        ]


@contextmanager
def _immediate(connection: sqlite3.Connection) -> Iterator[None]:
    """A write transaction that takes the write lock at BEGIN (waiting up to busy_timeout for it)."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


# ---- time windows ------------------------------------------------------------------------------------


def start_of_day(now: float | None = None) -> float:
    """Local midnight today, as Unix time: daily budgets reset when the user's day does."""
    moment = datetime.fromtimestamp(time.time() if now is None else now)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def start_of_month(now: float | None = None) -> float:
    """Local midnight on the first of this month, as Unix time."""
    moment = datetime.fromtimestamp(time.time() if now is None else now)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str, now: float | None = None) -> float:
    """``7d``, ``24h``, ``30m``, ``2w``, ``today``, ``month``, ``all`` or a date ``2025-06-01`` -> Unix time."""
    now = time.time() if now is None else now
    value = text.strip().lower()
    if value == "all":
        return 0.0
    if value == "today":
        return start_of_day(now)
    if value == "month":
        return start_of_month(now)
    match = _DURATION.match(value)
    if match:
        return now - float(match.group(1)) * _UNITS[match.group(2)]
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise ConfigError(
            f"--since {text!r}: not a duration or a date",
            remedy="use a duration such as 7d, 24h, 30m, 2w, or today, month, all, or a date such as 2025-06-01",
        ) from None


def describe_since(since: float) -> str:
    """A window start for people: ``all time`` or ``2025-06-01 00:00``."""
    if since <= 0:
        return "all time"
    return datetime.fromtimestamp(since).strftime("%Y-%m-%d %H:%M")


__all__ = [
    "Ledger",
    "LedgerEntry",
    "LedgerError",
    "UsageRow",
    "parse_since",
    "start_of_day",
    "start_of_month",
]
