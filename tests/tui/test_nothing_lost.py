"""Nothing shown is lost in the TUI: quitting (Ctrl+Q, SIGTERM) in the middle of an answer keeps the text and
records it as interrupted in the history and the ledger; a damaged history.db never ends the app."""

from __future__ import annotations

import os
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w
from conftest import wait_for
from test_chat import chat, send

from llmswitch.ledger import Ledger
from llmswitch.store import HistoryStore
from llmswitch.tui.app import create_app
from llmswitch.tui.widgets.prompt_input import PromptInput
from llmswitch.tui.widgets.sidebar import Sidebar
from tests.servers.http import LocalServer
from tests.servers.openai_server import openai_server

pytestmark = pytest.mark.anyio
SIZE = (120, 40)
LONG = "word " * 400


def last_answer() -> tuple[str, str | None]:
    with HistoryStore.open() as history:
        (conversation,) = history.list_conversations()
        answer = history.messages(conversation.id)[-1]
    assert answer.role == "assistant"
    return answer.content, answer.finish_reason


def ledger_outcomes() -> list[str]:
    with Ledger() as ledger:
        return [entry.outcome for entry in ledger.entries()]


async def start_answer(pilot, text: str) -> None:  # type: ignore[no-untyped-def]
    app = pilot.app
    app.screen.query_one(PromptInput).load_text(text)
    await pilot.press("enter")
    await wait_for(pilot, lambda: chat(app).current is not None and chat(app).views)
    view = next(iter(chat(app).views.values()))
    await wait_for(pilot, lambda: len(view.text) > 20)


@pytest.mark.parametrize("how", ["ctrl+q", "SIGTERM"])
async def test_quitting_mid_answer_keeps_and_records_it_as_interrupted(config: Path, how: str) -> None:
    def not_taken(signum: int, frame: object) -> None:
        raise AssertionError("the app did not take SIGTERM")

    previous = signal.signal(signal.SIGTERM, not_taken)  # a failure must not kill the test run
    try:
        app = create_app(profile="slow")
        async with app.run_test(size=SIZE) as pilot:
            await start_answer(pilot, LONG)
            if how == "ctrl+q":
                await pilot.press("ctrl+q")
            else:
                os.kill(os.getpid(), signal.SIGTERM)
            await wait_for(pilot, lambda: not app.is_running)
    finally:
        signal.signal(signal.SIGTERM, previous)
    text, finish_reason = last_answer()
    assert finish_reason == "interrupted"
    assert 20 < len(text) < len(LONG) and LONG.startswith(text)
    assert ledger_outcomes() == ["interrupted"]


@pytest.fixture
def stalling_server() -> Iterator[LocalServer]:
    with openai_server() as running:
        running.state.scenario = "stall"
        running.state.options.update(answer="0123456789abcdefghijklmnopqrstuvwxyz", delay=10)
        yield running


async def test_quitting_while_the_server_is_silent_records_what_arrived(
        config_file: Path, stalling_server: LocalServer) -> None:
    config_file.write_text(tomli_w.dumps({"default_profile": "p", "profiles": {"p": {
        "backend": "openai", "base_url": f"{stalling_server.url}/v1", "model": "gpt-4o-mini", "timeout": 60.0,
        "price_input_per_mtok": 1.0, "price_output_per_mtok": 2.0}}}))
    app = create_app()
    async with app.run_test(size=SIZE) as pilot:
        app.screen.query_one(PromptInput).load_text("hi")
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(stalling_server.state.requests) == 1)
        # the three chunks before the stall are on the screen (a quiet server must not keep them off it)
        await wait_for(pilot, lambda: any(view.text == "0123456789ab" for view in chat(app).views.values()))
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: not app.is_running)
    assert last_answer() == ("0123456789ab", "interrupted")
    with Ledger() as ledger:
        (entry,) = ledger.entries()
    assert entry.outcome == "interrupted" and entry.cost_usd and entry.tokens_estimated


def damage(path: Path) -> None:
    """A history.db that opens but whose messages cannot be read (a table lost to a bad copy or a bug)."""
    connection = sqlite3.connect(path)
    connection.executescript("DROP TRIGGER messages_search_insert; DROP TRIGGER messages_search_delete; "
                             "DROP TRIGGER messages_search_update; DROP TABLE messages;")
    connection.close()


async def test_a_damaged_history_never_ends_the_app(config: Path, store: HistoryStore, hermetic: Path) -> None:
    conversation = store.create_conversation("kept", profile="fast")
    path = store.path
    assert path is not None
    damage(path)
    app = create_app(profile="fast")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.pause()
        assert any("prompt history cannot be read" in str(n.message) for n in app._notifications)
        await send(pilot, "still answers")
        answer = chat(app).chat_log.last_assistant()
        assert answer is not None and answer.text == "still answers"
        assert any("history not saved" in (n.title or "") for n in app._notifications)
        chat(app).sidebar.search_box.value = "kept"  # search reads the damaged file: a message, not a crash
        await pilot.pause(0.5)
        chat(app).post_message(Sidebar.Open(conversation))  # so does opening a stored conversation
        await pilot.pause(0.3)
        await pilot.press("ctrl+r")  # and regenerating (rewinds through the store)
        await pilot.pause(0.3)
        assert app.is_running
