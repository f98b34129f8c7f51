"""The one SQLite module under every store (the chat history, the usage ledger): connecting, transactions,
waiting for other processes, and numbered schema upgrades.

Many processes share these files at once (scripts running ``llmswitch chat`` in parallel, the TUI beside them,
a gateway). The ``llm`` CLI fails there with "database is locked"; here:

- WAL journal, so readers never block the writer and the writer never blocks readers;
- ``busy_timeout``, so a writer waits for the lock instead of failing at once;
- every write is ``BEGIN IMMEDIATE`` (:func:`immediate`): a transaction that starts as a reader and later wants
  to write can get SQLITE_BUSY *without* the busy handler being consulted, which is where "database is locked"
  usually comes from; taking the write lock up front avoids that;
- whatever still reports busy or locked (switching to WAL while another process holds the file, a very long
  wait) is retried with jittered back-off until the store's deadline (:func:`with_retries`).

A store's schema is a tuple of numbered steps: a file at version N (``PRAGMA user_version``) has had steps
1..N applied. Opening a file runs the missing steps, in order, inside one ``BEGIN IMMEDIATE`` transaction, so
two processes opening an old file at the same moment cannot both upgrade it (the second waits, then finds
nothing left to do). A file from a newer llmswitch is refused (:class:`NewerFileError`), never guessed at.
Never edit a released step: add one.

This module knows nothing of conversations or spend. :class:`StoreFile` is the part every per-thread store
shares (the ledger, the batch checkpoint, the response cache): the file opened on first use, closed by
``close()`` or a ``with`` block, and each failure turned into the store's own error with its remedy
(:func:`llmswitch.store.diagnosis.describe_failure`).
"""

from __future__ import annotations

import random
import sqlite3
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from llmswitch.errors import LLMSwitchError

T = TypeVar("T")
S = TypeVar("S", bound="StoreFile")
Step = Callable[[sqlite3.Connection], None]

BUSY_TIMEOUT_S = 10.0


class _Connection(sqlite3.Connection):
    """A connection the process can find again when it exits (a plain one cannot be weakly referenced)."""


_CONNECTIONS: weakref.WeakSet[_Connection] = weakref.WeakSet()  # every one :func:`connect` made, alive


class NewerFileError(Exception):
    """The file was written by a newer llmswitch: its schema has steps this one does not know."""

    def __init__(self, found: int, latest: int) -> None:
        super().__init__(f"schema version {found}, this llmswitch knows up to {latest}")
        self.found = found
        self.latest = latest


def connect(path: Path | None, *, busy_timeout_s: float = BUSY_TIMEOUT_S, shared: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (each write takes its own :func:`immediate` transaction), waiting up to
    ``busy_timeout_s`` for another process's lock; WAL for a file (``path`` None: a throwaway in-memory one).
    ``shared``: the connection may be used from several threads (the caller serialises them)."""
    connection = sqlite3.connect(
        ":memory:" if path is None else str(path),
        timeout=busy_timeout_s,
        isolation_level=None,
        check_same_thread=not shared,
        factory=_Connection,
    )
    _CONNECTIONS.add(connection)
    try:
        connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        if path is not None:
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable across app crashes
        connection.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        connection.close()
        raise
    return connection


def close_all() -> bool:
    """Close every connection still open (closing makes SQLite checkpoint the WAL into the file and sync
    it); for an exit that skips the interpreter's tear-down (:mod:`llmswitch.process_exit`), which would
    otherwise close them. False when one cannot be closed from this thread (it belongs to another)."""
    for connection in list(_CONNECTIONS):
        try:
            connection.close()
        except sqlite3.ProgrammingError:
            return False
    return True


def is_contention(error: sqlite3.Error) -> bool:
    """Whether ``error`` says another connection holds the lock (worth waiting for), not a real failure."""
    text = str(error).lower()
    return isinstance(error, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def with_retries(operation: Callable[[], T], deadline_s: float) -> T:
    """Run ``operation``; while SQLite says busy or locked, back off (jittered) and try again until
    ``deadline_s`` has passed, then let the last error through."""
    give_up = time.monotonic() + deadline_s
    delay = 0.005
    while True:
        try:
            return operation()
        except sqlite3.OperationalError as error:
            if not is_contention(error) or time.monotonic() >= give_up:
                raise
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.25)


@contextmanager
def immediate(connection: sqlite3.Connection, *, deadline_s: float = 0.0) -> Iterator[sqlite3.Connection]:
    """One write transaction that takes the write lock at BEGIN (waiting up to busy_timeout for it, and
    retrying while busy until ``deadline_s``); committed at the end of the block, rolled back on any error."""
    with_retries(lambda: connection.execute("BEGIN IMMEDIATE"), deadline_s)
    try:
        yield connection
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def current_version(connection: sqlite3.Connection) -> int:
    """The number of upgrade steps applied to the file (``PRAGMA user_version``)."""
    return int(connection.execute("PRAGMA user_version").fetchone()[0])


def upgrade(connection: sqlite3.Connection, steps: Sequence[Step], target: int | None = None) -> int:
    """Apply the steps between the file's version and ``target`` (default: all) in one transaction; return
    the version found. A file already at ``target`` is not written (a read-only file that is up to date works);
    a file newer than ``target`` is left alone (:func:`prepare` refuses it)."""
    target = len(steps) if target is None else target
    if current_version(connection) >= target:
        return current_version(connection)
    with immediate(connection):
        found = current_version(connection)  # re-read under the write lock: another process may have upgraded
        for number in range(found + 1, target + 1):
            steps[number - 1](connection)
        if target > found:
            connection.execute(f"PRAGMA user_version = {int(target)}")
    return found


def prepare(connection: sqlite3.Connection, steps: Sequence[Step]) -> int:
    """Refuse a file from a newer llmswitch, then bring an older one up to date; return the version found."""
    found = current_version(connection)
    if found > len(steps):
        raise NewerFileError(found, len(steps))
    return upgrade(connection, steps)


def open_database(
    path: Path | None,
    steps: Sequence[Step],
    *,
    busy_timeout_s: float = BUSY_TIMEOUT_S,
    deadline_s: float = BUSY_TIMEOUT_S,
    shared: bool = False,
) -> sqlite3.Connection:
    """Connect and :func:`prepare` (creating the directory for a new file), retrying while another process
    holds the file until ``deadline_s``. Raises ``OSError``, ``sqlite3.Error`` or :class:`NewerFileError`."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)

    def attempt() -> sqlite3.Connection:
        connection = connect(path, busy_timeout_s=busy_timeout_s, shared=shared)
        try:
            prepare(connection, steps)
        except BaseException:
            connection.close()
            raise
        return connection

    return with_retries(attempt, deadline_s)


class StoreFile:
    """One store's SQLite file, opened (created, upgraded) on first use and closed by :meth:`close` or a
    ``with`` block. A connection belongs to the thread that opened it: give each thread its own object.

    A subclass names its schema (``steps``), its file (``file_name`` in the data dir, when no path is given),
    how long it waits out other processes (``deadline_s``), and what a failure says: ``what`` names the file,
    ``start_over`` is what moving it away gives, ``error`` is the error raised (with the remedy).
    """

    steps: ClassVar[Sequence[Step]]
    file_name: ClassVar[str]
    what: ClassVar[str]
    start_over: ClassVar[str]
    error: ClassVar[type[LLMSwitchError]]
    busy_timeout_s: ClassVar[float] = BUSY_TIMEOUT_S
    deadline_s: ClassVar[float] = BUSY_TIMEOUT_S

    def __init__(self, path: Path | str | None = None) -> None:
        if path is None:
            from llmswitch.config import data_dir

            path = data_dir() / self.file_name
        self.path = Path(path)
        self._connection: sqlite3.Connection | None = None

    def __enter__(self: S) -> S:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file; the next use opens it again."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    @property
    def connection(self) -> sqlite3.Connection:
        """The open connection (opening, creating or upgrading the file on first use)."""
        if self._connection is None:
            try:
                self._connection = open_database(self.path, self.steps, busy_timeout_s=self.busy_timeout_s,
                                                 deadline_s=self.deadline_s)
            except (sqlite3.Error, OSError, NewerFileError) as exc:
                raise self._failure(exc) from None
        return self._connection

    def _failure(self, exc: BaseException) -> LLMSwitchError:
        """The store's error for ``exc``: read-only, corrupt, newer or other, each with its remedy."""
        from llmswitch.store.diagnosis import describe_failure

        message, remedy = describe_failure(self.what, self.path, exc, start_over=self.start_over)
        return self.error(message, remedy=remedy)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (:func:`immediate`, retried while busy until ``deadline_s``); a SQLite
        failure inside it comes out as the store's error."""
        try:
            with immediate(self.connection, deadline_s=self.deadline_s) as connection:
                yield connection
        except sqlite3.Error as exc:
            raise self._failure(exc) from None

    def _write(self, sql: str, parameters: Sequence[Any] = ()) -> int:
        """One statement in its own write transaction, committed before this returns; the rows it changed."""
        with self._transaction() as connection:
            return int(connection.execute(sql, parameters).rowcount)

    def _read(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Every row ``sql`` selects, retried while another process holds the lock until ``deadline_s``."""
        try:
            return with_retries(lambda: self.connection.execute(sql, parameters).fetchall(), self.deadline_s)
        except sqlite3.Error as exc:
            raise self._failure(exc) from None
