"""The history store: schema upgrades from every earlier version, search, concurrent writers, failures."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmswitch.secrets import remember_secret
from llmswitch.store import (
    HIGHLIGHT_END,
    HIGHLIGHT_START,
    AnswerRecord,
    ConversationNotFoundError,
    HistoryError,
    HistoryStore,
    database,
    default_path,
    schema,
)
from llmswitch.store.export import to_json, to_markdown
from llmswitch.store.history import title_from
from llmswitch.store.search import fts_query
from tests.helpers import python_processes_at_once


@pytest.fixture
def store(hermetic: Path) -> Iterator[HistoryStore]:
    history = HistoryStore.open()
    yield history
    history.close()


def marked(snippet: str) -> list[str]:
    """The highlighted words of a snippet."""
    words = []
    for piece in snippet.split(HIGHLIGHT_START)[1:]:
        words.append(piece.split(HIGHLIGHT_END)[0])
    return words


# ---- opening, versions, upgrades -------------------------------------------------------------------------


def test_a_new_history_is_created_at_the_latest_version_in_wal_mode(hermetic: Path) -> None:
    with HistoryStore.open() as history:
        assert history.path == default_path() == hermetic / "data" / "history.db"
        assert history.schema_version == schema.LATEST_VERSION
        assert history.has_full_text_search
    connection = sqlite3.connect(default_path())
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def build_database_at(path: Path, version: int) -> None:
    """A history file as an earlier llmswitch left it: steps 1..version, with data that version could hold."""
    connection = sqlite3.connect(path, isolation_level=None)
    schema.upgrade(connection, target=version)
    assert database.current_version(connection) == version
    if version >= 1:
        connection.execute("INSERT INTO conversations (title, created_at, updated_at) VALUES ('old chat', 1, 2)")
        connection.execute(
            "INSERT INTO messages (conversation_id, role, content, profile, model, created_at) VALUES "
            "(1, 'user', 'what is a quokka', 'claude', 'claude-sonnet-4-5', 1), "
            "(1, 'assistant', 'A small marsupial from Rottnest Island.', 'local', 'gemma-3-270m', 2)"
        )
    if version >= 2:
        connection.execute("UPDATE messages SET input_tokens = 5, output_tokens = 9, cost_usd = 0.5 WHERE id = 2")
    if version >= 3:
        connection.execute("UPDATE conversations SET profile = 'claude', system = 'be brief', "
                           "options = '{\"temperature\": 0.2}'")
    if version >= 5:
        connection.execute("UPDATE conversations SET one_shot = 1")  # as `llmswitch chat "..."` recorded it
    connection.close()


@pytest.mark.parametrize("version", range(schema.LATEST_VERSION))
def test_upgrade_from_every_earlier_version_keeps_the_data(hermetic: Path, version: int) -> None:
    path = hermetic / "data" / "history.db"
    if version == 0:
        path.write_bytes(b"")  # an empty file is a database at version 0
    else:
        build_database_at(path, version)
    with HistoryStore.open(path) as history:
        assert history.schema_version == schema.LATEST_VERSION
        if version == 0:
            assert history.list_conversations() == []
            return
        (record,) = history.list_conversations()
        assert record.title == "old chat" and record.message_count == 2
        # Step 3 fills the profile in from the conversation's LAST message; a version-3 file kept its own.
        assert record.profile == ("claude" if version >= 3 else "local")
        messages = history.messages(record.id)
        assert [(m.role, m.content, m.model) for m in messages] == [
            ("user", "what is a quokka", "claude-sonnet-4-5"),
            ("assistant", "A small marsupial from Rottnest Island.", "gemma-3-270m"),
        ]
        if version >= 2:
            assert (messages[1].input_tokens, messages[1].output_tokens, messages[1].cost_usd) == (5, 9, 0.5)
            assert record.cost_usd == 0.5
        if version >= 3:
            assert record.system == "be brief" and record.settings == {"temperature": 0.2}
        assert record.one_shot  # one prompt and its answer: grouped with the one-shots by step 5
        # Messages written before the search index existed are searchable.
        (hit,) = history.search("marsupial")
        assert hit.conversation_id == record.id and marked(hit.snippet) == ["marsupial"]
        # And the upgraded file takes new messages, indexed too.
        history.add_message(record.id, "user", "and a wombat?")
        assert [h.snippet for h in history.search("wombat")]


def test_upgrade_marks_only_single_prompt_conversations_as_one_shots(hermetic: Path) -> None:
    path = hermetic / "data" / "history.db"
    build_database_at(path, 4)
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("INSERT INTO conversations (title, created_at, updated_at) VALUES ('a real chat', 1, 3)")
    connection.execute("INSERT INTO messages (conversation_id, role, content, created_at) VALUES "
                       "(2, 'user', 'one', 1), (2, 'assistant', 'two', 2), (2, 'user', 'three', 3)")
    connection.close()
    with HistoryStore.open(path) as history:
        assert [(c.title, c.one_shot) for c in history.list_conversations()] == [("a real chat", False),
                                                                                 ("old chat", True)]
        assert [c.title for c in history.list_conversations(one_shot=False)] == ["a real chat"]
        assert history.count_conversations(one_shot=True) == 1 and history.count_conversations() == 2


def test_two_processes_upgrading_at_once_apply_each_step_once(hermetic: Path) -> None:
    path = hermetic / "data" / "history.db"
    build_database_at(path, 1)
    code = "import sys; from llmswitch.store import HistoryStore; HistoryStore.open(sys.argv[1]).close()"
    python_processes_at_once(code, str(path))
    with HistoryStore.open(path) as history:
        assert history.schema_version == schema.LATEST_VERSION
        assert [c.title for c in history.list_conversations()] == ["old chat"]


def test_a_history_from_a_newer_llmswitch_is_refused_with_a_remedy(hermetic: Path) -> None:
    path = hermetic / "data" / "history.db"
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version = {schema.LATEST_VERSION + 1}")
    connection.close()
    with pytest.raises(HistoryError) as caught:
        HistoryStore.open(path)
    assert "newer llmswitch" in caught.value.message and "LLMSWITCH_DATA_DIR" in (caught.value.remedy or "")


def test_a_file_that_is_not_a_database_is_an_error_with_a_remedy(hermetic: Path) -> None:
    path = hermetic / "data" / "history.db"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(HistoryError) as caught:
        HistoryStore.open(path)
    assert "is corrupt" in caught.value.message
    assert ".recover" in (caught.value.remedy or "") and "move" in (caught.value.remedy or "")


def test_an_unwritable_location_is_an_error_with_a_remedy(hermetic: Path) -> None:
    blocker = hermetic / "data" / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(HistoryError) as caught:
        HistoryStore.open(blocker / "history.db")
    assert "LLMSWITCH_DATA_DIR" in (caught.value.remedy or "")


def test_search_index_is_built_when_fts5_arrives_later(hermetic: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = hermetic / "data" / "history.db"
    monkeypatch.setattr(schema, "fts5_available", lambda connection: False)
    with HistoryStore.open(path) as history:
        assert not history.has_full_text_search
        conversation = history.create_conversation()
        history.add_message(conversation, "user", "Crème brûlée recipe please")
        (hit,) = history.search("brûlée")  # the LIKE fallback still finds and marks it
        assert marked(hit.snippet) == ["brûlée"]
    monkeypatch.undo()
    with HistoryStore.open(path) as history:
        assert history.has_full_text_search
        assert [hit.snippet for hit in history.search("recipe")]


# ---- conversations and messages -----------------------------------------------------------------------


def test_conversations_are_listed_newest_first_with_totals(store: HistoryStore) -> None:
    first = store.create_conversation()
    store.add_message(first, "user", "first question\nwith a second line")
    second = store.create_conversation("named")
    store.add_message(second, "user", "q")
    store.add_message(second, "assistant", "a", cost_usd=0.25)
    store.add_message(second, "assistant", "b", cost_usd=0.5)
    time.sleep(0.01)
    store.add_message(first, "assistant", "answer")
    listed = store.list_conversations()
    assert [c.id for c in listed] == [first, second]
    assert listed[0].title == "first question"  # the first line of the first prompt
    assert listed[1].title == "named" and listed[1].cost_usd == 0.75 and listed[1].message_count == 3
    assert listed[0].cost_usd is None  # unknown, never 0
    assert store.latest_conversation_id() == first


def test_rename_update_delete(store: HistoryStore) -> None:
    conversation = store.create_conversation("t")
    store.add_message(conversation, "user", "searchable words")
    store.rename(conversation, "  New title ")
    store.update_conversation(conversation, system="sys", settings={"max_tokens": 5}, profile="echo")
    record = store.get_conversation(conversation)
    assert (record.title, record.system, record.settings, record.profile) == ("New title", "sys",
                                                                            {"max_tokens": 5}, "echo")
    store.delete_conversation(conversation)
    with pytest.raises(ConversationNotFoundError):
        store.get_conversation(conversation)
    with pytest.raises(ConversationNotFoundError):
        store.rename(conversation, "x")
    assert store.messages(conversation) == [] and store.search("searchable") == []


def test_delete_last_exchange(store: HistoryStore) -> None:
    conversation = store.create_conversation()
    for role, text in [("user", "one"), ("assistant", "1"), ("user", "two"), ("assistant", "2 partial"),
                       ("assistant", "")]:
        store.add_message(conversation, role, text)
    assert store.delete_last_exchange(conversation) == "two"
    assert [m.content for m in store.messages(conversation)] == ["one", "1"]
    assert store.search("partial") == []
    assert store.delete_last_exchange(store.create_conversation()) is None


def test_recent_prompts_are_distinct_and_oldest_first(store: HistoryStore) -> None:
    conversation = store.create_conversation()
    for text in ["a", "b", "a", "c"]:
        store.add_message(conversation, "user", text)
        store.add_message(conversation, "assistant", text.upper())
    assert store.recent_prompts() == ["b", "a", "c"]
    assert store.recent_prompts(limit=2) == ["a", "c"]


def test_export_markdown_and_json(store: HistoryStore) -> None:
    import json

    conversation = store.create_conversation(profile="echo", system="Be terse.", settings={"temperature": 0.1})
    store.add_message(conversation, "user", "Show code", profile="echo", model="echo")
    store.add_message(conversation, "assistant", "```py\nx = 1\n```", profile="echo", model="echo",
                      cost_usd=0.001, finish_reason="interrupted")
    store.add_message(conversation, "assistant", "", profile="echo", model="echo", finish_reason="error",
                      error="the server is down\nhint: start it")
    record, messages = store.get_conversation(conversation), store.messages(conversation)
    markdown = to_markdown(record, messages)
    assert markdown.startswith("# Show code\n")
    assert "## System\n\nBe terse." in markdown and "temperature = 0.1" in markdown
    assert "## echo · echo\n\n```py\nx = 1\n```\n\n*(cancelled" in markdown
    assert "> **error:** the server is down\n> hint: start it" in markdown
    document = json.loads(to_json(record, messages))
    assert document["system"] == "Be terse." and document["settings"] == {"temperature": 0.1}
    assert [m["finish_reason"] for m in document["messages"]] == [None, "interrupted", "error"]
    assert document["created_at"].endswith("+00:00")


# ---- search ----------------------------------------------------------------------------------------------


@pytest.fixture
def library(store: HistoryStore) -> dict[str, int]:
    python = store.create_conversation()
    store.add_message(python, "user", "How do I tokenize text with tiktoken?")
    store.add_message(python, "assistant", "Call enc.encode(text) after tiktoken.get_encoding('o200k_base').")
    cafe = store.create_conversation()
    store.add_message(cafe, "user", "Recommend a café near the station")
    store.add_message(cafe, "assistant", "The Blue Door café serves good espresso.")
    return {"python": python, "cafe": cafe}


def test_search_matches_prefixes_of_every_word(store: HistoryStore, library: dict[str, int]) -> None:
    hits = store.search("tok tikt")
    assert [h.conversation_id for h in hits] == [library["python"]]
    assert marked(hits[0].snippet) == ["tokenize", "tiktoken"]
    assert store.search("tiktoken espresso") == []  # every word must match, in one message


def test_search_phrases_and_diacritics(store: HistoryStore, library: dict[str, int]) -> None:
    assert [h.message_id for h in store.search('"blue door"')] == [store.messages(library["cafe"])[1].id]
    assert store.search('"door blue"') == []
    assert len(store.search("cafe")) == 2  # café without the accent
    assert {h.role for h in store.search("cafe")} == {"user", "assistant"}


@pytest.mark.parametrize("query", ['"', "AND", "(", "a OR", "NEAR(x y)", "*", "col:value", "-x", "'", "^", ""])
def test_search_never_fails_on_what_people_type(store: HistoryStore, library: dict[str, int], query: str) -> None:
    assert isinstance(store.search(query), list)


def test_fts_query_quotes_every_term() -> None:
    assert fts_query('find "exact words" and pre') == '"exact words" "find"* "and"* "pre"*'
    assert fts_query("***") == ""


def test_search_finds_the_best_match_first(store: HistoryStore) -> None:
    conversation = store.create_conversation()
    store.add_message(conversation, "user", "llama " + "filler " * 50)
    store.add_message(conversation, "user", "llama llama llama")
    hits = store.search("llama")
    assert hits[0].snippet.count(HIGHLIGHT_START) == 3


def test_title_helper() -> None:
    assert title_from("\n\n  Hello world  \nmore") == "Hello world"
    assert title_from("## A heading\n\ntext") == "A heading" and title_from("---") == "---"
    assert title_from("x" * 100).endswith("…") and len(title_from("x" * 100)) == 60


def test_recording_takes_plain_values(store: HistoryStore) -> None:
    """The store knows nothing of conversations or clients: ids, names and numbers in, an id out."""
    conversation_id = store.record_prompt(None, "fast", "echo", "m1", "Be brief.", {"max_tokens": 3}, "first",
                                          one_shot=True)
    assert conversation_id is not None
    record = store.get_conversation(conversation_id)
    assert (record.title, record.profile, record.system, record.settings, record.one_shot) == (
        "first", "fast", "Be brief.", {"max_tokens": 3}, True)
    remember_secret("sk-house-0123456789abcdef")
    store.record_answer(conversation_id, AnswerRecord(
        "partial", "fast", "echo", "m1", output_tokens=2, cost_usd=0.25, latency_s=1.5, finish_reason="error",
        error="bad key sk-house-0123456789abcdef\nhint: set another"))
    again = store.record_prompt(conversation_id, "slow", "echo", "m2", None, {}, "second")
    assert again == conversation_id
    record = store.get_conversation(conversation_id)
    assert (record.profile, record.system, record.settings, record.one_shot) == ("slow", None, {}, False)
    prompt, answer, second = store.messages(conversation_id)
    assert (prompt.profile, prompt.backend, prompt.model) == ("fast", "echo", "m1")
    assert (answer.content, answer.cost_usd, answer.output_tokens, answer.finish_reason) == ("partial", 0.25, 2,
                                                                                             "error")
    assert answer.error is not None and "0123456789abcdef" not in answer.error and "hint: set another" in answer.error
    assert second.model == "m2" and store.last_error is None


# ---- concurrency ------------------------------------------------------------------------------------------


def test_a_writer_waits_for_another_processes_lock_instead_of_failing(store: HistoryStore) -> None:
    conversation = store.create_conversation()
    other = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)  # type: ignore[arg-type]
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO conversations (title, created_at, updated_at) VALUES ('other', 0, 0)")
    released = threading.Timer(0.5, lambda: other.execute("COMMIT"))
    released.start()
    started = time.monotonic()
    store.add_message(conversation, "user", "written after the other commit")
    assert time.monotonic() - started >= 0.4
    released.join()
    assert [c.title for c in store.list_conversations()][-1] == "other"


def test_cli_and_tui_write_the_same_history_at_the_same_time(hermetic: Path, store: HistoryStore) -> None:
    """Several `llmswitch chat` processes (new conversations and --continue into the TUI's) while the
    TUI's store writes from threads: nothing is lost, nothing fails with "database is locked"."""
    tui_conversation = store.create_conversation("tui")
    store.add_message(tui_conversation, "user", "seed")
    errors: list[BaseException] = []

    def tui_writer(name: str) -> None:
        try:
            for index in range(40):
                store.add_message(tui_conversation, "assistant", f"{name} message {index}")
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    environment = {**os.environ, "LLMSWITCH_CONFIG": str(hermetic / "config" / "config.toml")}
    commands = [[sys.executable, "-m", "llmswitch", "chat", "-p", "echo", f"cli prompt {i}"] for i in range(3)]
    commands += [[sys.executable, "-m", "llmswitch", "chat", "-p", "echo", "--continue", str(tui_conversation),
                  f"continued {i}"] for i in range(2)]
    processes = [subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for command in commands]
    threads = [threading.Thread(target=tui_writer, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert "warning" not in err
    assert errors == []
    contents = [m.content for m in store.messages(tui_conversation)]
    assert len([c for c in contents if " message " in c]) == 80
    assert contents.count("continued 0") == 2 and contents.count("continued 1") == 2  # prompt and echo
    titles = {c.title for c in store.list_conversations()}
    assert {"tui", "cli prompt 0", "cli prompt 1", "cli prompt 2"} == titles
    assert len(store.search("continued")) == 4
