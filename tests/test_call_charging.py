"""Every call is checked before it is sent and charged when it ends, in one place for every face: the library's
``complete``/``stream``/``acomplete``/``astream`` (sync and async), chat's Conversation, batch, serve and bench.

Against the OpenAI protocol server on 127.0.0.1, whose request log says whether anything reached it; the usage
ledger says what was charged, and that nothing was charged twice."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import tomli_w

from llmswitch.bench import run_bench
from llmswitch.client import AsyncClient, Client
from llmswitch.conversation import Conversation
from llmswitch.errors import BudgetExceededError
from llmswitch.ledger import Ledger, LedgerEntry
from llmswitch.types import TextDelta
from tests.servers.gateway import RunningGateway, reset_upstream
from tests.servers.http import LocalServer
from tests.servers.openai_server import openai_server

FAST = {"backoff_base_s": 0.01, "backoff_max_s": 0.02}


@pytest.fixture(scope="module")
def shared_servers() -> Iterator[tuple[LocalServer, LocalServer]]:
    with openai_server() as first, openai_server() as second:
        yield first, second


@pytest.fixture
def upstream(shared_servers: tuple[LocalServer, LocalServer]) -> LocalServer:
    reset_upstream(shared_servers[1], tokens=8)
    return reset_upstream(shared_servers[0], tokens=8)


@pytest.fixture
def second(shared_servers: tuple[LocalServer, LocalServer], upstream: LocalServer) -> LocalServer:
    return shared_servers[1]


def profile(server: LocalServer, **values: Any) -> dict[str, Any]:
    """$1 per million tokens in and out (a call here costs a few millionths of a dollar)."""
    return {"backend": "openai", "model": "test-model", "base_url": f"{server.url}/v1", "api_key": "sk-test",
            "timeout": 10.0, "price_input_per_mtok": 1.0, "price_output_per_mtok": 1.0, **FAST, **values}


def write(config_file: Path, profiles: dict[str, dict[str, Any]]) -> None:
    config_file.write_text(tomli_w.dumps({"profiles": profiles}))


def asked(server: LocalServer) -> int:
    return sum(1 for request in server.state.requests if request.path.endswith("/chat/completions"))


def rows() -> list[LedgerEntry]:
    with Ledger() as ledger:
        return ledger.entries()


def summary(entries: list[LedgerEntry]) -> list[tuple[str, str, str | None]]:
    return [(entry.profile, entry.outcome, entry.route) for entry in entries]


def ask_sync(name: str, how: str) -> Any:
    resolved = Client().resolve(name)
    request = resolved.request("hello")
    if how == "complete":
        return resolved.complete(request)
    result = resolved.stream(request)
    list(result)
    return result


async def ask_async(name: str, how: str) -> Any:
    resolved = AsyncClient().resolve(name)
    request = resolved.request("hello")
    if how == "acomplete":
        return await resolved.acomplete(request)
    result = resolved.astream(request)
    async with result:
        async for _event in result:
            pass
    return result


def ask(name: str, how: str) -> Any:
    return asyncio.run(ask_async(name, how)) if how.startswith("a") else ask_sync(name, how)


HOW = ["complete", "stream", "acomplete", "astream"]


# ---- budgets: checked before anything is sent ------------------------------------------------------------------


@pytest.mark.parametrize("how", HOW)
def test_a_library_call_over_budget_is_refused_before_any_request(how: str, config_file: Path,
                                                                  upstream: LocalServer) -> None:
    write(config_file, {"dear": profile(upstream, price_input_per_mtok=1e6, price_output_per_mtok=1e6,
                                        budget_usd_per_day=0.01, max_tokens=100)})
    with pytest.raises(BudgetExceededError) as refused:
        ask("dear", how)
    assert "it was not sent" in refused.value.message
    assert asked(upstream) == 0  # the server never saw it
    assert rows() == []  # and nothing was charged


def test_the_async_stream_raises_the_refusal_from_its_first_iteration(config_file: Path,
                                                                      upstream: LocalServer) -> None:
    write(config_file, {"dear": profile(upstream, price_input_per_mtok=1e6, budget_usd_per_day=0.01)})

    async def main() -> list[Any]:
        resolved = AsyncClient().resolve("dear")
        result = resolved.astream(resolved.request("hello"))  # nothing asked yet: a plain function
        seen: list[Any] = []
        with pytest.raises(BudgetExceededError):
            async for event in result:
                seen.append(event)
        return seen

    assert asyncio.run(main()) == []
    assert asked(upstream) == 0 and rows() == []


# ---- the ledger: one row per call, whatever the form ---------------------------------------------------------


@pytest.mark.parametrize("how", HOW)
def test_each_library_call_writes_exactly_one_row_with_its_cost(how: str, config_file: Path,
                                                                upstream: LocalServer) -> None:
    write(config_file, {"plain": profile(upstream)})
    result = ask("plain", how)
    assert result.text.startswith("w0 w1")
    [row] = rows()
    assert (row.profile, row.backend, row.model, row.outcome, row.route) == ("plain", "openai", "test-model",
                                                                             "ok", None)
    assert row.output_tokens == 8 and row.input_tokens is not None
    assert row.cost_usd == pytest.approx((row.input_tokens + 8) / 1e6)
    if how in ("stream", "astream"):
        assert result.cost is not None and result.cost.usd == pytest.approx(row.cost_usd)  # the cost is kept


@pytest.mark.parametrize("how", HOW)
def test_a_routes_failed_attempt_and_its_answering_member_are_charged(how: str, config_file: Path,
                                                                      upstream: LocalServer,
                                                                      second: LocalServer) -> None:
    upstream.state.scenario = "auth"
    write(config_file, {"a": profile(upstream), "b": profile(second, price_output_per_mtok=2.0),
                        "r": {"route": "fallback", "members": ["a", "b"]}})
    result = ask("r", how)
    assert result.text.startswith("w0")
    entries = rows()
    assert summary(entries) == [("a", "auth", "r"), ("b", "ok", "r")]
    assert entries[0].cost_usd is None  # the failed attempt costs nothing known
    assert entries[1].cost_usd == pytest.approx((entries[1].input_tokens + 2 * 8) / 1e6)  # b's own price


def test_a_failed_call_is_charged_as_failed(config_file: Path, upstream: LocalServer) -> None:
    upstream.state.scenario = "server_error"
    write(config_file, {"plain": profile(upstream, max_retries=0)})
    result = ask("plain", "astream")
    assert result.error is not None
    assert summary(rows()) == [("plain", result.error.kind, None)]


def test_an_async_stream_cancelled_mid_way_is_charged_for_what_arrived(config_file: Path,
                                                                       upstream: LocalServer) -> None:
    upstream.state.scenario = "stall"  # a few pieces, then silence
    upstream.state.options["delay"] = 30
    write(config_file, {"plain": profile(upstream)})

    async def main() -> Any:
        resolved = AsyncClient().resolve("plain")
        result = resolved.astream(resolved.request("hello"))
        got_text = asyncio.Event()

        async def read() -> None:
            async for event in result:
                if type(event) is TextDelta:
                    got_text.set()

        task = asyncio.create_task(read())
        await asyncio.wait_for(got_text.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return result

    result = asyncio.run(main())
    assert result.interrupted and result.text
    [row] = rows()
    assert row.outcome == "interrupted" and row.tokens_estimated
    assert row.output_tokens == max(1, round(len(result.text) / 4))  # what arrived, counted
    assert row.cost_usd is not None and row.cost_usd > 0
    assert result.cost is not None and result.cost.usd == pytest.approx(row.cost_usd)


def test_a_sync_stream_left_mid_way_is_charged_once_as_interrupted(config_file: Path,
                                                                   upstream: LocalServer) -> None:
    write(config_file, {"plain": profile(upstream)})
    resolved = Client().resolve("plain")
    result = resolved.stream(resolved.request("hello"))
    for event in result:
        if type(event) is TextDelta:
            break  # the loop lets go of the iteration: it closes, and the call is charged then
    [row] = rows()
    assert row.outcome == "interrupted" and row.output_tokens == 1 and row.tokens_estimated
    assert result.cost is not None and result.cost.usd == pytest.approx(row.cost_usd)


def test_a_call_created_and_never_read_is_not_charged(config_file: Path, upstream: LocalServer) -> None:
    write(config_file, {"plain": profile(upstream)})
    resolved = Client().resolve("plain")
    resolved.stream(resolved.request("hello"))
    assert asked(upstream) == 0 and rows() == []


# ---- every face: exactly the rows expected, never twice ------------------------------------------------------


def test_chat_charges_one_row_and_keeps_its_cost_in_the_history(config_file: Path, upstream: LocalServer) -> None:
    write(config_file, {"plain": profile(upstream)})
    conversation = Conversation(Client(), "plain")
    turn = conversation.stream("hello")
    list(turn)
    [row] = rows()
    assert row.outcome == "ok" and turn.cost is not None and turn.cost.usd == pytest.approx(row.cost_usd)


def test_async_chat_charges_one_row(config_file: Path, upstream: LocalServer) -> None:
    write(config_file, {"plain": profile(upstream)})

    async def main() -> Any:
        conversation = Conversation(AsyncClient(), "plain")
        return await conversation.acomplete("hello")

    asyncio.run(main())
    assert summary(rows()) == [("plain", "ok", None)]


def test_a_batch_charges_one_row_per_line_on_its_route(config_file: Path, upstream: LocalServer,
                                                       second: LocalServer) -> None:
    upstream.state.scenario = "auth"
    write(config_file, {"a": profile(upstream), "b": profile(second),
                        "r": {"route": "fallback", "members": ["a", "b"]}})

    async def main() -> list[Any]:
        return [result async for result in AsyncClient().batch("r", ["one", "two"], concurrency=1)]

    results = asyncio.run(main())
    assert all(result.error is None for result in results)
    assert sorted(summary(rows())) == sorted([("a", "auth", "r"), ("b", "ok", "r")] * 2)


def test_the_gateway_charges_one_row_per_request(config_file: Path, upstream: LocalServer) -> None:
    write(config_file, {"plain": profile(upstream)})
    with RunningGateway() as gateway:
        client = openai.OpenAI(base_url=gateway.base_url, api_key="sk-local", max_retries=0)
        client.chat.completions.create(model="plain", messages=[{"role": "user", "content": "hi"}])
        stream = client.chat.completions.create(model="plain", messages=[{"role": "user", "content": "hi"}],
                                                stream=True)
        assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert summary(rows()) == [("plain", "ok", None)] * 2
    assert asked(upstream) == 2


def test_bench_charges_one_row_per_call(config_file: Path, upstream: LocalServer) -> None:
    write(config_file, {"plain": profile(upstream)})
    [bench] = run_bench(Client(), ["plain"], runs=2, warmup=1)
    assert len(bench.samples) == 2 and not bench.failures
    assert summary(rows()) == [("plain", "ok", None)] * 3
    assert bench.samples[0].cost_usd is not None


def test_bench_over_budget_is_a_refused_sample_and_sends_nothing(config_file: Path, upstream: LocalServer) -> None:
    write(config_file, {"dear": profile(upstream, price_input_per_mtok=1e6, budget_usd_per_day=0.01)})
    [bench] = run_bench(Client(), ["dear"], runs=1, warmup=0)
    assert bench.first_error is not None and "budget" in bench.first_error
    assert asked(upstream) == 0 and rows() == []


def test_a_cache_hit_through_the_library_is_charged_zero_and_says_cached(config_file: Path,
                                                                        upstream: LocalServer) -> None:
    write(config_file, {"cached": profile(upstream, cache=True)})
    first = ask("cached", "complete")
    again = asyncio.run(ask_async("cached", "astream"))
    assert again.cached and again.text == first.text and asked(upstream) == 1
    entries = rows()
    assert [(entry.outcome, entry.cost_usd) for entry in entries][1] == ("cached", 0.0)
    assert len(entries) == 2


@pytest.mark.parametrize("how", HOW)
def test_a_cache_hit_is_served_over_budget_at_zero_cost(how: str, config_file: Path, upstream: LocalServer) -> None:
    write(config_file, {"cached": profile(upstream, cache=True, budget_usd_per_day=0.01, max_tokens=100)})
    first = ask("cached", "complete")  # within the budget: asked, and kept
    with Ledger() as ledger:  # then the day's budget is spent
        ledger.append(LedgerEntry("cached", "openai", "test-model", 1, 1, 0.02, 0.1))
    again = ask("cached", how)
    assert again.text == first.text and asked(upstream) == 1
    entries = rows()
    assert [(entry.outcome, entry.cost_usd) for entry in entries[2:]] == [("cached", 0.0)]
    uncached = profile(upstream, budget_usd_per_day=0.01, max_tokens=100)
    write(config_file, {"cached": uncached})
    with pytest.raises(BudgetExceededError):  # the same request, not from the cache: refused
        ask("cached", how)
    assert asked(upstream) == 1
