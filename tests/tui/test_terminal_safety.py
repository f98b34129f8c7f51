"""In the TUI, an answer cannot drive the terminal either: live from a real server, and reopened from the
history (where it would replay every time). What the widgets render holds no control character; the history
keeps the raw text."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w
from conftest import wait_for
from test_chat import chat, send, stored
from textual.geometry import Region

from llmswitch.store import HistoryStore
from llmswitch.tui.app import create_app
from tests.servers.http import LocalServer
from tests.servers.openai_server import openai_server

pytestmark = pytest.mark.anyio
SIZE = (120, 40)
HOSTILE = "Hello \x1b]52;c;cHduZWQ=\x07there\x1b]0;pwned\x07 \x1b[2Jworld\x9b2J\nline\ttwo"


def rendered(app) -> str:  # type: ignore[no-untyped-def]
    """Every character the widgets on screen render (what Textual would send to the terminal)."""
    text = []
    for widget in app.screen.query("*"):
        width, height = widget.size
        if not width or not height:
            continue
        for strip in widget.render_lines(Region(0, 0, width, height)):
            text.append("".join(segment.text for segment in strip))
    return "\n".join(text)


def assert_inert(text: str) -> None:
    controls = sorted({c for c in text if (ord(c) < 0x20 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F})
    assert not controls, controls


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with openai_server() as running:
        running.state.options["answer"] = HOSTILE
        yield running


async def test_a_streamed_answer_and_an_error_body_render_inert(server: LocalServer, config_file: Path) -> None:
    config_file.write_text(tomli_w.dumps({"default_profile": "hostile", "profiles": {"hostile": {
        "backend": "openai", "base_url": f"{server.url}/v1", "model": "test-model", "timeout": 10.0}}}))
    app = create_app()
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "hi")
        shown = rendered(app)
        assert "Hello ␛]52;c;cHduZWQ=␇there" in shown
        assert_inert(shown)
        assert stored(app)[-1].content == HOSTILE  # the history keeps the raw text
        server.state.scenario = "server_error"
        server.state.options["error_message"] = "down \x1b]0;pwned\x07\x1b[2J"
        await send(pilot, "again")
        answer = chat(app).chat_log.last_assistant()
        assert answer is not None
        assert "down ␛]0;pwned␇␛[2J" in str(answer.query_one(".error").render())
        assert_inert(rendered(app))


async def test_a_stored_conversation_reopens_inert(config: Path, store: HistoryStore) -> None:
    conversation = store.create_conversation("title \x1b]0;pwned\x07", profile="fast")
    store.add_message(conversation, "user", "prompt \x1b[2J")
    store.add_message(conversation, "assistant", HOSTILE, profile="fast", model="echo-fast",
                      finish_reason="error", error="error: boom \x1b]52;c;eA==\x07")
    app = create_app(conversation_id=conversation)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(chat(app).chat_log.messages()) == 2)
        await pilot.pause()
        shown = rendered(app)
        assert "world<U+009B>2J" in shown and "boom ␛]52;c;eA==␇" in shown and "prompt ␛[2J" in shown
        assert_inert(shown)
        # searching shows titles and snippets from the same stored text
        chat(app).sidebar.search_box.value = "world"
        await wait_for(pilot, lambda: "match" in str(chat(app).sidebar.option_list.border_title))
        assert_inert(rendered(app))
