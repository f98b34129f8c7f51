"""``AsyncClient`` and the async hooks: every guarantee of the sync path, whichever form a plugin implements."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from llmswitch import AsyncClient, Client, hookimpl
from llmswitch.conversation import Conversation
from llmswitch.errors import BudgetExceededError, MissingKeyError, PluginError, UnreachableError
from llmswitch.ledger import Ledger
from llmswitch.store import HistoryStore
from llmswitch.testing import use_plugin
from llmswitch.testing.server import LocalServer
from llmswitch.types import (
    BackendInfo,
    Request,
    Response,
    StreamEnd,
    StreamError,
    StreamEvent,
    Target,
    TextDelta,
)
from tests.fake_plugins import BuggyPlugin, FailingPlugin, KeyedPlugin
from tests.helpers import write_config
from tests.plugin_guide import load_tiny
from tests.servers.openai_server import openai_server


class AsyncOnly:
    """Implements only the async hooks."""

    def __init__(self) -> None:
        self.closed = threading.Event()

    @hookimpl
    def llmswitch_backends(self) -> list[BackendInfo]:
        return [BackendInfo(name="asynconly", summary="async hooks only", key_env=None, default_model="a1")]

    @hookimpl
    async def acomplete(self, target: Target, request: Request) -> Response:
        await asyncio.sleep(0)
        return Response("whole " + request.messages[-1].content, "stop")

    @hookimpl
    async def astream(self, target: Target, request: Request) -> AsyncIterator[StreamEvent]:
        try:
            for word in request.messages[-1].content.split():
                await asyncio.sleep(0)
                yield TextDelta(word + " ")
            yield StreamEnd("stop", "a1")
        finally:
            self.closed.set()


class SlowSync:
    """A sync stream that never ends by itself; records that its finally ran, and in which thread."""

    def __init__(self) -> None:
        self.finally_ran = threading.Event()
        self.thread: str | None = None

    @hookimpl
    def llmswitch_backends(self) -> list[BackendInfo]:
        return [BackendInfo(name="slowsync", summary="slow", key_env=None, default_model="s1")]

    @hookimpl
    def stream(self, target: Target, request: Request) -> Iterator[StreamEvent]:
        try:
            while True:
                yield TextDelta("tick ")
                time.sleep(0.01)
        finally:
            self.thread = threading.current_thread().name
            self.finally_ran.set()


def profile(config_file: Path, backend: str, name: str = "p", **values: Any) -> None:
    lines = [f"[profiles.{name}]", f'backend = "{backend}"']
    lines += [f"{key} = {value!r}".replace("'", '"') for key, value in values.items()]
    write_config(config_file, "\n".join(lines) + "\n")


async def drain(result: Any) -> list[StreamEvent]:
    return [event async for event in result]


# ---- bridging: each API over each form of plugin -------------------------------------------------------------


def test_a_sync_plugin_answers_the_async_api_as_it_answers_the_sync_one() -> None:
    resolved = AsyncClient().resolve("echo")
    request = resolved.request("hello async world")
    sync_events = list(Client().resolve("echo").stream(request))

    async def main() -> tuple[list[StreamEvent], Response]:
        return await drain(resolved.astream(request)), await resolved.acomplete(request)

    events, response = asyncio.run(main())
    assert events == sync_events
    assert response.text == "hello async world" and response.latency_s is not None


def test_an_async_plugin_answers_the_sync_api(config_file: Path) -> None:
    plugin = AsyncOnly()
    with use_plugin(plugin, "asynconly"):
        profile(config_file, "asynconly")
        resolved = Client().resolve("p")
        result = resolved.stream(resolved.request("one two three"))
        assert [e.text for e in result if isinstance(e, TextDelta)] == ["one ", "two ", "three "]
        assert result.finish_reason == "stop" and plugin.closed.is_set()
        assert resolved.complete(resolved.request("x")).text == "whole x"
        assert asyncio.run(resolved.acomplete(resolved.request("y"))).text == "whole y"


def test_stopping_an_async_plugin_early_from_sync_code_closes_it(config_file: Path) -> None:
    plugin = AsyncOnly()
    with use_plugin(plugin, "asynconly"):
        profile(config_file, "asynconly")
        resolved = Client().resolve("p")
        events = iter(resolved.stream(resolved.request("a b c d e f")))
        next(events)
        events.close()  # type: ignore[attr-defined]
        assert plugin.closed.wait(5)


def test_cancelling_a_task_stops_a_sync_stream_at_its_next_event_and_runs_its_finally(config_file: Path) -> None:
    plugin = SlowSync()
    with use_plugin(plugin, "slowsync"):
        profile(config_file, "slowsync")
        resolved = AsyncClient().resolve("p")

        async def main() -> None:
            started = asyncio.Event()

            async def consume() -> None:
                async for event in resolved.astream(resolved.request("go")):
                    if isinstance(event, TextDelta):
                        started.set()

            task = asyncio.create_task(consume())
            await started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())
        assert plugin.finally_ran.wait(2)
        assert plugin.thread == "llmswitch-stream"  # closed in the thread that ran it, not on the loop


# ---- the guarantees -----------------------------------------------------------------------------------------


def test_a_failure_mid_stream_keeps_the_text_and_maps_the_error(config_file: Path) -> None:
    with use_plugin(FailingPlugin(), "failing"):
        profile(config_file, "failing")
        resolved = AsyncClient().resolve("p")
        result = resolved.astream(resolved.request("hi"))
        events = asyncio.run(drain(result))
    assert isinstance(events[-1], StreamError) and isinstance(events[-1].error, UnreachableError)
    assert events[-1].text == "partial answer" == result.text
    assert events[-1].error.remedy == "start the server again"


def test_a_plugin_bug_is_a_plugin_error_naming_the_plugin(config_file: Path) -> None:
    with use_plugin(BuggyPlugin(), "buggy"):
        profile(config_file, "buggy")
        resolved = AsyncClient().resolve("p")
        events = asyncio.run(drain(resolved.astream(resolved.request("hi"))))
        with pytest.raises(PluginError) as caught:
            asyncio.run(resolved.acomplete(resolved.request("hi")))
    assert isinstance(events[-1], StreamError) and isinstance(events[-1].error, PluginError)
    assert "plugin buggy raised an unexpected error" in caught.value.message
    assert "ZeroDivisionError" in caught.value.message


def test_a_missing_key_is_refused_before_anything_is_sent(config_file: Path) -> None:
    with use_plugin(KeyedPlugin(), "keyed"):
        profile(config_file, "keyed")
        resolved = AsyncClient().resolve("p")
        with pytest.raises(MissingKeyError) as caught:
            asyncio.run(resolved.acomplete(resolved.request("hi")))
    assert "KEYED_API_KEY" in caught.value.message


def test_an_async_conversation_writes_history_and_ledger(config_file: Path) -> None:
    store = HistoryStore.open()

    async def main() -> str:
        conversation = Conversation(AsyncClient(), "echo", store=store)
        turn = await conversation.astream("remember me")
        async with turn:
            async for _event in turn:
                pass
        return (await conversation.acomplete("and me")).text

    assert asyncio.run(main()) == "and me"
    (record,) = store.list_conversations()
    assert [m.content for m in store.messages(record.id)] == ["remember me", "remember me", "and me", "and me"]
    with Ledger() as ledger:
        assert [entry.profile for entry in ledger.entries()] == ["echo", "echo"]


def test_an_async_budget_refusal_sends_nothing(config_file: Path) -> None:
    with use_plugin(SlowSync(), "slowsync"):
        profile(config_file, "slowsync", budget_usd_per_day=1.0)

        async def main() -> None:
            await Conversation(AsyncClient(), "p").astream("hello")

        with pytest.raises(BudgetExceededError):
            asyncio.run(main())


# ---- a real server: the toolkit's async transport -------------------------------------------------------------


@pytest.fixture
def tiny_server(config_file: Path) -> Iterator[LocalServer]:
    with use_plugin(load_tiny(), "tiny"), openai_server() as server:
        profile(config_file, "tiny", base_url=f"{server.url}/v1", model="test-model")
        yield server


def test_cancelling_a_task_mid_stream_closes_the_upstream_connection(tiny_server: LocalServer) -> None:
    tiny_server.state.options.update(tokens=10_000, interval=0.01)
    resolved = AsyncClient().resolve("p")

    async def main() -> str:
        received: list[str] = []

        async def consume() -> None:
            async for event in resolved.astream(resolved.request("go")):
                if isinstance(event, TextDelta):
                    received.append(event.text)

        task = asyncio.create_task(consume())
        while len(received) < 5:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return "".join(received)

    text = asyncio.run(main())
    assert text.startswith("w0 w1 w2 w3 w4")
    assert tiny_server.state.disconnected.wait(5), "the server never saw the client go away"


def test_many_concurrent_async_calls_share_one_pool(tiny_server: LocalServer) -> None:
    tiny_server.state.options.update(tokens=20)
    resolved = AsyncClient().resolve("p")

    async def main() -> list[str]:
        async with AsyncClient():
            answers = await asyncio.gather(*(resolved.acomplete(resolved.request(f"q{i}")) for i in range(20)))
            streams = await asyncio.gather(*(drain(resolved.astream(resolved.request("s"))) for _ in range(10)))
        assert all(isinstance(events[-1], StreamEnd) for events in streams)
        return [answer.text for answer in answers]

    texts = asyncio.run(main())
    assert len(set(texts)) == 1 and texts[0].startswith("w0 w1")
    assert len(tiny_server.state.requests) == 30


def test_str_of_an_error_a_plugin_put_a_key_into_is_masked_in_sync_and_async(config_file: Path) -> None:
    from llmswitch.errors import AuthError, UnreachableError
    from tests.fake_plugins import QuotingPlugin

    key = "sk-supersecretkey-9876"
    with use_plugin(QuotingPlugin(), "quoting"):
        profile(config_file, "quoting", api_key=key)
        resolved = Client().resolve("p")
        result = resolved.stream(resolved.request("hi"))
        events = list(result)
        with pytest.raises(AuthError) as whole:
            resolved.complete(resolved.request("hi"))

        async def both() -> tuple[Any, BaseException]:
            aresolved = AsyncClient().resolve("p")
            streamed = aresolved.astream(aresolved.request("hi"))
            await drain(streamed)
            try:
                await aresolved.acomplete(aresolved.request("hi"))
            except AuthError as error:
                return streamed, error
            raise AssertionError("acomplete did not fail")

        astreamed, awhole = asyncio.run(both())
    assert result.text == "partial " and isinstance(events[-1], StreamError)
    failures = [result.error, events[-1].error, whole.value, astreamed.error, awhole]
    assert all(isinstance(error, (UnreachableError, AuthError)) for error in failures)
    for error in failures:
        assert error is not None
        for shown in (str(error), repr(error), error.message, error.remedy or ""):
            assert key not in shown and key[3:-4] not in shown, shown
    assert str(result.error) == "connection dropped using key sk-…9876"
    assert str(awhole) == "the server refused sk-…9876" and awhole.remedy == "not sk-…9876"


def test_str_of_any_llmswitch_error_masks_a_key_the_process_knows(config_file: Path) -> None:
    from llmswitch.errors import BackendError
    from llmswitch.secrets import remember_secret

    remember_secret("sk-proj-knownkey-abcd")
    error = BackendError("echoed: sk-proj-knownkey-abcd")  # built anywhere, by anyone
    assert str(error) == "echoed: sk-…abcd"
