"""The one SQLite module under the history and the ledger: waiting for other processes, transactions, upgrade
steps, files from a newer llmswitch; and the ledger's upgrade from every earlier version."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from llmswitch.errors import LLMSwitchError
from llmswitch.ledger import FILE_NAME, LATEST_VERSION, Ledger, LedgerEntry
from llmswitch.store import HistoryError, HistoryStore, database
from tests.helpers import python_processes_at_once

# The ledger's step 1 as llmswitch 0.1 released it (a copy: editing the step in the code must not edit this).
LEDGER_VERSION_1 = (
    """CREATE TABLE IF NOT EXISTS calls (
        id INTEGER PRIMARY KEY, ts REAL NOT NULL, profile TEXT NOT NULL, backend TEXT NOT NULL, model TEXT,
        input_tokens INTEGER, output_tokens INTEGER, tokens_estimated INTEGER NOT NULL DEFAULT 0,
        cost_usd REAL, latency_s REAL, outcome TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS calls_profile_ts ON calls (profile, ts)",
    "CREATE INDEX IF NOT EXISTS calls_ts ON calls (ts)",
    "INSERT INTO calls (ts, profile, backend, model, input_tokens, output_tokens, tokens_estimated, cost_usd, "
    "latency_s, outcome) VALUES (1700000000, 'claude', 'anthropic', 'claude-sonnet-4-5', 10, 20, 0, 0.5, 1.25, "
    "'ok'), (1700000100, 'local', 'llamacpp', NULL, NULL, NULL, 1, NULL, 0.5, 'interrupted')",
    "PRAGMA user_version = 1",
)


def build_ledger_at(path: Path, version: int) -> None:
    """A ledger file as an earlier llmswitch left it, with the rows that version could hold."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, isolation_level=None)
    if version >= 1:
        for statement in LEDGER_VERSION_1:
            connection.execute(statement)
    if version >= 2:
        connection.execute("ALTER TABLE calls ADD COLUMN route TEXT")
        connection.execute("PRAGMA user_version = 2")
    if version >= 3:
        connection.execute("ALTER TABLE calls ADD COLUMN gateway_key TEXT")
        connection.execute("PRAGMA user_version = 3")
    if version >= 4:
        connection.execute("ALTER TABLE calls ADD COLUMN route_path TEXT")
        connection.execute("PRAGMA user_version = 4")
    connection.close()


@pytest.mark.parametrize("version", range(LATEST_VERSION + 1))
def test_a_ledger_from_every_earlier_version_keeps_its_rows(hermetic: Path, version: int) -> None:
    path = hermetic / "data" / FILE_NAME
    build_ledger_at(path, version)
    with Ledger(path) as ledger:
        rows = ledger.entries()
        if version >= 1:
            assert [(r.profile, r.backend, r.model, r.input_tokens, r.output_tokens, r.cost_usd, r.latency_s,
                     r.outcome, r.tokens_estimated, r.ts) for r in rows] == [
                ("claude", "anthropic", "claude-sonnet-4-5", 10, 20, 0.5, 1.25, "ok", False, 1700000000.0),
                ("local", "llamacpp", None, None, None, None, 0.5, "interrupted", True, 1700000100.0),
            ]
            assert ledger.spend("claude", 0) == 0.5
        else:
            assert rows == []
        ledger.append(LedgerEntry("new", "echo", "echo", 1, 1, 0.0, 0.1))
        assert ledger.entries()[-1].profile == "new"
    assert database.current_version(sqlite3.connect(path)) == LATEST_VERSION


def test_a_ledger_from_a_newer_llmswitch_is_refused_and_left_alone(hermetic: Path) -> None:
    path = hermetic / "data" / FILE_NAME
    build_ledger_at(path, 1)
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    connection.close()
    with pytest.raises(LLMSwitchError) as caught:
        Ledger(path).spend("claude", 0)
    assert "written by a newer llmswitch" in caught.value.message and str(path) in caught.value.message
    assert "LLMSWITCH_DATA_DIR" in (caught.value.remedy or "") and "do not move it" in (caught.value.remedy or "")
    connection = sqlite3.connect(path)
    assert database.current_version(connection) == LATEST_VERSION + 1  # not "upgraded" down, nothing deleted
    assert connection.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == 2


def test_a_history_from_a_newer_llmswitch_names_both_versions(hermetic: Path) -> None:
    path = hermetic / "data" / "history.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA user_version = 99")
    connection.close()
    with pytest.raises(HistoryError) as caught:
        HistoryStore.open(path)
    assert "schema version 99" in caught.value.message


def step_table(name: str) -> database.Step:
    def step(connection: sqlite3.Connection) -> None:
        connection.execute(f"CREATE TABLE {name} (x)")
    return step


def test_prepare_applies_only_the_missing_steps_and_refuses_a_newer_file(tmp_path: Path) -> None:
    connection = database.connect(tmp_path / "x.db")
    assert database.prepare(connection, (step_table("one"),)) == 0
    assert database.prepare(connection, (step_table("one"), step_table("two"))) == 1  # step 1 is not re-run
    assert database.current_version(connection) == 2
    with pytest.raises(database.NewerFileError) as caught:
        database.prepare(connection, (step_table("one"),))
    assert (caught.value.found, caught.value.latest) == (2, 1)
    assert str(caught.value) == "schema version 2, this llmswitch knows up to 1"


def test_connect_uses_wal_a_busy_timeout_and_autocommit(tmp_path: Path) -> None:
    connection = database.connect(tmp_path / "x.db", busy_timeout_s=2.5)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert connection.execute("PRAGMA busy_timeout").fetchone()[0] == 2500
    assert connection.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert connection.isolation_level is None
    memory = database.connect(None)
    assert memory.execute("PRAGMA journal_mode").fetchone()[0] == "memory"


def test_immediate_commits_or_rolls_back_the_whole_block(tmp_path: Path) -> None:
    connection = database.connect(tmp_path / "x.db")
    connection.execute("CREATE TABLE t (x)")
    with database.immediate(connection):
        connection.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(RuntimeError), database.immediate(connection):
        connection.execute("INSERT INTO t VALUES (2)")
        raise RuntimeError("half way")
    assert connection.execute("SELECT x FROM t").fetchall() == [(1,)] and not connection.in_transaction


def test_with_retries_waits_out_contention_and_nothing_else() -> None:
    attempts: list[float] = []

    def locked_twice() -> str:
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise sqlite3.OperationalError("database is locked")
        return "done"

    assert database.with_retries(locked_twice, 5.0) == "done" and len(attempts) == 3

    def broken() -> None:
        attempts.append(time.monotonic())
        raise sqlite3.OperationalError("no such table: calls")

    attempts.clear()
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        database.with_retries(broken, 5.0)
    assert len(attempts) == 1  # a real failure is not retried

    def always_busy() -> None:
        raise sqlite3.OperationalError("database is busy")

    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="busy"):
        database.with_retries(always_busy, 0.2)
    assert 0.2 <= time.monotonic() - started < 2.0


def test_opening_waits_for_another_process_that_holds_the_file(tmp_path: Path) -> None:
    """A file locked while it is being opened and upgraded: the opener waits and retries, then upgrades."""
    path = tmp_path / "x.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")  # even reading the version must wait
    threading.Timer(0.5, lambda: holder.execute("COMMIT")).start()
    started = time.monotonic()
    connection = database.open_database(path, (step_table("one"),), busy_timeout_s=0.1, deadline_s=10.0)
    assert time.monotonic() - started >= 0.4
    assert database.current_version(connection) == 1


def test_processes_opening_an_old_ledger_at_once_upgrade_it_once(hermetic: Path) -> None:
    path = hermetic / "data" / FILE_NAME
    build_ledger_at(path, 0)
    code = "import sys; from llmswitch.ledger import Ledger; Ledger(sys.argv[1]).spend('p', 0)"
    python_processes_at_once(code, str(path))
    with Ledger(path) as ledger:
        assert ledger.entries() == []
    assert database.current_version(sqlite3.connect(path)) == LATEST_VERSION


# ---- StoreFile: the part the ledger, the batch checkpoint and the response cache share ------------------------


class NotesError(LLMSwitchError):
    kind = "notes"


def _step_notes(connection: sqlite3.Connection) -> None:
    connection.execute("CREATE TABLE notes (text TEXT NOT NULL)")


class Notes(database.StoreFile):
    """A store of one table, written the way a real store is."""

    steps = (_step_notes,)
    file_name = "notes.sqlite3"
    what = "the notes"
    start_over = "start new notes"
    error = NotesError
    busy_timeout_s = 2.0
    deadline_s = 0.5


def test_a_store_file_opens_on_first_use_in_the_data_dir_and_again_after_close(hermetic: Path) -> None:
    notes = Notes()
    assert notes.path == hermetic / "data" / "notes.sqlite3"
    assert not notes.path.exists()  # made, not opened
    with notes as same:
        assert same is notes
        assert notes._write("INSERT INTO notes VALUES (?)", ("one",)) == 1
        assert notes.connection is notes.connection  # one connection while open
        assert notes.connection.execute("PRAGMA busy_timeout").fetchone()[0] == 2000
    assert notes._connection is None  # the block closed it
    notes.close()  # closing twice is harmless
    assert notes._read("SELECT text FROM notes") == [("one",)]  # and it opens again
    assert Notes(str(hermetic / "elsewhere.db")).path == hermetic / "elsewhere.db"


def test_a_store_file_rolls_back_a_failed_transaction_and_says_what_failed(hermetic: Path) -> None:
    notes = Notes()
    with pytest.raises(NotesError) as failed, notes._transaction() as connection:
        connection.execute("INSERT INTO notes VALUES ('kept?')")
        connection.execute("INSERT INTO notes VALUES (NULL)")  # NOT NULL: the whole block is undone
    assert str(failed.value) == f"cannot use the notes at {notes.path}: NOT NULL constraint failed: notes.text"
    assert failed.value.remedy and "LLMSWITCH_DATA_DIR" in failed.value.remedy
    assert notes._read("SELECT COUNT(*) FROM notes") == [(0,)]
    with pytest.raises(NotesError, match="no such table: missing"):
        notes._read("SELECT * FROM missing")
    assert notes._write("DELETE FROM notes") == 0


def test_a_store_file_names_a_corrupt_file_with_its_own_words(hermetic: Path) -> None:
    notes = Notes()
    notes.path.parent.mkdir(parents=True, exist_ok=True)
    notes.path.write_bytes(b"not a database at all, only bytes where one should be" * 100)
    with pytest.raises(NotesError) as caught:
        notes._read("SELECT 1")
    assert str(caught.value) == f"the notes at {notes.path} is corrupt (file is not a database)"
    assert (caught.value.remedy or "").endswith(f"or move {notes.path} away to start new notes")


def test_a_store_file_gives_up_waiting_for_a_lock_at_its_deadline(hermetic: Path) -> None:
    notes = Notes()
    notes._write("INSERT INTO notes VALUES ('x')")
    holder = database.connect(notes.path)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(NotesError, match="locked"):
            notes._write("INSERT INTO notes VALUES ('y')")
        assert 0.4 < time.monotonic() - started < 6.0  # the busy timeout (2 s), never a minute
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        notes.close()


def test_opening_makes_the_missing_folders_and_an_in_memory_file_needs_none(tmp_path: Path) -> None:
    deep = tmp_path / "not" / "yet" / "there.db"
    connection = database.open_database(deep, (step_table("one"),))
    assert deep.exists() and database.current_version(connection) == 1
    connection.close()
    assert database.current_version(database.open_database(None, (step_table("one"),))) == 1


def test_a_connection_stays_in_its_thread_unless_shared(tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def use(connection: sqlite3.Connection) -> None:
        try:
            connection.execute("SELECT 1")
        except BaseException as exc:  # noqa: BLE001 - what another thread saw
            errors.append(exc)

    path = tmp_path / "x.db"
    for opened in (database.open_database(path, ()), database.connect(path),
                   database.open_database(path, (), shared=True), database.connect(path, shared=True)):
        worker = threading.Thread(target=use, args=(opened,))
        worker.start()
        worker.join()
    assert [type(error) for error in errors] == [sqlite3.ProgrammingError] * 2  # the two not shared


def test_an_up_to_date_file_is_not_written_and_an_older_one_gets_exactly_its_missing_steps(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    database.open_database(path, (step_table("one"),)).close()
    holder = database.connect(path)
    holder.execute("BEGIN IMMEDIATE")  # another process is writing: an up-to-date file needs no write lock
    try:
        reader = database.connect(path, busy_timeout_s=0.1)
        assert database.upgrade(reader, (step_table("one"),)) == 1
    finally:
        holder.execute("ROLLBACK")
    connection = database.connect(path)
    assert database.upgrade(connection, (step_table("one"), step_table("two")), target=1) == 1
    assert database.current_version(connection) == 1
