"""The ledger's writer: library calls' rows are queued and committed together by one thread, and none is lost,
whether the process reads the ledger, closes an ``AsyncClient``, exits, is interrupted (Ctrl-C) or terminated
(SIGTERM). Each test holds rows back (a long gathering wait) so that only the guarantee under test writes them."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmswitch import AsyncClient, Client, accounting, ledger
from llmswitch.errors import BudgetExceededError
from llmswitch.ledger import FILE_NAME, Ledger, LedgerEntry, flush_rows
from llmswitch.testing import use_plugin
from tests.helpers import interruptible_popen, write_config
from tests.plugin_guide import load_tiny
from tests.servers.openai_server import openai_server
from tests.test_budget import CountingPlugin, metered

HELD_S = 30.0  # how long the writer would wait for more rows: far longer than any test


@pytest.fixture
def counting() -> Iterator[CountingPlugin]:
    plugin = CountingPlugin()
    with use_plugin(plugin, "counting"):
        yield plugin


@pytest.fixture
def held_rows(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Rows wait in the writer's queue until something flushes them."""
    flush_rows()
    monkeypatch.setattr(ledger, "GATHER_S", HELD_S)
    yield
    flush_rows()


_started: list[subprocess.Popen[str]] = []


def start_child(script: str, *args: str) -> subprocess.Popen[str]:
    """``python -c script args``, as a terminal starts it; killed after the test if it is still running (a
    failing test, or a child hanging at exit, must not outlive it)."""
    process = interruptible_popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
    _started.append(process)
    return process


@pytest.fixture(autouse=True)
def no_child_left() -> Iterator[None]:
    yield
    while _started:
        process = _started.pop()
        if process.poll() is None:
            process.kill()
            process.communicate()


def rows_on_disk(data: Path) -> list[tuple[str, str]]:
    """The rows committed to the file, read with plain sqlite3 (a :class:`Ledger` read would flush first)."""
    path = data / FILE_NAME
    if not path.exists():
        return []
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT profile, outcome FROM calls ORDER BY id").fetchall()


def test_a_read_of_the_ledger_sees_the_rows_still_queued(hermetic: Path, held_rows: None) -> None:
    started = time.monotonic()
    ledger.append_kept([LedgerEntry("p", "echo", "m", 1, 2, 0.25, 0.1)])
    assert rows_on_disk(hermetic / "data") == []  # queued, not yet written
    with Ledger() as reader:
        assert reader.spend("p", 0) == pytest.approx(0.25)
    assert time.monotonic() - started < HELD_S / 3  # the read hurried the writer; it did not wait it out
    assert rows_on_disk(hermetic / "data") == [("p", "ok")]


def test_a_budget_check_sees_the_calls_whose_rows_are_still_queued(config_file: Path, counting: CountingPlugin,
                                                                    held_rows: None) -> None:
    from llmswitch.router.state import forget_states

    metered(config_file, budget_usd_per_day=0.005, max_tokens=1000)  # each call: $0.002
    resolved = Client().resolve("metered")
    resolved.complete(resolved.request("one"))
    resolved.complete(resolved.request("two"))
    forget_states()  # the router state's own totals gone: only the ledger can tell what was spent
    resolved = Client().resolve("metered")
    with pytest.raises(BudgetExceededError, match=r"has spent \$0.00400"):
        resolved.complete(resolved.request("three"))
    assert len(counting.requests) == 2


@pytest.fixture
def commits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each transaction the writer commits, in order."""
    sizes: list[int] = []
    append_all = Ledger.append_all

    def counted(self: Ledger, entries: object) -> None:
        sizes.append(len(entries))  # type: ignore[arg-type]
        append_all(self, entries)  # type: ignore[arg-type]

    monkeypatch.setattr(Ledger, "append_all", counted)
    return sizes


def test_closing_an_async_client_writes_every_rows_and_concurrent_calls_share_commits(
        config_file: Path, hermetic: Path, monkeypatch: pytest.MonkeyPatch, commits: list[int]) -> None:
    monkeypatch.setattr(ledger, "GATHER_S", HELD_S)
    with use_plugin(load_tiny(), "tiny"), openai_server() as server:
        write_config(config_file, f'[profiles.p]\nbackend = "tiny"\nbase_url = "{server.url}/v1"\n'
                                  'model = "test-model"\n')

        async def main() -> None:
            async with AsyncClient() as client:
                resolved = client.resolve("p")
                await asyncio.gather(*(resolved.acomplete(resolved.request(f"q{i}")) for i in range(30)))
                assert rows_on_disk(hermetic / "data") == []  # every call answered, its row still queued

        asyncio.run(main())
    assert rows_on_disk(hermetic / "data") == [("p", "ok")] * 30
    assert sum(commits) == 30 and len(commits) < 30  # rows that ended together went in one transaction


CHILD = textwrap.dedent("""
    import sys, time
    from llmswitch import Client, ledger
    ledger.GATHER_S = 60.0  # the row stays queued: only the exit's own flush can write it
    resolved = Client().resolve("echo")
    print(resolved.complete(resolved.request("hello")).text, flush=True)
    if sys.argv[1] == "wait":
        time.sleep(60)
""")


@pytest.mark.parametrize("ending", ["exit", "ctrl-c", "sigterm"])
def test_no_row_is_lost_when_the_process_ends(hermetic: Path, ending: str) -> None:
    process = start_child(CHILD, "exit" if ending == "exit" else "wait")
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "hello"  # answered, and charged: its row is queued
    if ending != "exit":
        time.sleep(0.2)
        assert rows_on_disk(hermetic / "data") == []
        process.send_signal(signal.SIGINT if ending == "ctrl-c" else signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert rows_on_disk(hermetic / "data") == [("echo", "ok")], stderr
    if ending == "exit":
        assert process.returncode == 0, stderr
    elif ending == "sigterm":
        assert process.returncode == -signal.SIGTERM  # ended as SIGTERM ends a process, once the row was written


def test_an_applications_own_sigterm_handler_is_left_alone(hermetic: Path) -> None:
    child = CHILD.replace("from llmswitch import", "import signal\nsignal.signal(signal.SIGTERM, "
                          "lambda *a: sys.exit(3))\nfrom llmswitch import")
    process = start_child(child, "wait")
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "hello"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 3, stderr  # the application's handler ran; the normal exit wrote the row
    assert rows_on_disk(hermetic / "data") == [("echo", "ok")]


def test_an_async_call_is_charged_on_its_loop_and_its_cost_is_known_at_once(config_file: Path,
                                                                            counting: CountingPlugin) -> None:
    import threading

    metered(config_file)
    charged_on: list[threading.Thread] = []
    real_charge = accounting.charge

    def charge(*args: object, **kwargs: object) -> object:
        charged_on.append(threading.current_thread())
        return real_charge(*args, **kwargs)  # type: ignore[arg-type]

    async def main() -> object:
        resolved = AsyncClient().resolve("metered")
        result = resolved.aanswer_whole(resolved.request("hi"))
        async for _ in result:
            pass
        return result.cost

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(accounting, "charge", charge)
        cost = asyncio.run(main())
    assert charged_on == [threading.main_thread()]  # no worker thread for it, no wait for a write
    assert cost is not None and cost.usd == pytest.approx(0.002)  # type: ignore[attr-defined]


def _call_and_return() -> None:
    ledger.GATHER_S = 60.0  # the row stays queued: only multiprocessing's exit can write it
    resolved = Client().resolve("echo")
    resolved.complete(resolved.request("hello"))


def test_a_forked_multiprocessing_child_writes_its_rows_before_it_ends(hermetic: Path) -> None:
    import multiprocessing

    child = multiprocessing.get_context("fork").Process(target=_call_and_return)  # ends with os._exit: no atexit
    child.start()
    child.join(30)
    if child.is_alive():  # never left behind by a failing test
        child.kill()
        child.join()
    assert child.exitcode == 0
    assert rows_on_disk(hermetic / "data") == [("echo", "ok")]


# ---- bounds: how long a row may wait, how long an ending process waits for it -------------------------------


@pytest.fixture
def locked_ledger(hermetic: Path) -> Iterator[sqlite3.Connection]:
    """Another process's long write transaction on the ledger file: the writer's commit waits (and retries)
    until it ends."""
    with Ledger() as created:  # the file, at the current schema
        created.append(LedgerEntry("before", "echo", "m", 1, 1, 0.0, 0.1))
    flush_rows()
    connection = sqlite3.connect(hermetic / "data" / FILE_NAME, isolation_level=None)
    connection.execute("BEGIN EXCLUSIVE")
    yield connection
    connection.close()


def test_flush_rows_gives_up_after_its_timeout_while_the_ledger_is_locked_and_writes_once_it_is_free(
        hermetic: Path, locked_ledger: sqlite3.Connection) -> None:
    ledger.append_kept([LedgerEntry("p", "echo", "m", 1, 2, 0.25, 0.1)])
    started = time.monotonic()
    assert flush_rows(0.3) is False  # not written yet, and said so: the caller is not held for the lock's minute
    assert time.monotonic() - started < 5
    locked_ledger.execute("ROLLBACK")
    assert flush_rows(30) is True
    assert rows_on_disk(hermetic / "data") == [("before", "ok"), ("p", "ok")]


def test_flush_rows_with_no_row_ever_queued_says_everything_is_written(hermetic: Path) -> None:
    child = "from llmswitch.ledger import flush_rows; print(flush_rows(0.1))"
    ran = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60)
    assert ran.stdout.strip() == "True", ran.stderr


@pytest.mark.parametrize("ending", ["exit", "sigterm"])
def test_a_locked_ledger_holds_an_ending_process_no_longer_than_the_flush_limit(
        hermetic: Path, locked_ledger: sqlite3.Connection, ending: str) -> None:
    """Writing the last rows at exit (or on SIGTERM) waits at most FLUSH_AT_EXIT_S for them, even when another
    process keeps the ledger locked for the whole retry deadline (a minute): a stop is a stop."""
    child = CHILD.replace("ledger.GATHER_S = 60.0", "ledger.GATHER_S = 60.0; ledger.FLUSH_AT_EXIT_S = 1.0")
    process = start_child(child, "exit" if ending == "exit" else "wait")
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "hello"
    started = time.monotonic()
    if ending == "sigterm":
        process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=40)
    assert time.monotonic() - started < 15, stderr  # 1 s to flush (and 1 s to stop at exit), not 60
    assert process.returncode == (0 if ending == "exit" else -signal.SIGTERM), stderr


def test_an_exit_with_every_row_written_is_prompt(hermetic: Path) -> None:
    """The writer thread ends when asked at exit: the process does not wait out FLUSH_AT_EXIT_S for it."""
    child = CHILD.replace("ledger.GATHER_S = 60.0", "ledger.FLUSH_AT_EXIT_S = 20.0")
    process = start_child(child, "exit")
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "hello"
    started = time.monotonic()
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert time.monotonic() - started < 10, stderr
    assert rows_on_disk(hermetic / "data") == [("echo", "ok")]


def test_rows_queued_within_the_gathering_window_share_one_commit(
        hermetic: Path, monkeypatch: pytest.MonkeyPatch, commits: list[int]) -> None:
    """The writer waits GATHER_S after a row for the rows of calls ending about then, and commits them together
    (here a window of a second, the second row 0.3 s after the first)."""
    flush_rows()
    monkeypatch.setattr(ledger, "GATHER_S", 1.05)
    ledger.append_kept([LedgerEntry("a", "echo", "m", 1, 1, 0.0, 0.1)])
    time.sleep(0.3)
    ledger.append_kept([LedgerEntry("b", "echo", "m", 1, 1, 0.0, 0.1)])
    assert flush_rows(30)
    assert commits == [2]
    assert rows_on_disk(hermetic / "data") == [("a", "ok"), ("b", "ok")]
