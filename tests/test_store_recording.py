"""Conversations record themselves as they happen (the CLI's and the TUI's), and `chat --continue` resumes.

The echo backend is reached through its entry point; a failing one is registered from Python.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmswitch import plugins
from llmswitch.cli.chat import parse_continue_value
from llmswitch.client import Client
from llmswitch.conversation import Conversation
from llmswitch.store import HistoryError, HistoryStore
from llmswitch.store import history as history_module
from llmswitch.types import TextDelta

sys.path.insert(0, str(Path(__file__).parent / "tui"))
import failing_backend  # noqa: E402

CONFIG = """\
default_profile = "echo"

[profiles.slow]
backend = "echo"
delay = 0.05
chunk_size = 2

[profiles.cut]
backend = "failing"
mode = "cut"

[profiles.private]
backend = "echo"
history = false
"""


@pytest.fixture(autouse=True)
def setup(config_file: Path) -> Iterator[None]:
    config_file.write_text(CONFIG, encoding="utf-8")
    plugins.register_plugin(failing_backend, "failing")
    yield
    plugins.unregister_plugin("failing")


@pytest.fixture
def store(hermetic: Path) -> Iterator[HistoryStore]:
    history = HistoryStore.open()
    yield history
    history.close()


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmswitch", *args], capture_output=True, text=True,
                          input=stdin if stdin is not None else "", timeout=60)


# ---- Conversation with a store ------------------------------------------------------------------------


def test_each_turn_is_stored_with_profile_model_tokens_and_cost(store: HistoryStore) -> None:
    conversation = Conversation(Client(), "echo", store=store, system="Be brief.")
    turn = conversation.stream("hello there")
    for _ in turn:
        pass
    assert conversation.conversation_id is not None
    record = store.get_conversation(conversation.conversation_id)
    assert record.title == "hello there" and record.profile == "echo" and record.system == "Be brief."
    user, answer = store.messages(conversation.conversation_id)
    assert (user.role, user.content, user.profile, user.model) == ("user", "hello there", "echo", "echo")
    assert (answer.role, answer.content, answer.backend, answer.finish_reason) == ("assistant", "hello there",
                                                                                   "echo", "stop")
    assert (answer.input_tokens, answer.output_tokens) == (2 + 2, 2)  # the echo counts words (system too)
    assert answer.cost_usd == 0.0  # the echo plugin's price table: free, and known to be
    assert answer.latency_s is not None and answer.latency_s >= 0
    # A switch of profile mid-conversation is recorded per message.
    conversation.switch("slow")
    conversation.complete("again")
    assert [(m.role, m.profile) for m in store.messages(conversation.conversation_id)][-2:] == [
        ("user", "slow"), ("assistant", "slow")]
    assert store.get_conversation(conversation.conversation_id).profile == "slow"


def test_the_prompt_is_committed_before_the_answer_arrives(store: HistoryStore) -> None:
    """A crash mid-answer loses at most the answer: the prompt is already on disk."""
    conversation = Conversation(Client(), "slow", store=store)
    turn = conversation.stream("a prompt that takes a while to echo back")
    events = iter(turn)
    next(events)
    assert store.path is not None
    other = sqlite3.connect(store.path)  # another process's view
    rows = other.execute("SELECT role, content FROM messages").fetchall()
    assert rows == [("user", "a prompt that takes a while to echo back")]
    events.close()  # type: ignore[attr-defined]
    turn.finish()
    rows = other.execute("SELECT role, finish_reason FROM messages ORDER BY id").fetchall()
    assert rows == [("user", None), ("assistant", "interrupted")]


def test_a_cancelled_answer_keeps_its_partial_text(store: HistoryStore) -> None:
    conversation = Conversation(Client(), "slow", store=store)
    turn = conversation.stream("one two three four five six")
    events = iter(turn)
    received = [next(events), next(events)]
    events.close()  # type: ignore[attr-defined]
    turn.finish()
    kept = "".join(event.text for event in received if isinstance(event, TextDelta))
    answer = store.messages(conversation.conversation_id)[-1]  # type: ignore[arg-type]
    assert answer.content == kept == turn.result.text and answer.finish_reason == "interrupted"


def test_a_failed_answer_is_stored_with_its_error_and_partial_text(store: HistoryStore) -> None:
    conversation = Conversation(Client(), "cut", store=store)
    turn = conversation.stream("hi")
    for _ in turn:
        pass
    answer = store.messages(conversation.conversation_id)[-1]  # type: ignore[arg-type]
    assert answer.content == "The first half of the answer" and answer.finish_reason == "error"
    assert "cut off" in (answer.error or "") and "hint: try again" in (answer.error or "")


def test_keys_never_reach_the_history(store: HistoryStore, config_file: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A plugin that puts the user's key in its error message: the stored error has it masked."""
    from llmswitch.errors import AuthError
    from llmswitch.hookspecs import hookimpl
    from llmswitch.types import BackendInfo

    class KeyLeaker:
        @hookimpl
        def llmswitch_backends(self) -> list[BackendInfo]:
            return [BackendInfo(name="leaky", summary="x", key_env="LEAKY_API_KEY")]

        @hookimpl
        def stream(self, target, request):  # type: ignore[no-untyped-def]
            key = target.api_key.value
            raise AuthError(f"rejected key {key}", remedy=f"the key {key} is wrong")
            yield

    key = "sk-proj-abcdefghijklmnopqrstuvwx1234"
    monkeypatch.setenv("LEAKY_API_KEY", key)
    config_file.write_text(CONFIG + '\n[profiles.leaky]\nbackend = "leaky"\n', encoding="utf-8")
    plugins.register_plugin(KeyLeaker(), "leaky")
    try:
        conversation = Conversation(Client(), "leaky", store=store)
        for _ in conversation.stream("hi"):
            pass
    finally:
        plugins.unregister_plugin("leaky")
    assert store.path is not None
    raw = store.path.read_bytes() + Path(str(store.path) + "-wal").read_bytes()
    assert key.encode() not in raw and b"abcdefghijklmnopqrstuvwx" not in raw
    error = store.messages(conversation.conversation_id)[-1].error or ""  # type: ignore[arg-type]
    assert "rejected key sk-…1234" in error and "hint: the key sk-…1234 is wrong" in error


def test_a_history_that_fails_to_write_never_costs_the_answer(hermetic: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(history_module, "BUSY_TIMEOUT_MS", 200)
    store = HistoryStore.open()
    assert store.path is not None
    blocker = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock for good
    conversation = Conversation(Client(), "echo", store=store)
    turn = conversation.stream("still answered")
    text = "".join(getattr(event, "text", "") for event in turn if type(event).__name__ == "TextDelta")
    assert text == "still answered" and turn.result.text == "still answered"
    assert isinstance(store.last_error, HistoryError)
    assert "locked" in store.last_error.message and store.last_error.remedy
    blocker.execute("ROLLBACK")


def test_resume_restores_messages_system_options_and_profile(store: HistoryStore) -> None:
    first = Conversation(Client(), "slow", store=store, system="Be brief.")
    first.settings = {"max_tokens": 3}
    first.complete("alpha beta gamma delta")
    conversation = Conversation(Client(), None, store=store)
    record, _ = conversation.resume(store)
    assert record.id == first.conversation_id
    assert [m.content for m in conversation.messages] == ["alpha beta gamma delta", "alpha beta gamma"]
    assert conversation.system == "Be brief." and conversation.resolved.name == "slow"
    assert conversation.settings == {"max_tokens": 3}
    conversation.complete("next one")
    assert len(store.messages(record.id)) == 4


def test_resume_keeps_what_the_command_line_chose(store: HistoryStore) -> None:
    Conversation(Client(), "slow", store=store, system="old").complete("x")
    conversation = Conversation(Client(), "echo", store=store, system="new")
    conversation.resume(store, keep_profile=True, keep_system=True)
    assert conversation.resolved.name == "echo" and conversation.system == "new"


def test_reset_starts_a_new_stored_conversation(store: HistoryStore) -> None:
    conversation = Conversation(Client(), "echo", store=store)
    conversation.complete("one")
    first = conversation.conversation_id
    conversation.reset()
    conversation.complete("two")
    assert conversation.conversation_id not in (None, first)
    assert [m.content for m in store.messages(conversation.conversation_id)] == ["two", "two"]  # type: ignore[arg-type]


def test_parse_continue_value() -> None:
    assert parse_continue_value("latest", ("hi",)) == (None, ("hi",))
    assert parse_continue_value("12", ("hi",)) == (12, ("hi",))
    assert parse_continue_value("why?", ("really",)) == (None, ("why?", "really"))


# ---- the CLI ------------------------------------------------------------------------------------------


def test_chat_is_stored_and_continue_resumes_the_latest(store: HistoryStore) -> None:
    done = run_cli("chat", "-p", "echo", "first question")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "first question\n"
    done = run_cli("chat", "--continue", "--json", "second question")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    (record,) = store.list_conversations()
    assert payload["conversation_id"] == record.id
    assert [m.content for m in store.messages(record.id)] == ["first question", "first question",
                                                              "second question", "second question"]


def test_continue_takes_an_id_or_the_prompt(store: HistoryStore) -> None:
    assert run_cli("chat", "-p", "echo", "conversation one").returncode == 0
    assert run_cli("chat", "-p", "slow", "conversation two").returncode == 0
    one, two = sorted(c.id for c in store.list_conversations())
    done = run_cli("chat", "-c", "into the latest")  # not a number: the prompt, and the latest conversation
    assert done.returncode == 0, done.stderr
    done = run_cli("chat", "-c", str(one), "into one")
    assert done.returncode == 0, done.stderr
    assert [m.content for m in store.messages(one)][-1] == "into one"
    assert [m.content for m in store.messages(two)][-1] == "into the latest"
    assert store.messages(two)[-1].profile == "slow"  # the conversation's own profile answered


def test_continue_with_piped_input(store: HistoryStore) -> None:
    assert run_cli("chat", "-p", "echo", "start").returncode == 0
    done = run_cli("chat", "-c", stdin="piped follow-up")
    assert done.returncode == 0, done.stderr
    (record,) = store.list_conversations()
    assert store.messages(record.id)[-1].content == "piped follow-up"


def test_continue_errors_are_sentences_with_exit_code_2(store: HistoryStore) -> None:
    done = run_cli("chat", "-c", "hello")
    assert done.returncode == 2 and "no stored conversation to continue" in done.stderr
    assert "Traceback" not in done.stderr
    assert run_cli("chat", "-p", "echo", "exists").returncode == 0
    done = run_cli("chat", "-c", "99", "x")
    assert done.returncode == 2 and "no conversation with id 99" in done.stderr
    assert "hint: the latest conversation is" in done.stderr


def test_no_history_stores_nothing(store: HistoryStore) -> None:
    done = run_cli("chat", "-p", "echo", "--no-history", "secret stuff")
    assert done.returncode == 0 and done.stdout == "secret stuff\n"
    assert store.list_conversations() == [] and store.search("secret") == []


def test_chat_works_when_the_history_cannot_be_opened(hermetic: Path) -> None:
    (hermetic / "data" / "history.db").mkdir()
    done = run_cli("chat", "-p", "echo", "still works")
    assert done.returncode == 0 and done.stdout == "still works\n"
    assert "warning: this conversation will not be saved" in done.stderr


def test_concurrent_turns_from_threads_share_one_store(store: HistoryStore) -> None:
    """The TUI records from worker threads: one store, several conversations at once."""
    errors: list[BaseException] = []

    def talk(index: int) -> None:
        try:
            conversation = Conversation(Client(), "echo", store=store)
            for turn in range(5):
                conversation.complete(f"thread {index} turn {turn}")
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=talk, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and store.last_error is None
    conversations = store.list_conversations()
    assert len(conversations) == 4 and all(c.message_count == 10 for c in conversations)


# ---- what is kept: one-shots grouped, profiles and flags that keep nothing --------------------------------


def test_a_one_shot_is_marked_and_continuing_it_makes_it_a_conversation(store: HistoryStore) -> None:
    assert run_cli("chat", "-p", "echo", "quick question").returncode == 0
    (record,) = store.list_conversations()
    assert record.one_shot
    assert run_cli("chat", "-c", "a follow-up").returncode == 0
    assert not store.get_conversation(record.id).one_shot
    # The REPL is a conversation from its first prompt.
    done = run_cli("chat", "-p", "echo", stdin="")  # piped nothing: refused, nothing stored
    assert done.returncode == 2 and store.count_conversations() == 1


def test_a_conversation_object_marks_one_shots_for_the_store(store: HistoryStore) -> None:
    client = Client()
    conversation = Conversation(client, "echo", store=store, one_shot=True)
    list(conversation.stream("once"))
    assert store.get_conversation(conversation.conversation_id or 0).one_shot
    list(conversation.stream("twice"))
    assert not store.get_conversation(conversation.conversation_id or 0).one_shot


def test_a_profile_with_history_false_is_never_stored(store: HistoryStore) -> None:
    done = run_cli("chat", "-p", "private", "my secret plan")
    assert done.returncode == 0 and done.stdout == "my secret plan\n"
    assert store.count_conversations() == 0 and store.search("secret") == []
    # Continuing a stored conversation with it adds nothing to that conversation either.
    assert run_cli("chat", "-p", "echo", "public question").returncode == 0
    done = run_cli("chat", "-p", "private", "-c", "private follow-up")
    assert done.returncode == 0, done.stderr
    (record,) = store.list_conversations()
    assert [m.content for m in store.messages(record.id)] == ["public question", "public question"]
    assert store.search("private") == []


def test_history_must_be_true_or_false(store: HistoryStore, config_file: Path) -> None:
    config_file.write_text(CONFIG + '\n[profiles.odd]\nbackend = "echo"\nhistory = "no"\n', encoding="utf-8")
    done = run_cli("chat", "-p", "odd", "x")
    assert done.returncode == 2 and "'history' must be true or false" in done.stderr
