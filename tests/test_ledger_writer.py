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


def test_closing_an_async_client_writes_every_rows_and_concurrent_calls_share_commits(
        config_file: Path, hermetic: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    commits: list[int] = []
    append_all = Ledger.append_all

    def counted(self: Ledger, entries: object) -> None:
        commits.append(len(entries))  # type: ignore[arg-type]
        append_all(self, entries)  # type: ignore[arg-type]

    monkeypatch.setattr(Ledger, "append_all", counted)
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
    process = interruptible_popen([sys.executable, "-c", CHILD, "exit" if ending == "exit" else "wait"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
    process = interruptible_popen([sys.executable, "-c", child, "wait"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
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
    assert child.exitcode == 0
    assert rows_on_disk(hermetic / "data") == [("echo", "ok")]
