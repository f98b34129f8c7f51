"""The console script ends without the interpreter's tear-down (llmswitch.process_exit), and nothing anyone could
notice is skipped: the answer printed in full, recorded in the history, charged in the ledger, the stores
closed (checkpointed), ``atexit`` handlers run, the exit status kept; with a thread still running, the normal
exit waits for it."""

from __future__ import annotations

import subprocess
import sys
import threading
import weakref
from pathlib import Path

import pytest

from llmswitch.ledger import Ledger
from llmswitch.store import HistoryStore, database

# Run the console script after the test's own set-up; FAST EXIT on stderr says it left through os._exit.
PROBE = """
import atexit, os, sys, threading
real_exit = os._exit
def fast_exit(status):
    os.write(2, b"FAST EXIT\\n")
    real_exit(status)
os._exit = fast_exit
atexit.register(lambda: sys.stderr.write("ATEXIT RAN\\n"))
if sys.argv[1] == "thread":
    def late():
        threading.main_thread().join()  # alive until the main thread is done: the command has ended
        sys.stderr.write("THREAD DONE\\n")
    threading.Thread(target=late).start()
sys.argv = ["llmswitch", *sys.argv[2:]]
from llmswitch.__main__ import run
run()
"""


def console_script(*args: str, thread: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", PROBE, "thread" if thread else "-", *args], capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_a_chat_ends_without_tear_down_its_answer_printed_recorded_charged_and_the_stores_closed(
    hermetic: Path,
) -> None:
    prompt = " ".join(f"w{i}" for i in range(20_000))  # echo answers with the prompt: a long answer into a pipe
    done = console_script("chat", "--profile", "echo", prompt)
    assert done.returncode == 0, done.stderr
    assert done.stdout == prompt + "\n"
    assert "ATEXIT RAN" in done.stderr
    assert "FAST EXIT" in done.stderr
    data = hermetic / "data"
    assert not list(data.glob("*-wal")), "a store was left open: its WAL was not checkpointed into the file"
    with HistoryStore.open() as history:
        conversation = history.latest_conversation_id()
        assert conversation is not None
        assert [m.content for m in history.messages(conversation)] == [prompt, prompt]
    with Ledger() as ledger:
        assert [entry.profile for entry in ledger.entries()] == ["echo"]


def test_the_exit_status_of_a_failure_is_kept() -> None:
    done = console_script("chat", "--profile", "nope", "hi")
    assert done.returncode == 2
    assert "no profile named 'nope'" in done.stderr
    assert "ATEXIT RAN" in done.stderr
    assert "FAST EXIT" in done.stderr


def test_a_thread_still_running_is_waited_for_the_normal_way() -> None:
    done = console_script("chat", "--profile", "echo", "hi", thread=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hi\n"
    assert "THREAD DONE" in done.stderr
    assert "FAST EXIT" not in done.stderr  # sys.exit: the interpreter's own shutdown, which waits for it


def test_close_all_closes_every_open_store_and_says_when_one_belongs_to_another_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "_CONNECTIONS", weakref.WeakSet())  # not the stores other tests left open
    first, second = Ledger(tmp_path / "a.sqlite3"), Ledger(tmp_path / "b.sqlite3")
    first.entries(), second.entries()  # opened
    assert database.close_all()
    assert not list(tmp_path.glob("*-wal"))
    held: list[object] = []
    opener = threading.Thread(target=lambda: held.append(database.connect(tmp_path / "c.sqlite3")))
    opener.start()
    opener.join()
    assert database.close_all() is False  # a connection of another thread: the caller exits the normal way
    held.clear()
