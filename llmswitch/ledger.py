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

import atexit
import json
import os
import queue
import re
import signal
import sqlite3
import sys
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
        flush_rows()  # the rows of this process's calls that ended first: a budget check must see them
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


# ---- the rows of library calls: one writer for the process, rows grouped ----------------------------------

# How long the writer lets rows gather after the first one before it commits them: the answers of concurrent
# calls end within a few milliseconds of each other, and one transaction for all of them costs about what one
# row alone does.
GATHER_S = 0.002
GATHER_SLICE_S = 0.001  # how often that wait looks whether a flush hurries it
FLUSH_AT_EXIT_S = 10.0  # how long an exit (or SIGTERM) waits for the rows still to write


class _Flush:
    """A marker in the writer's queue: set once every row queued before it is committed (or reported lost)."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


_STOP = object()


class RowWriter:
    """The process's library-call rows, written by one thread in grouped transactions.

    A call's rows are queued (:meth:`put`, a ``SimpleQueue.put``: no lock a signal handler could find held, no
    SQLite on the caller's thread or event loop) and the writer thread commits what has gathered in one
    transaction per data dir, on one connection it keeps open (reopened when the data dir changes or the file
    was moved, replaced or removed: another process, ``usage --reset``, a test). Before, every call opened,
    wrote and checkpointed the file on its own thread (about a millisecond of CPU each), or for async calls in
    a thread-pool worker the call waited for.

    Nothing is lost on the way: every read of the ledger in this process waits for the rows queued before it
    (:meth:`flush`, from :meth:`Ledger._query`), so a budget check, ``usage`` and ``doctor`` see every call
    that ended; ``AsyncClient.aclose`` flushes; at a normal exit (also after Ctrl-C) an ``atexit`` handler
    writes what is left and closes the file; SIGTERM, when nobody else handles it, writes what is left and
    then ends the process as SIGTERM does by default. A row that cannot be written is logged, as before.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()
        self._ledger: Ledger | None = None
        self._identity: tuple[int, int] | None = None
        self._hurried = False  # set by a flush or a stop: commit now, without gathering more (no lock: a
        # signal handler sets it too)

    def put(self, path: Path, entries: Sequence[LedgerEntry]) -> None:
        """Queue ``entries`` for the ledger file at ``path``; written within milliseconds."""
        if self._thread is None:
            self._start()
        if threading.current_thread() is threading.main_thread():
            _flush_on_sigterm()  # each time: a CLI restores the default when its own handler's block ends
        self._queue.put((path, entries))

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every row queued so far is committed (or reported lost); False on a timeout. Takes no
        lock a signal handler could find held (it flushes on SIGTERM)."""
        thread = self._thread
        if thread is None or thread is threading.current_thread() or not thread.is_alive():
            return True
        marker = _Flush()
        self._queue.put(marker)
        self._hurried = True
        return marker.done.wait(timeout)

    def stop(self, timeout: float | None = None) -> None:
        """Write what is queued, close the file and end the thread (at exit); a later row starts it again."""
        with self._starting:
            thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            self._queue.put(_STOP)
            self._hurried = True
            thread.join(timeout)

    def _start(self) -> None:
        with self._starting:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="llmswitch-ledger", daemon=True)
                thread.start()
                self._thread = thread
                _write_at_multiprocessing_exit()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            items = [self._queue.get()]
            if items[0] is not _STOP and type(items[0]) is not _Flush:
                self._gather()
            self._hurried = False  # a flush or stop that set it queued its marker first: it is taken below
            while True:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            rows: dict[Path, list[LedgerEntry]] = {}
            markers = []
            for item in items:
                if item is _STOP:
                    stopping = True
                elif type(item) is _Flush:
                    markers.append(item)
                else:
                    rows.setdefault(item[0], []).extend(item[1])
            for path, entries in rows.items():
                try:
                    self._write(path, entries)
                except Exception:  # never let the writer die: later rows could not be written at all
                    import logging  # here: logging costs a one-shot chat's start-up a couple of milliseconds

                    logging.getLogger(__name__).exception("usage not recorded (%d rows)", len(entries))
            if stopping and self._ledger is not None:
                self._ledger.close()
                self._ledger = None
            for marker in markers:
                marker.done.set()

    def _gather(self) -> None:
        """Let the rows of the calls ending about now join the first: :data:`GATHER_S`, unless hurried."""
        deadline = time.monotonic() + GATHER_S
        while not self._hurried:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, GATHER_SLICE_S))

    def _write(self, path: Path, entries: Sequence[LedgerEntry]) -> None:
        identity = _identity(path)
        ledger = self._ledger
        if ledger is None or ledger.path != path or identity is None or identity != self._identity:
            if ledger is not None:
                ledger.close()
            ledger = self._ledger = Ledger(path)
        try:
            ledger.append_all(entries)
        except Exception as error:  # the thread must live on: the next rows may well be written
            ledger.close()
            self._ledger = None
            import logging

            # The store's own words (the file and what is wrong with it): no prompt, answer or key is in a row.
            message = error.message if isinstance(error, LLMSwitchError) else f"{type(error).__name__}: {error}"
            logging.getLogger(__name__).warning("usage not recorded: %s", message)
            return
        self._identity = identity or _identity(path)

    def _after_fork(self) -> None:
        """A forked child has no writer thread: it starts its own (the parent's connection is not touched)."""
        self._queue = queue.SimpleQueue()
        self._thread = None
        self._starting = threading.Lock()
        self._hurried = False
        if self._ledger is not None:
            _inherited.append(self._ledger)  # never closed here: it is the parent's
        self._ledger = None


_inherited: list[Ledger] = []
_writer = RowWriter()
os.register_at_fork(after_in_child=_writer._after_fork)


def append_kept(entries: Sequence[LedgerEntry]) -> None:
    """Queue ``entries`` for the ledger file of the current data dir, written with the rows of the calls that end
    at about the same time in one transaction by the process's writer (:class:`RowWriter`, which says what
    guarantees that none is lost). Never raises: a row that cannot be written is logged."""
    from llmswitch.config import data_dir, in_dir

    _writer.put(in_dir(data_dir(), FILE_NAME), entries)


def flush_rows(timeout: float | None = None) -> bool:
    """Wait until every queued library-call row is written (see :class:`RowWriter`); False on a timeout."""
    return _writer.flush(timeout)


def _write_at_exit() -> None:
    _writer.flush(FLUSH_AT_EXIT_S)
    _writer.stop(FLUSH_AT_EXIT_S)


atexit.register(_write_at_exit)


def _write_at_multiprocessing_exit() -> None:
    """A ``multiprocessing`` child started by fork ends with ``os._exit``, which skips ``atexit``, after running
    multiprocessing's own exit finalizers: the rows are written by one of those too (when multiprocessing is in
    use; registered as each process starts its writer)."""
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        util.Finalize(None, _write_at_exit, exitpriority=0)


def _flush_on_sigterm() -> None:
    """Write the queued rows when SIGTERM arrives, then end as SIGTERM would, when SIGTERM still has its default
    action (an application's own handler is left alone: it ends the process the normal way, through atexit)."""
    if _SIGTERM is None or signal.getsignal(_SIGTERM) is not signal.SIG_DFL:
        return
    try:
        signal.signal(_SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # not the main thread after all
        return


_SIGTERM = getattr(signal, "SIGTERM", None)


def _on_sigterm(signum: int, frame: object) -> None:
    _writer.flush(FLUSH_AT_EXIT_S)
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


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
