"""Rate limits (max_concurrent, rpm, tpm) against the OpenAI protocol server over a real socket: a call over a
limit waits for room up to the deadline, a pool prefers a member with room, tokens are settled with usage."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from llmswitch.client import Client
from llmswitch.errors import BackendTimeoutError
from tests.servers.http import LocalServer
from tests.servers.openai_server import openai_server


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


def test_max_concurrent_holds_a_second_call_until_the_first_is_done(servers: list[LocalServer],
                                                                    config_file: Path) -> None:
    servers[0].state.scenario = "slow_first_byte"
    servers[0].state.options["delay"] = 0.4
    write(config_file, {"p": member(servers[0], max_concurrent=1)})
    client = Client()
    answers: list[str] = []
    threads = [threading.Thread(target=lambda: answers.append(ask(client, "p").text)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
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


def test_a_rate_limit_on_a_route_is_refused_and_pointed_at_the_members(servers: list[LocalServer],
                                                                        config_file: Path) -> None:
    from llmswitch.errors import InvalidOptionError

    write(config_file, {"a": member(servers[0]), "r": {"route": "pool", "members": ["a"], "rpm": 10}})
    with pytest.raises(InvalidOptionError) as caught:
        Client().resolve("r")
    assert "move rpm to the member profiles (a)" in (caught.value.remedy or "")


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
