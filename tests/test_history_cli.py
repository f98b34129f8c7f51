"""`llmswitch history`: list, search, show, export and delete stored conversations from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmswitch.store import ConversationRecord, HistoryStore
from llmswitch.store.export import file_name

ESCAPES = "\x1b]0;owned\x07\x1b[2J\x9b2J"  # retitle the window, clear the screen (ESC and C1 forms)


@pytest.fixture
def store(hermetic: Path) -> Iterator[HistoryStore]:
    history = HistoryStore.open()
    yield history
    history.close()


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmswitch", *args], capture_output=True, text=True, input="",
                          timeout=60, env={**os.environ, **(env or {})})


def seed(store: HistoryStore) -> tuple[int, int]:
    first = store.create_conversation(profile="fast")
    store.add_message(first, "user", "How do I reverse a list in Python?", profile="fast")
    store.add_message(first, "assistant", "Use reversed(items) or a slice.", profile="fast", model="echo-fast",
                      cost_usd=0.25, finish_reason="stop")
    second = store.create_conversation(profile="slow")
    store.add_message(second, "user", "Name a tokenizer for GPT models", profile="slow")
    store.add_message(second, "assistant", "tiktoken, with o200k_base", profile="slow", model="echo")
    return first, second


def test_history_lists_conversations_newest_first_with_their_ids(store: HistoryStore) -> None:
    first, second = seed(store)
    done = run_cli("history")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if "How do I" in line or "tokenizer" in line]
    assert lines[0].split()[0] == str(second) and lines[1].split()[0] == str(first)
    assert "$0.25" in lines[1] and "slow" in lines[0]
    assert "chat -c ID" in done.stderr  # how to use the IDs, on stderr so stdout stays the list
    listed = json.loads(run_cli("history", "list", "--json", "-n", "1").stdout)
    assert [(c["id"], c["title"], c["message_count"], c["profile"]) for c in listed] == \
        [(second, "Name a tokenizer for GPT models", 2, "slow")]
    assert listed[0]["updated_at"].endswith("+00:00")


def test_an_empty_history_says_so_on_stderr(store: HistoryStore) -> None:
    done = run_cli("history")
    assert done.returncode == 0 and done.stdout == "" and "no conversations yet" in done.stderr
    assert json.loads(run_cli("history", "list", "--json").stdout) == []
    done = run_cli("history", "show")
    assert done.returncode == 2 and "history is empty" in done.stderr and "Traceback" not in done.stderr


def test_the_ids_history_shows_are_what_chat_continue_takes(store: HistoryStore, config_file: Path) -> None:
    assert run_cli("chat", "-p", "echo", "first question").returncode == 0
    assert run_cli("chat", "-p", "echo", "another topic").returncode == 0
    (older,) = [c["id"] for c in json.loads(run_cli("history", "list", "--json").stdout)
                if c["title"] == "first question"]
    done = run_cli("chat", "-c", str(older), "follow-up")
    assert done.returncode == 0, done.stderr
    assert [m.content for m in store.messages(older)][-1] == "follow-up"
    done = run_cli("chat", "-c", "and the latest")  # without an ID: the latest (now `older`)
    assert done.returncode == 0, done.stderr
    assert [m.content for m in store.messages(older)][-1] == "and the latest"


def test_search_uses_the_full_text_index(store: HistoryStore) -> None:
    first, second = seed(store)
    done = run_cli("history", "search", "tokeniz")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].split()[0] == str(second)
    assert "Name a tokenizer for GPT models" in done.stdout
    (hit,) = json.loads(run_cli("history", "search", "--json", "tokeniz").stdout)
    assert hit["conversation_id"] == second and hit["role"] == "user"
    start, end = hit["highlights"][0]
    assert hit["snippet"][start:end] == "tokenizer" and "\ue000" not in hit["snippet"]
    assert json.loads(run_cli("history", "search", "--json", '"reverse a list"').stdout)[0]["conversation_id"] \
        == first
    done = run_cli("history", "search", "nothing-like-this")
    assert done.returncode == 0 and done.stdout == "" and "no message matches" in done.stderr
    done = run_cli("history", "search", '"unclosed AND ( NEAR *')
    assert done.returncode == 0 and "Traceback" not in done.stderr


def test_show_prints_markdown_or_json_and_bad_ids_are_sentences(store: HistoryStore) -> None:
    first, second = seed(store)
    done = run_cli("history", "show", str(first))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("# How do I reverse a list in Python?\n")
    assert "## You\n\nHow do I reverse a list in Python?" in done.stdout
    assert run_cli("history", "show").stdout.startswith("# Name a tokenizer")  # the latest
    document = json.loads(run_cli("history", "show", "--json", str(first)).stdout)
    assert document["id"] == first and [m["role"] for m in document["messages"]] == ["user", "assistant"]
    for bad, expected in (("99", "no conversation with id 99"), ("abc", "not a conversation id")):
        done = run_cli("history", "show", bad)
        assert done.returncode == 2 and expected in done.stderr and "hint:" in done.stderr
        assert "Traceback" not in done.stderr


def test_export_to_files_named_after_the_whole_title(store: HistoryStore, hermetic: Path) -> None:
    first, second = seed(store)
    long_title = "What/is: the *best* way to <cut> a very long title | without losing any of it? " * 2
    store.rename(first, long_title)
    folder = hermetic / "exports"
    done = run_cli("history", "export", str(first), "-o", f"{folder}/")
    assert done.returncode == 0, done.stderr
    (written,) = folder.iterdir()
    assert done.stdout == f"{written}\n"
    assert written.name == file_name(store.get_conversation(first), "markdown")
    assert written.name.startswith("What is the best way to cut a very long title without losing any of it What")
    assert written.name.endswith(f" ({first}).md")
    assert written.read_text(encoding="utf-8").startswith("# What/is: the *best* way")
    # A file name picks the format by its suffix; - writes to stdout; --all writes one file each.
    target = hermetic / "one.json"
    assert run_cli("history", "export", str(second), "-o", str(target)).returncode == 0
    assert json.loads(target.read_text(encoding="utf-8"))["id"] == second
    assert json.loads(run_cli("history", "export", "-f", "json", "-o", "-").stdout)["id"] == second
    done = run_cli("history", "export", "--all", "-f", "json", "-o", str(hermetic / "all"))
    assert done.returncode == 2 and "need a folder" in done.stderr
    (hermetic / "all").mkdir()
    done = run_cli("history", "export", "--all", "-f", "json", "-o", str(hermetic / "all"))
    assert done.returncode == 0, done.stderr
    assert sorted(p.suffix for p in (hermetic / "all").iterdir()) == [".json", ".json"]
    blocker = hermetic / "a-file"
    blocker.write_text("x")
    done = run_cli("history", "export", str(first), "-o", str(blocker / "sub" / "x.md"))
    assert done.returncode == 1 and "cannot write" in done.stderr and "hint:" in done.stderr


def test_export_goes_to_the_documents_folder_else_the_data_dir(store: HistoryStore, hermetic: Path) -> None:
    first, _ = seed(store)
    home = hermetic / "user-home"
    home.mkdir()
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    done = run_cli("history", "export", str(first), env=env)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).parent == hermetic / "data" / "exports"  # no documents folder: a server
    (home / "Documents").mkdir()
    done = run_cli("history", "export", str(first), env=env)
    assert Path(done.stdout.strip()).parent == home / "Documents"


def test_delete_asks_first_and_needs_yes_off_a_terminal(store: HistoryStore) -> None:
    first, second = seed(store)
    done = run_cli("history", "delete", str(first))
    assert done.returncode == 2 and "--yes" in done.stderr
    assert {c.id for c in store.list_conversations()} == {first, second}
    done = run_cli("history", "delete", str(first), "99", "--yes")  # one bad id: nothing is deleted
    assert done.returncode == 2 and {c.id for c in store.list_conversations()} == {first, second}
    done = run_cli("history", "delete", "--yes", str(first))
    assert done.returncode == 0 and "deleted 1 conversation" in done.stderr
    assert [c.id for c in store.list_conversations()] == [second]
    assert store.search("reverse") == []


def run_on_a_terminal(*args: str) -> str:
    """Run the CLI with stdout on a pseudo-terminal; return what the terminal received."""
    import pty

    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "llmswitch", *args], stdin=subprocess.DEVNULL,
                               stdout=follower, stderr=subprocess.PIPE)
    os.close(follower)
    received = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        received += chunk
    process.wait(timeout=60)
    os.close(leader)
    return received.decode("utf-8", "replace")


def test_text_from_a_model_cannot_drive_the_terminal(store: HistoryStore) -> None:
    conversation = store.create_conversation(profile="fast")
    store.add_message(conversation, "user", f"title {ESCAPES} here", profile="fast")
    store.add_message(conversation, "assistant", f"answer {ESCAPES} done", profile="fast")
    for args in (("history", "show", str(conversation)), ("history", "list"), ("history", "search", "answer"),
                 ("history", "export", str(conversation), "-o", "-")):
        shown = run_on_a_terminal(*args)
        assert "\x1b]" not in shown and "\x1b[2J" not in shown and "\x07" not in shown, args
        assert "owned" in shown  # neutralised, not dropped
    # JSON on a terminal: C1 controls (which JSON leaves raw) are written as escapes; the values are the same.
    for args in (("history", "show", "--json", str(conversation)), ("history", "export", "-f", "json", "-o", "-")):
        shown = run_on_a_terminal(*args)
        assert "\x9b" not in shown and "\x1b" not in shown, args
        assert json.loads(shown)["messages"][1]["content"] == f"answer {ESCAPES} done"
    # Raw where a program reads it: --json and exported files keep every byte.
    assert json.loads(run_cli("history", "show", "--json", str(conversation)).stdout)["messages"][1]["content"] \
        == f"answer {ESCAPES} done"


def test_file_names_are_safe_everywhere() -> None:
    def name(title: str, conversation_id: int = 7) -> str:
        return file_name(ConversationRecord(conversation_id, title, 0.0, 0.0), "markdown")

    assert name("How do I reverse a list?") == "How do I reverse a list (7).md"
    assert name("../../etc/passwd") == "etc passwd (7).md"
    assert name("") == "Conversation (7).md"
    assert name("CON") == "Conversation CON (7).md"
    assert name("tab\there\nnewline") == "tab here newline (7).md"
    assert len(name("x" * 500)) < 140
