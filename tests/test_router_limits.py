"""Rate limits (max_concurrent, rpm, tpm) against the OpenAI protocol server over a real socket: a call over a
limit waits for room up to the deadline, a pool prefers a member with room, tokens are settled with usage."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from llmswitch.client import Client
from llmswitch.errors import BackendTimeoutError
from tests.servers.http import LocalServer
from tests.servers.openai_server import OpenAIHandler, openai_server


@pytest.fixture
def servers() -> Iterator[list[LocalServer]]:
    with openai_server() as a, openai_server() as b:
        a.state.options["answer"], b.state.options["answer"] = "from a", "from b"
        yield [a, b]


def member(server: LocalServer, **values: Any) -> dict[str, Any]:
    return {"backend": "openai", "base_url": f"{server.url}/v1", "model": "test-model", "api_key": "sk-test",
            **values}


def write(config_file: Path, profiles: dict[str, Any]) -> None:
    config_file.write_text(tomli_w.dumps({"profiles": profiles}))


def ask(client: Client, name: str, **settings: Any) -> Any:
    resolved = client.resolve(name)
    return resolved.complete(resolved.request("hello", **settings))


def at_once(count: int, client: Client, name: str) -> list[str]:
    """``count`` calls to profile ``name`` from as many threads at once; their answers."""
    answers: list[str] = []
    threads = [threading.Thread(target=lambda: answers.append(ask(client, name).text)) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_max_concurrent_holds_a_second_call_until_the_first_is_done(servers: list[LocalServer],
                                                                    config_file: Path) -> None:
    servers[0].state.scenario = "slow_first_byte"
    servers[0].state.options["delay"] = 0.4
    write(config_file, {"p": member(servers[0], max_concurrent=1)})
    answers = at_once(2, Client(), "p")
    assert answers == ["from a", "from a"]
    first, second = servers[0].state.requests
    assert second.at - first.at >= 0.4  # the second was sent only once the first had its answer


def test_a_call_over_rpm_waits_up_to_the_deadline_and_says_which_limit(servers: list[LocalServer],
                                                                       config_file: Path) -> None:
    write(config_file, {"p": member(servers[0], rpm=2, timeout_total=0.5)})
    client = Client()
    ask(client, "p")
    ask(client, "p")
    with pytest.raises(BackendTimeoutError) as caught:
        ask(client, "p")
    assert "rpm limit" in str(caught.value)
    assert len(servers[0].state.requests) == 2  # never sent past the limit


def test_a_pool_prefers_the_member_with_room(servers: list[LocalServer], config_file: Path) -> None:
    write(config_file, {"a": member(servers[0], rpm=1), "b": member(servers[1]),
                        "fleet": {"route": "pool", "members": ["a", "b"]}})
    client = Client()
    answers = Counter(ask(client, "fleet").text for _ in range(5))
    assert answers == {"from a": 1, "from b": 4}


def test_tpm_reserves_before_and_settles_with_the_real_usage(servers: list[LocalServer], config_file: Path) -> None:
    # Each call reserves about 60 tokens (its input plus max_tokens = 50) and uses about 14: without settling,
    # the second call would not fit in 100 tokens a minute.
    write(config_file, {"p": member(servers[0], tpm=100, timeout_total=0.5)})
    client = Client()
    for _ in range(3):
        assert ask(client, "p", max_tokens=50).text == "from a"
    assert client.router_state.in_flight("flight:p") == 0


def test_a_stream_the_caller_stops_gives_back_its_place(servers: list[LocalServer], config_file: Path) -> None:
    import asyncio

    from llmswitch.client import AsyncClient
    from llmswitch.types import TextDelta

    servers[0].state.options["tokens"] = 20
    write(config_file, {"p": member(servers[0], max_concurrent=1),
                        "fleet": {"route": "fallback", "members": ["p"], "max_concurrent": 1}})
    client = Client()
    for name in ("p", "fleet"):
        resolved = client.resolve(name)
        stream = resolved.stream(resolved.request("hello"))
        assert any(type(event) is TextDelta for event in stream)  # stopped at the first piece of text
        stream.close()
        assert client.router_state.in_flight("flight:p") == client.router_state.in_flight("flight:fleet") == 0

    async def cancelled(name: str) -> None:
        resolved = AsyncClient().resolve(name)
        started = asyncio.Event()

        async def read() -> None:
            async for event in resolved.astream(resolved.request("hello")):
                if type(event) is TextDelta:
                    started.set()
                    await asyncio.sleep(10)

        task = asyncio.create_task(read())
        await started.wait()
        assert client.router_state.in_flight("flight:p") == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The abandoned stream is closed by the loop (its finalizer) once the task lets go of it.
        for _ in range(500):
            if client.router_state.in_flight("flight:p") == 0:
                break
            await asyncio.sleep(0.01)

    for name in ("p", "fleet"):
        asyncio.run(cancelled(name))
        assert client.router_state.in_flight("flight:p") == client.router_state.in_flight("flight:fleet") == 0
    assert ask(client, "fleet").text == "from a"  # the places are free: a new call is admitted at once


# ---- limits on a route as a whole --------------------------------------------------------------------------------


class InFlight:
    """Calls in flight across several servers, as the servers count them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = self.most = self.total = 0

    def handler(self, hold_s: float) -> type[OpenAIHandler]:
        counter = self

        class Counting(OpenAIHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                with counter.lock:
                    counter.now += 1
                    counter.total += 1
                    counter.most = max(counter.most, counter.now)
                try:
                    time.sleep(hold_s)  # the model thinking: the call stays in flight
                    super().do_POST()
                finally:
                    with counter.lock:
                        counter.now -= 1

        return Counting


def test_a_pools_max_concurrent_holds_across_its_members(config_file: Path) -> None:
    counter = InFlight()
    with LocalServer(counter.handler(0.3)) as a, LocalServer(counter.handler(0.3)) as b, \
            LocalServer(counter.handler(0.3)) as c:
        write(config_file, {"a": member(a), "b": member(b), "c": member(c),
                            "fleet": {"route": "pool", "strategy": "least-busy", "members": ["a", "b", "c"],
                                      "max_concurrent": 2}})
        client = Client()
        answers = at_once(6, client, "fleet")
    assert len(answers) == 6 and counter.total == 6
    assert counter.most == 2  # never three at once across the members, and the route's two places were used
    assert client.router_state.in_flight("flight:fleet") == 0


def test_a_routes_rpm_counts_calls_through_any_member(servers: list[LocalServer], config_file: Path) -> None:
    write(config_file, {"a": member(servers[0]), "b": member(servers[1]),
                        "r": {"route": "pool", "members": ["a", "b"], "rpm": 2, "timeout_total": 0.5}})
    client = Client()
    assert {ask(client, "r").text, ask(client, "r").text} == {"from a", "from b"}
    with pytest.raises(BackendTimeoutError) as caught:
        ask(client, "r")
    assert "no room under route r's rpm limit" in str(caught.value)
    assert len(servers[0].state.requests) + len(servers[1].state.requests) == 2


def test_a_members_own_limit_still_holds_inside_a_limited_route(servers: list[LocalServer],
                                                                config_file: Path) -> None:
    write(config_file, {"a": member(servers[0], rpm=1), "b": member(servers[1]),
                        "r": {"route": "fallback", "members": ["a", "b"], "rpm": 10}})
    client = Client()
    assert [ask(client, "r").text for _ in range(3)] == ["from a", "from b", "from b"]
    assert client.router_state.try_take("rpm:r", 7, 10, 60.0) == 0.0  # three calls took three of the route's


def test_a_call_the_route_refuses_gives_back_the_members_place(servers: list[LocalServer],
                                                               config_file: Path) -> None:
    write(config_file, {"a": member(servers[0], rpm=5), "r": {"route": "pool", "members": ["a"], "rpm": 2,
                                                                "timeout_total": 0.3}})
    client = Client()
    ask(client, "r")
    ask(client, "r")
    with pytest.raises(BackendTimeoutError):
        ask(client, "r")  # a had room, the route had none: a's request place is given back, nothing was sent
    assert len(servers[0].state.requests) == 2
    assert client.router_state.try_take("rpm:a", 3, 5, 60.0) == 0.0
    assert client.router_state.in_flight("flight:a") == client.router_state.in_flight("flight:r") == 0


@pytest.mark.parametrize("key", ["max_concurrent", "rpm", "tpm"])
def test_a_limit_below_one_is_refused_on_a_route_and_on_a_profile(servers: list[LocalServer], config_file: Path,
                                                                   key: str) -> None:
    from llmswitch.errors import InvalidOptionError

    write(config_file, {"a": member(servers[0]), "b": member(servers[1], **{key: 0}),
                        "r": {"route": "pool", "members": ["a"], key: 0}})
    for name in ("r", "b"):
        with pytest.raises(InvalidOptionError) as caught:
            Client().resolve(name)
        assert f"'{key}' must be at least 1, not 0" in str(caught.value)
        assert "remove it for no limit" in (caught.value.remedy or "")


# ---- budgets on routes -----------------------------------------------------------------------------------------

PRICED = {"price_input_per_mtok": 1000.0, "price_output_per_mtok": 1000.0}


def test_a_member_over_its_budget_is_passed_over(servers: list[LocalServer], config_file: Path) -> None:
    write(config_file, {"a": member(servers[0], budget_usd_per_day=0.000001, **PRICED), "b": member(servers[1]),
                        "r": {"route": "fallback", "members": ["a", "b"]}})
    response = ask(Client(), "r")
    assert response.text == "from b"
    assert [(a.member, a.outcome) for a in response.attempts] == [("a", "budget"), ("b", "ok")]
    assert servers[0].state.requests == []  # refused before anything was sent


def test_a_routes_budget_covers_its_members_together(servers: list[LocalServer], config_file: Path) -> None:
    from llmswitch.conversation import Conversation
    from llmswitch.errors import BudgetExceededError
    from llmswitch.ledger import Ledger, LedgerEntry

    # A call costs at most ~$0.11 here (a few input tokens and max_tokens = 100 at $1000 per million). Each
    # member spent $0.05 today: either alone leaves room under $0.20, both together do not.
    write(config_file, {"a": member(servers[0], **PRICED), "b": member(servers[1], **PRICED),
                        "r": {"route": "pool", "members": ["a", "b"], "max_tokens": 100, "budget_usd_per_day": 0.2}})
    with Ledger() as ledger:
        for name in ("a", "b"):
            ledger.append(LedgerEntry(name, "openai", "test-model", 10, 10, 0.05, 0.1))
    with pytest.raises(BudgetExceededError) as caught:
        Conversation(Client(), "r").stream("hello", whole=True)
    assert "route 'r' has spent $0.10" in str(caught.value) and "across its members" in str(caught.value)
    assert servers[0].state.requests == servers[1].state.requests == []
