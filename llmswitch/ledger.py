"""The usage ledger: one SQLite row per call, shared safely by every llmswitch process on the machine.

Each row holds when, which profile, backend and model, the input and output tokens, the cost, the latency
and the outcome (``ok``, ``cached``, ``interrupted``, or the error kind). Never a key, a prompt or an answer.

Many processes may append at once (scripts running ``llmswitch chat`` in parallel, the TUI beside them):
the file is opened through :mod:`llmswitch.store.database` (WAL, busy timeout, immediate transactions, numbered
upgrade steps, a file from a newer llmswitch refused), and whatever still reports busy or locked is retried
until a generous deadline, so no row is lost to a lock. It is a file of its own, apart from the chat history:
see "One database or two" in docs/architecture.md.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from llmswitch.errors import ConfigError, LLMSwitchError
from llmswitch.record import record
from llmswitch.store import database

FILE_NAME = "ledger.sqlite3"
BUSY_TIMEOUT_S = 10.0
RETRY_DEADLINE_S = 60.0


# ---- the schema's steps: a file at version N has had steps 1..N applied; never edit a released one -------


def _step_1_calls(connection: sqlite3.Connection) -> None:
    """One row per call, and the indexes budgets (profile, time) and ``usage`` (time) read by."""
    connection.execute(
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
        )"""
    )
    connection.execute("CREATE INDEX IF NOT EXISTS calls_profile_ts ON calls (profile, ts)")
    connection.execute("CREATE INDEX IF NOT EXISTS calls_ts ON calls (ts)")


def _step_2_route(connection: sqlite3.Connection) -> None:
    """The route a call went through (NULL: the profile was called directly), for ``usage --by route``."""
    connection.execute("ALTER TABLE calls ADD COLUMN route TEXT")


def _step_3_gateway_key(connection: sqlite3.Connection) -> None:
    """The name of the gateway key a ``serve`` call came with (NULL: not through a keyed gateway), for per-key
    budgets and ``usage --by key``."""
    connection.execute("ALTER TABLE calls ADD COLUMN gateway_key TEXT")
    connection.execute("CREATE INDEX IF NOT EXISTS calls_gateway_key_ts ON calls (gateway_key, ts)")


def _step_4_route_path(connection: sqlite3.Connection) -> None:
    """Every route a call went through when routes nest (a pool inside a fallback), outermost first, as a JSON
    array (NULL: at most one, the ``route`` column's), so ``usage --by route`` counts it under each of them."""
    connection.execute("ALTER TABLE calls ADD COLUMN route_path TEXT")


STEPS: tuple[database.Step, ...] = (_step_1_calls, _step_2_route, _step_3_gateway_key, _step_4_route_path)
LATEST_VERSION = len(STEPS)

GroupBy = Literal["profile", "model", "day", "route", "key"]
GROUP_BY: dict[str, str] = {
    "profile": "profile",
    # each route a call went through (nested routes: every level); a call made without a route: its profile
    "route": "level.value",
    "key": "COALESCE(gateway_key, '-')",  # calls made without a named gateway key count under '-'
    "model": "backend || '/' || COALESCE(model, '?')",
    "day": "date(ts, 'unixepoch', 'localtime')",
}


# The rows a grouping reads: one per call, except by route, where a call through nested routes has one per level.
GROUP_FROM: dict[str, str] = {
    "route": "calls, json_each(COALESCE(route_path, json_array(COALESCE(route, profile)))) AS level",
}
SUMMARY_COLUMNS = ("COUNT(*), SUM(outcome NOT IN ('ok', 'cached')), SUM(COALESCE(input_tokens, 0)), "
                   "SUM(COALESCE(output_tokens, 0)), SUM(COALESCE(cost_usd, 0)), "
                   "SUM(cost_usd IS NULL AND outcome = 'ok'), AVG(latency_s)")

SpendOwner = Literal["profile", "gateway_key"]
SPEND_OWNERS: dict[str, str] = {"profile": "profile", "gateway_key": "gateway_key"}  # never a column from input


class LedgerError(LLMSwitchError):
    """The ledger file cannot be opened or written."""

    kind = "ledger"


@record
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
    route: str | None = None  # the route profile the call went through, when it did (the outermost one)
    gateway_key: str | None = None  # the name of the gateway key the call came with (llmswitch serve)
    route_path: tuple[str, ...] = ()  # when routes nest: every one it went through, outermost first


@record
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


def through_routes(path: Sequence[str]) -> dict[str, Any]:
    """A :class:`LedgerEntry`'s route fields for a call that went through the routes ``path``, outermost first
    (empty: the profile was called directly)."""
    return {"route": path[0] if path else None, "route_path": tuple(path) if len(path) > 1 else ()}


class RowSink(Protocol):
    """Where a call's rows go: a :class:`Ledger`, or a writer that commits them to one for it (a batch commits
    the rows of the calls that finish together in one transaction)."""

    def append(self, entry: LedgerEntry) -> None: ...


class Ledger(database.StoreFile):
    """The ledger file; open it, append or query, close it (or use it as a context manager).

    A connection belongs to the thread that opened it: give each thread its own ``Ledger``.
    """

    steps = STEPS
    file_name = FILE_NAME
    what = "the usage ledger"
    start_over = "start a new ledger (the spend it recorded then no longer counts toward budgets)"
    error = LedgerError
    busy_timeout_s = BUSY_TIMEOUT_S
    deadline_s = RETRY_DEADLINE_S

    # ---- writing ------------------------------------------------------------------------------------

    def append(self, entry: LedgerEntry) -> None:
        """Add one row; waits and retries while other processes write, never loses the row to a lock."""
        self.append_all((entry,))

    def append_all(self, entries: Sequence[LedgerEntry]) -> None:
        """Add rows in one transaction (one commit for many calls: a batch's burst of answers)."""
        rows = [(entry.ts, entry.profile, entry.backend, entry.model, entry.input_tokens, entry.output_tokens,
                 int(entry.tokens_estimated), entry.cost_usd, entry.latency_s, entry.outcome, entry.route,
                 entry.gateway_key, json.dumps(list(entry.route_path)) if entry.route_path else None)
                for entry in entries]
        with self._transaction() as connection:
            connection.executemany(
                "INSERT INTO calls (ts, profile, backend, model, input_tokens, output_tokens, "
                "tokens_estimated, cost_usd, latency_s, outcome, route, gateway_key, route_path) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    # ---- reading ------------------------------------------------------------------------------------

    def _query(self, sql: str, parameters: tuple[object, ...]) -> list[tuple[Any, ...]]:
        if self._connection is None and not self.path.exists():
            return []  # nothing recorded yet: do not create a file just to read it
        return self._read(sql, parameters)

    def spend(self, owner: str, since: float, by: SpendOwner = "profile") -> float:
        """USD spent since the Unix time ``since`` by the profile ``owner`` (or, ``by="gateway_key"``, through
        the gateway key of that name); calls of unknown cost count as 0."""
        column = SPEND_OWNERS[by]
        rows = self._query(
            f"SELECT COALESCE(SUM(cost_usd), 0) FROM calls WHERE {column} = ? AND ts >= ?", (owner, since)
        )
        return float(rows[0][0]) if rows else 0.0

    def entries(self, since: float = 0.0) -> list[LedgerEntry]:
        """Every row since ``since``, oldest first."""
        rows = self._query(
            "SELECT profile, backend, model, input_tokens, output_tokens, cost_usd, latency_s, outcome, "
            "tokens_estimated, ts, route, gateway_key, route_path FROM calls WHERE ts >= ? ORDER BY ts, id",
            (since,),
        )
        return [
            LedgerEntry(str(r[0]), str(r[1]), r[2], r[3], r[4], r[5], r[6], str(r[7]), bool(r[8]), float(r[9]), r[10],
                        r[11], tuple(json.loads(r[12])) if r[12] else ())
            for r in rows
        ]

    def summary(self, since: float = 0.0, by: GroupBy = "profile") -> list[UsageRow]:
        """Calls, tokens, spend and latency since ``since``, grouped by profile, route, gateway key, model or (local)
        day. By route, a call through nested routes counts under each of them (the rows overlap: :meth:`total`
        counts each call once)."""
        if by not in GROUP_BY:
            raise ConfigError(f"cannot group usage by '{by}'", remedy="use profile, model, day, route or key")
        key = GROUP_BY[by]
        order = "grp" if by == "day" else "SUM(COALESCE(cost_usd, 0)) DESC, grp"
        rows = self._query(
            f"SELECT {key} AS grp, {SUMMARY_COLUMNS} FROM {GROUP_FROM.get(by, 'calls')} WHERE ts >= ? "
            f"GROUP BY grp ORDER BY {order}",
            (since,),
        )
        return [_usage_row(str(r[0]), r[1:]) for r in rows]

    def total(self, since: float = 0.0) -> UsageRow:
        """Every call since ``since``, each counted once, as one row named ``total``."""
        rows = self._query(f"SELECT {SUMMARY_COLUMNS} FROM calls WHERE ts >= ?", (since,))
        return _usage_row("total", rows[0] if rows else (0, 0, 0, 0, 0.0, 0, None))


def _usage_row(key: str, r: Sequence[Any]) -> UsageRow:
    """A row of :data:`SUMMARY_COLUMNS` (SQLite's SUM of no rows is NULL: 0 here)."""
    return UsageRow(key, int(r[0]), int(r[1] or 0), int(r[2] or 0), int(r[3] or 0), float(r[4] or 0.0), int(r[5] or 0),
                    float(r[6]) if r[6] is not None else None)


# ---- time windows ------------------------------------------------------------------------------------


# ---- the rows of library calls: one kept-open ledger per thread ----------------------------------------------

_kept = threading.local()


def append_kept(entries: Sequence[LedgerEntry]) -> None:
    """Append ``entries`` in one transaction to this thread's ledger file, kept open between calls.

    Opening and closing SQLite for each call's row cost about a millisecond of CPU (and a WAL checkpoint at
    each close), more than the router and the plugin together; a thread keeps its connection instead, as the
    gateway and a batch do. It is opened again when the data dir changes or the file was moved, replaced or
    removed (another process, ``usage --reset``, a test), and dropped after a failure, so the next call starts
    afresh. Raises :class:`LedgerError` as :meth:`Ledger.append_all` does."""
    from llmswitch.config import data_dir, in_dir

    path = in_dir(data_dir(), FILE_NAME)
    identity = _identity(path)
    kept: tuple[Ledger, tuple[int, int] | None] | None = _kept.__dict__.get("ledger")
    if kept is None or kept[0].path != path or identity is None or kept[1] != identity:
        if kept is not None:
            kept[0].close()
        kept = (Ledger(path), identity)
    ledger = kept[0]
    try:
        ledger.append_all(entries)
    except BaseException:
        ledger.close()
        _kept.__dict__.pop("ledger", None)
        raise
    _kept.ledger = (ledger, identity or _identity(path))


def _identity(path: Path) -> tuple[int, int] | None:
    """Which file ``path`` is (device, inode), None when there is none."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino


def start_of_day(now: float | None = None) -> float:
    """Local midnight today, as Unix time: daily budgets reset when the user's day does."""
    moment = datetime.fromtimestamp(time.time() if now is None else now)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def start_of_month(now: float | None = None) -> float:
    """Local midnight on the first of this month, as Unix time."""
    moment = datetime.fromtimestamp(time.time() if now is None else now)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()


def start_of_next(period: str, since: float) -> float:
    """The start of the ``day`` or ``month`` after the one that began at ``since`` (local time), as Unix time."""
    if period == "day":
        return start_of_day(since + 36 * 3600)  # a local day is 23 to 25 hours long: 36 is always into the next
    return start_of_month(since + 32 * 86400)  # a month is 28 to 31 days long


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float | None:
    """``90s``, ``30m``, ``24h``, ``7d``, ``2w`` -> seconds; None when ``text`` is not such a duration."""
    match = _DURATION.match(text.strip().lower())
    return float(match.group(1)) * _UNITS[match.group(2)] if match else None


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
    seconds = parse_duration(value)
    if seconds is not None:
        return now - seconds
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
    "parse_duration",
    "parse_since",
    "start_of_day",
    "start_of_month",
]
