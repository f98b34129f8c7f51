"""The router's decisions in the TUI's status line, while the answer is on its way: a retry after a 429 with
Retry-After, and a fallback to the next member, against OpenAI protocol servers with scripted faults."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from conftest import wait_for

from llmswitch.tui.app import create_app
from llmswitch.tui.screens.chat import ChatScreen
from llmswitch.tui.widgets.prompt_input import PromptInput
from llmswitch.tui.widgets.status import StatusLine
from tests.servers.http import LocalServer
from tests.servers.openai_server import openai_server

pytestmark = pytest.mark.anyio
SIZE = (140, 30)


@pytest.fixture
def servers() -> Iterator[tuple[LocalServer, LocalServer]]:
    pytest.importorskip("llmswitch_openai")
    with openai_server() as a, openai_server() as b:
        a.state.options["answer"], b.state.options["answer"] = "answer from a", "answer from b"
        yield a, b


def member(server: LocalServer) -> dict[str, Any]:
    return {"backend": "openai", "base_url": f"{server.url}/v1", "model": "test-model", "api_key": "sk-test"}


def status_text(app) -> str:  # type: ignore[no-untyped-def]
    return str(app.screen.query_one(StatusLine).render())


def record_status(monkeypatch: pytest.MonkeyPatch, server: LocalServer) -> list[tuple[str, int]]:
    """Every text the status line shows, with how many requests ``server`` had seen when it was shown.

    A decision is on screen only until the retry or the next member answers (a second or so): polling the
    status line could miss it when the machine is busy, the record cannot."""
    shown: list[tuple[str, int]] = []
    show = StatusLine.show

    def recording(line: StatusLine, **fields: Any) -> None:
        show(line, **fields)
        shown.append((str(line.render()), len(server.state.requests)))

    monkeypatch.setattr(StatusLine, "show", recording)
    return shown


async def ask(pilot, text: str) -> ChatScreen:  # type: ignore[no-untyped-def]
    screen = pilot.app.screen
    assert isinstance(screen, ChatScreen)
    screen.query_one(PromptInput).load_text(text)
    await pilot.press("enter")
    return screen


async def test_a_retry_after_a_429_shows_in_the_status_line(servers: tuple[LocalServer, LocalServer],
                                                             config_file: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    server, _ = servers
    shown = record_status(monkeypatch, server)
    decision = "p: 429, retrying in 1.5 s (Retry-After)"
    server.state.script = ["rate_limit", "ok"]
    server.state.options["retry_after"] = "1.5"
    config_file.write_text(tomli_w.dumps({"profiles": {"p": member(server)}}), encoding="utf-8")
    app = create_app(profile="p")
    async with app.run_test(size=SIZE) as pilot:
        screen = await ask(pilot, "hello")
        await wait_for(pilot, lambda: any(decision in text for text, _ in shown))
        # shown once, while waiting: the retry was not sent yet
        assert [sent for text, sent in shown if decision in text] == [1]
        await wait_for(pilot, lambda: screen.current is None and not screen.views)
        answer = screen.chat_log.last_assistant()
        assert answer is not None and answer.text == "answer from a"
        assert len(server.state.requests) == 2
        assert "retrying" not in status_text(app)  # the answer's figures replace the decision


async def test_a_fallback_shows_in_the_status_line(servers: tuple[LocalServer, LocalServer],
                                                   config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = servers
    shown = record_status(monkeypatch, second)
    decision = "a: 401; answering with b"
    first.state.scenario = "auth"
    second.state.scenario = "slow_first_byte"  # the decision stays on screen while the next member thinks
    second.state.options["delay"] = 1.0
    config_file.write_text(tomli_w.dumps({"profiles": {
        "a": member(first), "b": member(second), "reliable": {"route": "fallback", "members": ["a", "b"]},
    }}), encoding="utf-8")
    app = create_app(profile="reliable")
    async with app.run_test(size=SIZE) as pilot:
        screen = await ask(pilot, "hello")
        await wait_for(pilot, lambda: any(decision in text for text, _ in shown))
        assert [sent for text, sent in shown if decision in text] == [0]  # before b was asked
        await wait_for(pilot, lambda: screen.current is None and not screen.views)
        answer = screen.chat_log.last_assistant()
        assert answer is not None and answer.text == "answer from b"
        assert len(first.state.requests) == 1 and len(second.state.requests) == 1
