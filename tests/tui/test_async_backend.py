"""A backend with async hooks streams on Textual's own event loop (no thread per turn), and Esc still stops it
within a token or two, keeping the partial text."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from conftest import wait_for

from llmswitch import hookimpl, plugins
from llmswitch.tui.app import create_app
from llmswitch.tui.screens.chat import ChatScreen
from llmswitch.tui.widgets.prompt_input import PromptInput
from llmswitch.types import BackendInfo, Request, StreamEvent, Target, TextDelta

pytestmark = pytest.mark.anyio


class Ticker:
    """Async hooks only: a token every 20 ms, forever; notes where it ran and how far it got."""

    def __init__(self) -> None:
        self.threads: set[str] = set()
        self.sent = 0
        self.closed = threading.Event()

    @hookimpl
    def llmswitch_backends(self) -> list[BackendInfo]:
        return [BackendInfo(name="ticker", summary="async ticks", key_env=None, default_model="t")]

    @hookimpl
    async def astream(self, target: Target, request: Request) -> AsyncIterator[StreamEvent]:
        try:
            while True:
                self.threads.add(threading.current_thread().name)
                self.sent += 1
                yield TextDelta(f"t{self.sent} ")
                await asyncio.sleep(0.02)
        finally:
            self.closed.set()


@pytest.fixture
def ticker(config_file: Path) -> Iterator[Ticker]:
    plugin = Ticker()
    plugins.register_plugin(plugin, "ticker")
    config_file.write_text('[profiles.tick]\nbackend = "ticker"\n', encoding="utf-8")
    yield plugin
    plugins.unregister_plugin("ticker")


async def test_an_async_backend_streams_on_the_loop_and_escape_stops_it(ticker: Ticker) -> None:
    app = create_app(profile="tick")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, ChatScreen) and screen.session.streams_on_loop
        screen.query_one(PromptInput).load_text("go")
        await pilot.press("enter")
        answer = screen.chat_log.last_assistant()
        await wait_for(pilot, lambda: len(answer.text) > 20)  # type: ignore[union-attr]
        await pilot.press("escape")
        at_escape = ticker.sent
        await wait_for(pilot, lambda: not screen.views)
        assert ticker.closed.is_set()
        assert ticker.sent - at_escape <= 2  # stopped within a token or two
        assert ticker.threads == {threading.main_thread().name}  # Textual's loop, no worker thread
        assert answer is not None and answer.text.startswith("t1 t2 ")
        assert screen.session.conversation.messages[-1].content == answer.text
