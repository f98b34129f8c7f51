"""Route profiles (fallback, pool, split) against OpenAI protocol servers with scripted faults over real
sockets: who answers, what is retried or passed over, how the choice is spread, and the route's validation."""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from llmswitch.client import AsyncClient, Client
from llmswitch.errors import ConfigError, InvalidOptionError
from llmswitch.ledger import Ledger
from llmswitch.router import strategies
from llmswitch.router.resolved import ResolvedRoute
from tests.helpers import run_cli
from tests.servers.http import LocalServer, refused_port

FAST = {"backoff_base_s": 0.01, "backoff_max_s": 0.02}


pytestmark = pytest.mark.usefixtures("fresh_strategies")


def member(url: str, **values: Any) -> dict[str, Any]:
    return {"backend": "openai", "base_url": f"{url}/v1", "model": "test-model", "api_key": "sk-test", **FAST,
            **values}


def write(config_file: Path, profiles: dict[str, dict[str, Any]]) -> None:
    config_file.write_text(tomli_w.dumps({"profiles": profiles}))


def three(servers: list[LocalServer], route: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {"a": member(servers[0].url), "b": member(servers[1].url), "c": member(servers[2].url), "r": route}


def ask(name: str = "r", client: Client | None = None) -> Any:
    resolved = (client or Client()).resolve(name)
    return resolved.complete(resolved.request("hello"))


def tried(response: Any) -> list[tuple[str, str]]:
    return [(attempt.member, attempt.outcome) for attempt in response.attempts]


# ---- fallback ------------------------------------------------------------------------------------------------


def test_a_dead_port_first_in_a_chain_hands_over_at_once(servers: list[LocalServer], config_file: Path) -> None:
    write(config_file, {"dead": member(f"http://127.0.0.1:{refused_port()}"), "live": member(servers[0].url),
                        "r": {"route": "fallback", "members": ["dead", "live"]}})
    client = Client()
    heard: list[Any] = []
    client.observers.append(heard.append)
    response = ask(client=client)
    assert response.text == "answer from a"
    assert tried(response) == [("dead", "unreachable"), ("live", "ok")]  # a refused connection is not retried
    assert [event.message for event in heard if event.kind == "fallback"] == ["dead: unreachable; answering with live"]


def test_a_401_on_the_first_member_moves_on_without_a_retry(servers: list[LocalServer], config_file: Path) -> None:
    servers[0].state.scenario = "auth"
    write(config_file, three(servers, {"route": "fallback", "members": ["a", "b"]}))
    response = ask()
    assert response.text == "answer from b"
    assert tried(response) == [("a", "auth"), ("b", "ok")]
    assert len(servers[0].state.requests) == 1


def test_a_fallback_retries_its_first_choice_before_moving_on(servers: list[LocalServer], config_file: Path) -> None:
    servers[0].state.scenario = "unavailable"
    servers[0].state.options["unavailable_retry_after"] = "0"
    write(config_file, three(servers, {"route": "fallback", "members": ["a", "b"], "max_retries": 1}))
    response = ask()
    assert tried(response) == [("a", "bad_response"), ("a", "bad_response"), ("b", "ok")]


def test_a_stream_cut_after_two_tokens_keeps_the_text_and_is_not_replayed(servers: list[LocalServer],
                                                                          config_file: Path) -> None:
    servers[0].state.scenario = "cut"
    servers[0].state.options.pop("answer")
    write(config_file, three(servers, {"route": "fallback", "members": ["a", "b"]}))
    client = Client()
    heard: list[Any] = []
    client.observers.append(heard.append)
    resolved = client.resolve("r")
    result = resolved.stream(resolved.request("hello"))
    list(result)
    assert result.text.startswith("w0 w1 ") and result.error is not None  # kept, and the failure reported
    assert servers[1].state.requests == []  # never replayed on b
    assert result.resolved.name == "a"
    assert any("not asked again" in event.message for event in heard)


def test_replay_after_text_is_an_opt_in(servers: list[LocalServer], config_file: Path) -> None:
    servers[0].state.scenario = "cut"
    write(config_file, three(servers, {"route": "fallback", "members": ["a", "b"], "replay_after_text": True}))
    resolved = Client().resolve("r")
    result = resolved.stream(resolved.request("hello"))
    list(result)
    assert result.error is None and result.text == "answer from b"
    assert result.resolved.name == "b"


def test_the_deadline_covers_every_fallback(servers: list[LocalServer], config_file: Path) -> None:
    for server in servers[:2]:
        server.state.scenario = "slow_first_byte"
        server.state.options["delay"] = 3.0
    write(config_file, three(servers, {"route": "fallback", "members": ["a", "b"], "timeout_total": 0.6}))
    resolved = Client().resolve("r")
    result = resolved.stream(resolved.request("hello"))
    list(result)
    assert result.error is not None and "timeout_total = 0.6 s" in str(result.error)
    assert result.latency_s is not None and result.latency_s < 2.5


def test_the_async_api_follows_the_route(servers: list[LocalServer], config_file: Path) -> None:
    servers[0].state.scenario = "auth"
    write(config_file, three(servers, {"route": "fallback", "members": ["a", "b"]}))

    async def main() -> Any:
        async with AsyncClient() as client:
            resolved = client.resolve("r")
            return await resolved.acomplete(resolved.request("hello"))

    response = asyncio.run(main())
    assert response.text == "answer from b" and tried(response) == [("a", "auth"), ("b", "ok")]


# ---- pools and splits ------------------------------------------------------------------------------------------


def test_a_round_robin_pool_spreads_calls_evenly(servers: list[LocalServer], config_file: Path) -> None:
    write(config_file, three(servers, {"route": "pool", "members": ["a", "b", "c"]}))
    client = Client()
    answers = Counter(ask(client=client).text for _ in range(12))
    assert answers == {"answer from a": 4, "answer from b": 4, "answer from c": 4}


def test_a_least_busy_pool_avoids_the_member_with_calls_in_flight(servers: list[LocalServer],
                                                                  config_file: Path) -> None:
    write(config_file, three(servers, {"route": "pool", "strategy": "least-busy", "members": ["a", "b", "c"]}))
    client = Client()
    for _ in range(3):
        assert client.router_state.try_enter("flight:a", 100)
    assert client.router_state.try_enter("flight:b", 100)
    answers = Counter(ask(client=client).text for _ in range(6))
    assert answers == {"answer from c": 6}


def test_a_latency_pool_prefers_the_fastest_member(servers: list[LocalServer], config_file: Path) -> None:
    write(config_file, three(servers, {"route": "pool", "strategy": "latency", "members": ["a", "b", "c"]}))
    for name, seconds in (("a", 0.9), ("b", 0.1), ("c", 0.5)):
        strategies.note_latency(name, seconds)
    route = Client().resolve("r")
    assert isinstance(route, ResolvedRoute)
    assert route.order() == ["b", "c", "a"]


def test_answers_feed_the_latency_strategy(servers: list[LocalServer], config_file: Path) -> None:
    write(config_file, three(servers, {"route": "pool", "strategy": "latency", "members": ["a", "b"]}))
    ask()
    ask()
    assert strategies.mean_latency("a") is not None and strategies.mean_latency("b") is not None


def test_a_cost_pool_prefers_the_cheapest_member(servers: list[LocalServer], config_file: Path) -> None:
    profiles = three(servers, {"route": "pool", "strategy": "cost", "members": ["a", "b", "c"]})
    for name, price in (("a", 5.0), ("b", 0.5), ("c", 2.0)):
        profiles[name].update(price_input_per_mtok=price, price_output_per_mtok=price)
    write(config_file, profiles)
    client = Client()
    answers = Counter(ask(client=client).text for _ in range(4))
    assert answers == {"answer from b": 4}


def test_split_ratios_hold_with_a_fixed_seed(servers: list[LocalServer], config_file: Path) -> None:
    write(config_file, three(servers, {"route": "split", "weights": {"a": 80, "b": 20}}))
    route = Client().resolve("r")
    assert isinstance(route, ResolvedRoute)
    route.rng = random.Random(20261128)
    firsts = Counter(route.order()[0] for _ in range(2000))
    # 80% of 2000 is 1600; three standard deviations of the binomial are 54
    assert 1546 <= firsts["a"] <= 1654 and firsts["a"] + firsts["b"] == 2000
    assert route.order()[1:] in (["b"], ["a"])  # the other member is the fallback


def test_a_split_sends_real_calls_by_weight(servers: list[LocalServer], config_file: Path) -> None:
    write(config_file, three(servers, {"route": "split", "weights": {"a": 3, "b": 1}}))
    route = Client().resolve("r")
    assert isinstance(route, ResolvedRoute)
    route.rng = random.Random(3)
    answers = Counter(route.complete(route.request("hi")).text for _ in range(40))
    assert 22 <= answers["answer from a"] <= 38 and answers["answer from a"] + answers["answer from b"] == 40


def test_a_pool_nested_in_a_fallback(servers: list[LocalServer], config_file: Path) -> None:
    servers[0].state.scenario = servers[1].state.scenario = "auth"
    profiles = three(servers, {"route": "fallback", "members": ["fleet", "c"]})
    profiles["fleet"] = {"route": "pool", "members": ["a", "b"]}
    write(config_file, profiles)
    response = ask()
    assert sorted(tried(response)[:2]) == [("a", "auth"), ("b", "auth")]
    assert tried(response)[2:] == [("c", "ok")]


# ---- cooldowns ----------------------------------------------------------------------------------------------


def test_a_member_that_answers_429_cools_and_the_pool_passes_it_over(servers: list[LocalServer],
                                                                      config_file: Path) -> None:
    servers[0].state.script = ["rate_limit"]
    servers[0].state.options["retry_after"] = "0"
    write(config_file, three(servers, {"route": "pool", "members": ["a", "b"], "cooldown_s": 120}))
    client = Client()
    heard: list[Any] = []
    client.observers.append(heard.append)
    first = ask(client=client)
    assert tried(first) == [("a", "rate_limited"), ("b", "ok")]  # moved on at once: members are equivalent
    assert any(event.kind == "cooldown" and event.member == "a" for event in heard)
    later = [ask(client=client) for _ in range(4)]
    assert all(tried(response) == [("b", "ok")] for response in later)  # a is skipped while it cools
    assert len(servers[0].state.requests) == 1
    assert client.router_state.cooldown_until("a") > 0


def test_a_fallback_moves_on_from_a_member_it_cooled_instead_of_waiting_on_it(servers: list[LocalServer],
                                                                              config_file: Path) -> None:
    servers[0].state.scenario = "rate_limit"
    servers[0].state.options["retry_after"] = "5"
    write(config_file, three(servers, {"route": "fallback", "members": ["a", "b"]}))
    started = time.monotonic()
    outcome = run_cli("chat", "-p", "r", "--json", "hello")
    assert outcome.exit_code == 0, outcome.stderr
    assert time.monotonic() - started < 3.0  # not the 5 s Retry-After, twice, on a member that is cooling
    assert json.loads(outcome.stdout)["text"] == "answer from b"
    assert "a cools down for 30 s" in outcome.stderr and "a: 429; answering with b" in outcome.stderr
    assert "retrying" not in outcome.stderr
    assert len(servers[0].state.requests) == 1


def test_a_fallback_waits_on_the_member_it_cooled_only_when_no_other_is_ready(servers: list[LocalServer],
                                                                             config_file: Path) -> None:
    servers[0].state.script = ["rate_limit", "ok"]
    servers[0].state.options["retry_after"] = "0.3"
    write(config_file, three(servers, {"route": "fallback", "members": ["a", "b"]}))
    client = Client()
    client.router_state.cool("b", 60)
    response = ask(client=client)
    assert tried(response) == [("a", "rate_limited"), ("a", "ok")]
    first, second = servers[0].state.requests
    assert second.at - first.at >= 0.3
    assert servers[1].state.requests == []


def test_a_fallback_moves_on_once_failures_cool_a_member(servers: list[LocalServer], config_file: Path) -> None:
    servers[0].state.scenario = "server_error"
    write(config_file, three(servers, {"route": "fallback", "members": ["a", "b"], "cooldown_failures": 1}))
    assert tried(ask()) == [("a", "bad_response"), ("b", "ok")]  # cooled by its first failure: no retry on it
    assert len(servers[0].state.requests) == 1


# ---- a member's own retry keys under a route ------------------------------------------------------------------


def test_a_members_own_max_retries_applies_to_its_attempts_under_a_route(servers: list[LocalServer],
                                                                         config_file: Path) -> None:
    servers[0].state.scenario = "unavailable"
    servers[0].state.options["unavailable_retry_after"] = "0"
    profiles = three(servers, {"route": "fallback", "members": ["a", "b"]})  # the route keeps the default, 2
    profiles["a"]["max_retries"] = 1
    write(config_file, profiles)
    assert tried(ask()) == [("a", "bad_response"), ("a", "bad_response"), ("b", "ok")]
    servers[0].state.requests.clear()
    profiles["r"]["max_retries"] = 0  # where the member sets none, the route's value applies
    del profiles["a"]["max_retries"]
    write(config_file, profiles)
    assert tried(ask()) == [("a", "bad_response"), ("b", "ok")]


def test_max_retries_given_with_o_on_a_route_is_above_every_members_own(servers: list[LocalServer],
                                                                       config_file: Path) -> None:
    servers[0].state.scenario = "unavailable"
    servers[0].state.options["unavailable_retry_after"] = "0"
    profiles = three(servers, {"route": "fallback", "members": ["a", "b"]})
    profiles["a"]["max_retries"] = 2
    write(config_file, profiles)
    outcome = run_cli("chat", "-p", "r", "-o", "max_retries", "0", "--json", "hello")
    assert outcome.exit_code == 0, outcome.stderr
    assert [(a["member"], a["outcome"]) for a in json.loads(outcome.stdout)["attempts"]] == [
        ("a", "bad_response"), ("b", "ok")]
    assert len(servers[0].state.requests) == 1


def test_a_nested_routes_retry_keys_apply_to_its_members_and_a_members_cooldown_is_its_own(
        servers: list[LocalServer], config_file: Path) -> None:
    servers[0].state.scenario = "unavailable"
    servers[0].state.options["unavailable_retry_after"] = "0"
    servers[1].state.scenario = "rate_limit"
    servers[1].state.options["retry_after"] = "0"
    profiles = three(servers, {"route": "fallback", "members": ["inner", "b", "c"], "max_retries": 2,
                               "cooldown_s": 120})
    profiles["inner"] = {"route": "fallback", "members": ["a"], "max_retries": 0}
    profiles["b"]["cooldown_s"] = 5
    write(config_file, profiles)
    client = Client()
    response = ask(client=client)
    assert tried(response) == [("a", "bad_response"), ("b", "rate_limited"), ("c", "ok")]
    assert 0 < client.router_state.cooldown_until("b") - time.time() <= 5.5  # b's 5 s, not the route's 120


def test_repeated_failures_cool_a_member(servers: list[LocalServer], config_file: Path) -> None:
    servers[0].state.scenario = "server_error"
    write(config_file, three(servers, {"route": "fallback", "members": ["a", "b"], "max_retries": 0,
                                       "cooldown_failures": 2, "cooldown_s": 60}))
    client = Client()
    ask(client=client)
    ask(client=client)  # the second failure within the window cools a
    assert client.router_state.cooldown_until("a") > 0
    assert tried(ask(client=client)) == [("b", "ok")]
    assert len(servers[0].state.requests) == 2


# ---- validation ----------------------------------------------------------------------------------------------


def test_a_cycle_is_named_and_exits_2(config_file: Path) -> None:
    write(config_file, {"x": {"route": "fallback", "members": ["y"]}, "y": {"route": "pool", "members": ["x"]}})
    outcome = run_cli("chat", "-p", "x", "hi")
    assert outcome.exit_code == 2
    assert "x -> y -> x" in outcome.stderr


def test_an_unknown_member_gets_close_names(config_file: Path) -> None:
    write(config_file, {"claude2": member("http://127.0.0.1:9"), "r": {"route": "fallback", "members": ["claud2"]}})
    with pytest.raises(ConfigError) as caught:
        Client().resolve("r")
    assert f"route 'r' ({config_file}) names 'claud2', which is not a profile" in str(caught.value)
    assert "'claude2'" in (caught.value.remedy or "")


def test_a_member_with_no_close_name_says_how_to_fix_the_route_in_every_command(config_file: Path) -> None:
    """A new user's route naming a profile they never added: chat, doctor and cost each say which route names
    what, and the way on (add it, or take it out of the members) as a sentence, not a bare "(... shows them all)"."""
    write(config_file, {"r": {"route": "fallback", "members": ["echo", "ghost"]}})
    chat = run_cli("chat", "-p", "r", "hi")
    assert chat.exit_code == 2
    assert "names 'ghost', which is not a profile" in chat.stderr
    assert ("hint: add a profile named 'ghost', or take it out of the members of 'r'; `llmswitch profiles list` "
            "shows the profiles") in chat.stderr
    doctor = run_cli("doctor", "r", "--offline")
    assert "add a profile named 'ghost', or take it out of the members of 'r'" in doctor.stdout + doctor.stderr
    cost = run_cli("cost", "-p", "r", "hi")
    said = " ".join((cost.stdout + cost.stderr).split())
    assert "add a profile named 'ghost'" in said and "((" not in said and "Traceback" not in said


@pytest.mark.parametrize(("route", "says"), [
    ({"route": "fallback", "members": []}, "has no members"),
    ({"route": "split", "weights": {"a": 0}}, "must be a positive number"),
    ({"route": "split", "weights": {"a": "lots"}}, "must be a positive number"),
    ({"route": "chain", "members": ["a"]}, "must be one of fallback, pool, split"),
    ({"route": "pool", "strategy": "fastest", "members": ["a"]}, "strategy must be one of"),
    ({"route": "pool", "strategy": "fastest", "members": ["a"]}, "hint: round-robin (each call starts one member "
                                                                 "further), least-busy (the fewest calls in flight), "
                                                                 "latency (the fastest lately"),
    ({"route": "pool", "strategy": "leastbusy", "members": ["a"]}, "hint: did you mean 'least-busy'?"),
    ({"route": "fallbak", "members": ["a"]}, "hint: did you mean 'fallback'?"),
    ({"route": "fallback", "members": ["a"], "backend": "openai"}, "not both"),
    ({"route": "fallback", "members": ["a"], "max_retrys": 1}, "did you mean 'max_retries'"),
    # non-finite weights, or a total a float cannot hold, would fail at call time as a plugin's "bug"
    ({"route": "split", "weights": {"a": float("inf")}}, "the weight of 'a' must be a positive number, not inf"),
    ({"route": "split", "weights": {"a": float("nan")}}, "the weight of 'a' must be a positive number, not nan"),
    ({"route": "split", "weights": {"a": 1e308, "c": 1e308}}, "the weights add up to more than a number can hold"),
    ({"route": "fallback", "members": ["a"], "weights": {"a": 1}}, "weights apply to a split only (this route is "
                                                                     "a fallback)"),
    ({"route": "pool", "members": ["a"], "weights": {"a": 1}}, "weights apply to a split only"),
    ({"route": "fallback", "members": ["a", "a"]}, "members lists 'a' more than once"),
    ({"route": "pool", "memebrs": ["a"]}, "unknown key 'memebrs' for a route\n  hint: did you mean 'members'?"),
])
def test_a_malformed_route_is_refused_with_a_remedy(config_file: Path, route: dict[str, Any], says: str) -> None:
    write(config_file, {"a": member("http://127.0.0.1:9"), "r": route})
    outcome = run_cli("chat", "-p", "r", "hi")
    assert outcome.exit_code == 2, outcome
    assert says in outcome.stderr


@pytest.mark.parametrize(("key", "value", "says", "unset"), [
    ("max_retries", -1, "must be at least 0, not -1", "the default, 2"),
    ("backoff_base_s", -1, "must be at least 0, not -1.0", "the default, 0.5"),
    ("backoff_max_s", -0.5, "must be at least 0, not -0.5", "the default, 8"),
    ("retry_after_max_s", -3, "must be at least 0, not -3.0", "the default, 60"),
    ("cooldown_s", -5, "must be at least 0, not -5.0", "the default, 30"),
    ("cooldown_failures", 0, "must be at least 1, not 0", "the default, 3"),
    ("cooldown_window_s", 0, "must be more than 0, not 0.0", "the default, 60"),
    ("cooldown_window_s", -2, "must be more than 0, not -2.0", "the default, 60"),
    ("timeout_total", 0, "must be more than 0, not 0.0", "no deadline"),
    ("timeout_total", -1, "must be more than 0, not -1.0", "no deadline"),
])
def test_a_retry_key_out_of_range_is_refused_naming_profile_key_and_file(
        config_file: Path, key: str, value: float, says: str, unset: str) -> None:
    write(config_file, {"e": {"backend": "echo", key: value}, "a": {"backend": "echo"},
                        "r": {"route": "fallback", "members": ["a"], key: value}})
    for name, kind in (("e", "profile"), ("r", "route")):
        outcome = run_cli("chat", "-p", name, "hi")
        assert outcome.exit_code == 2, outcome  # a configuration error, found before anything is sent
        assert outcome.stdout == ""
        assert f"{kind} '{name}' ({config_file}): '{key}' {says}" in outcome.stderr
        assert f"remove it for {unset}" in outcome.stderr
    outcome = run_cli("chat", "-p", "a", "-o", key, str(value), "hi")
    assert outcome.exit_code == 2, outcome
    assert f"'{key}' {says}" in outcome.stderr


def test_the_defaults_a_range_error_names_are_the_router_defaults() -> None:
    from llmswitch.profiles import ROUTER_KEYS
    from llmswitch.router.policy import RetryPolicy

    for name, field in RetryPolicy.__dataclass_fields__.items():
        if isinstance(field.default, (int, float)) and not isinstance(field.default, bool):
            assert ROUTER_KEYS[name].absent == f"the default, {field.default:g}"


# ---- everywhere a profile works -------------------------------------------------------------------------------


def test_chat_json_names_the_route_the_member_and_every_attempt(servers: list[LocalServer],
                                                                config_file: Path) -> None:
    servers[0].state.scenario = "auth"
    write(config_file, three(servers, {"route": "fallback", "members": ["a", "b"]}))
    outcome = run_cli("chat", "-p", "r", "--json", "hi")
    assert outcome.exit_code == 0, outcome
    payload = json.loads(outcome.stdout)
    assert (payload["profile"], payload["member"], payload["text"]) == ("r", "b", "answer from b")
    assert [(a["member"], a["outcome"]) for a in payload["attempts"]] == [("a", "auth"), ("b", "ok")]
    assert "a: 401; answering with b" in outcome.stderr


def test_model_on_a_route_applies_to_every_member(servers: list[LocalServer], config_file: Path) -> None:
    write(config_file, three(servers, {"route": "pool", "members": ["a", "b"]}))
    route = Client().resolve("r", model="gpt-4o-mini")
    assert [leaf.target.model for leaf in route.leaves()] == ["gpt-4o-mini", "gpt-4o-mini"]


def test_an_option_a_member_cannot_take_is_refused_naming_the_member(servers: list[LocalServer],
                                                                     config_file: Path) -> None:
    profiles = three(servers, {"route": "fallback", "members": ["a", "e"]})
    profiles["e"] = {"backend": "echo"}
    write(config_file, profiles)
    with pytest.raises(InvalidOptionError) as caught:
        Client().resolve("r", settings={"extra_body": {"x": 1}})
    assert "profile 'e'" in str(caught.value)


def test_the_repl_switches_to_a_route_and_answers_through_it(servers: list[LocalServer], config_file: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from llmswitch.cli.chat import repl_command
    from llmswitch.conversation import Conversation

    servers[0].state.scenario = "auth"
    write(config_file, three(servers, {"route": "fallback", "members": ["a", "b"]}))
    conversation = Conversation(Client(), "c")
    repl_command(conversation, "/profile r")
    assert "now answering with r: fallback, a, b" in capsys.readouterr().err
    turn = conversation.stream("hello")
    list(turn)
    assert turn.result.text == "answer from b" and conversation.messages[-1].content == "answer from b"


def test_doctor_calls_a_route_healthy_when_enough_members_are(servers: list[LocalServer], config_file: Path) -> None:
    dead = member(f"http://127.0.0.1:{refused_port()}")
    profiles = {"a": member(servers[0].url), "dead": dead, "dead2": dict(dead),
                "chain": {"route": "fallback", "members": ["dead", "a"]},
                "fleet": {"route": "pool", "members": ["dead", "dead2", "a"]}}
    write(config_file, profiles)
    outcome = run_cli("doctor", "--json", "chain", "fleet")
    rows = {row["profile"]: row for row in json.loads(outcome.stdout)["profiles"]}
    assert rows["chain"]["status"] == "ok"  # a fallback needs one member
    assert rows["fleet"]["status"] == "degraded"  # a pool needs half of its members: 1 of 3 is not enough
    members = {check["name"]: check["status"] for check in rows["chain"]["checks"]}
    assert members == {"route": "pass", "member dead": "fail", "member a": "pass"}
    assert rows["chain"]["backend"] == "fallback"


def test_doctor_prints_a_truthful_route_row_and_every_member_under_it(servers: list[LocalServer], config_file: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROUTE_TEST_ABSENT_KEY", raising=False)
    nokey = {**member(servers[0].url, price_input_per_mtok=1.0, price_output_per_mtok=2.0),
             "api_key_env": "ROUTE_TEST_ABSENT_KEY"}
    del nokey["api_key"]
    write(config_file, {"e": {"backend": "echo"}, "e2": {"backend": "echo"}, "nokey": nokey,
                        "a": member(servers[0].url, price_input_per_mtok=1.0, price_output_per_mtok=2.0),
                        "mixed": {"route": "fallback", "members": ["nokey", "e"], "budget_usd_per_day": 2.0},
                        "fleet": {"route": "pool", "members": ["e", "e2"]},
                        "nested": {"route": "fallback", "members": ["fleet", "a"]}})
    outcome = run_cli("doctor", "mixed", "nested")
    lines = [line.strip() for line in outcome.stdout.splitlines()]

    def row(start: str) -> list[str]:  # the first row that starts so
        return next(line for line in lines if line.startswith(start + " ")).split()

    mixed = " ".join(row("mixed"))
    assert "fallback / nokey, e route missing (nokey)" in mixed  # the plugin is "route", the key the worst member's
    assert "$0–$0.00150" in mixed and mixed.endswith("$0/$2.00 day")  # the members' prices, the route's budget
    assert row("└ nokey")[2:4] == ["✗", "down"] and "missing (ROUTE_TEST_ABSENT_KEY)" in " ".join(row("└ nokey"))
    assert row("└ e")[2:4] == ["✓", "ok"]  # a healthy member has its row too
    table = [line for line in outcome.stdout.splitlines() if line.strip()][2:9]  # under the header and its rule
    names = [re.match(r"\s*(└ )?\S+", line).group(0) for line in table]  # type: ignore[union-attr]
    assert names == [" mixed", "   └ nokey", "   └ e", " nested", "   └ fleet", "     └ e", "     └ e2"]
    assert "see members" in " ".join(row("nested")) and "$0–$0.00150" in " ".join(row("nested"))
    as_json = {row["profile"]: row for row in json.loads(run_cli("doctor", "--json", "mixed", "nested").stdout)[
        "profiles"]}
    assert as_json["mixed"]["budgets"] == [{"period": "day", "budget_usd": 2.0, "spent_usd": 0.0}]
    assert as_json["mixed"]["standard_request_usd_range"] == [0.0, 0.0015]
    assert [(m["profile"], m["status"], m["key"]["present"] if m["key"] else None)
            for m in as_json["mixed"]["members"]] == [("nokey", "down", False), ("e", "ok", None)]
    assert [m["profile"] for m in as_json["nested"]["members"][0]["members"]] == ["e", "e2"]


def test_profiles_list_and_show_describe_a_route(servers: list[LocalServer], config_file: Path) -> None:
    write(config_file, three(servers, {"route": "pool", "strategy": "cost", "members": ["a", "b"]}))
    listed = {row["name"]: row for row in json.loads(run_cli("profiles", "list", "--json").stdout)}
    assert listed["r"]["route"] == "pool" and listed["r"]["model"] == "→ a, b"
    shown = json.loads(run_cli("profiles", "show", "r", "--json").stdout)
    assert shown["route"] == "pool" and shown["strategy"] == "cost"
    assert [(m["name"], m["backend"]) for m in shown["members"]] == [("a", "openai"), ("b", "openai")]
    text = run_cli("profiles", "show", "r").stdout
    assert "# member a: openai / test-model" in text and "max_retries = 2" in text


def test_profiles_list_and_show_give_a_splits_shares(servers: list[LocalServer], config_file: Path) -> None:
    write(config_file, three(servers, {"route": "split", "weights": {"a": 80, "b": 20}}) | {
        "thirds": {"route": "split", "weights": {"a": 1, "b": 1, "c": 1}},
        "whole": {"route": "split", "weights": {"c": 5}}})
    listed = run_cli("profiles", "list")
    assert "split route  → a 80%, b 20%" in listed.stdout
    assert "→ a 33.3%, b 33.3%, c 33.3%" in listed.stdout and "→ c 100%" in listed.stdout
    as_json = {row["name"]: row for row in json.loads(run_cli("profiles", "list", "--json").stdout)}
    assert as_json["r"]["model"] == "→ a 80%, b 20%"
    text = run_cli("profiles", "show", "r").stdout
    assert "# member a: openai / test-model, 80% of calls" in text
    assert "# member b: openai / test-model, 20% of calls" in text
    shown = json.loads(run_cli("profiles", "show", "r", "--json").stdout)
    assert [(m["name"], m["weight"]) for m in shown["members"]] == [("a", 80.0), ("b", 20.0)]


def test_o_on_a_route_applies_to_every_member_or_names_the_one_that_refuses(servers: list[LocalServer],
                                                                            config_file: Path) -> None:
    profiles = three(servers, {"route": "fallback", "members": ["a", "b"]})
    profiles["mixed"] = {"route": "fallback", "members": ["a", "e"]}
    profiles["e"] = {"backend": "echo"}
    write(config_file, profiles)
    outcome = run_cli("chat", "-p", "r", "-o", "temperature", "0.5", "-o", "extra_body", '{"x": 1}', "--json", "hi")
    assert outcome.exit_code == 0, outcome
    [sent] = servers[0].state.requests
    assert sent.body["x"] == 1 and sent.body["temperature"] == 0.5
    refused = run_cli("chat", "-p", "mixed", "-o", "extra_body", '{"x": 1}', "hi")
    assert refused.exit_code == 2
    assert "-o extra_body: not an option of member 'e' (backend echo) of route 'mixed'" in refused.stderr


def test_m_on_a_route_says_it_applies_to_every_member(servers: list[LocalServer], config_file: Path) -> None:
    write(config_file, three(servers, {"route": "pool", "members": ["a", "b"]}))
    outcome = run_cli("chat", "-p", "r", "-m", "gpt-4o-mini", "hi")
    assert outcome.exit_code == 0, outcome
    assert "note: -m gpt-4o-mini applies to every member of route 'r'" in outcome.stderr
    assert servers[0].state.requests[0].body["model"] == "gpt-4o-mini"


def test_usage_shows_spend_per_member_and_per_route(servers: list[LocalServer], config_file: Path) -> None:
    servers[0].state.scenario = "auth"
    profiles = three(servers, {"route": "fallback", "members": ["a", "b"]})
    for name in ("a", "b"):
        profiles[name].update(price_input_per_mtok=1000.0, price_output_per_mtok=1000.0)
    write(config_file, profiles)
    assert run_cli("chat", "-p", "r", "hi").exit_code == 0
    assert run_cli("chat", "-p", "b", "hi").exit_code == 0  # b directly, not through the route
    by_member = {row["key"]: row for row in json.loads(run_cli("usage", "--json").stdout)["rows"]}
    assert (by_member["a"]["calls"], by_member["a"]["errors"], by_member["b"]["calls"]) == (1, 1, 2)
    by_route = {row["key"]: row for row in json.loads(run_cli("usage", "--by", "route", "--json").stdout)["rows"]}
    assert (by_route["r"]["calls"], by_route["r"]["errors"], by_route["b"]["calls"]) == (2, 1, 1)
    assert by_route["r"]["cost_usd"] > 0  # the answer, charged once (to b, and counted under the route)
    assert by_route["r"]["cost_usd"] == pytest.approx(by_route["b"]["cost_usd"])


def test_usage_by_route_counts_a_call_under_every_route_it_went_through(servers: list[LocalServer],
                                                                       config_file: Path) -> None:
    priced = {"price_input_per_mtok": 1000.0, "price_output_per_mtok": 1000.0}
    write(config_file, {"dead": member(f"http://127.0.0.1:{refused_port()}"), "a": member(servers[0].url, **priced),
                        "b": member(servers[1].url, **priced),
                        "inner": {"route": "fallback", "members": ["dead", "a"], "cooldown_failures": 10},
                        "outer": {"route": "fallback", "members": ["inner", "b"]}})
    assert run_cli("chat", "-p", "outer", "hi").exit_code == 0  # dead refuses, a answers: both through inner
    assert run_cli("chat", "-p", "inner", "hi").exit_code == 0  # the inner route asked directly
    with Ledger() as ledger:
        rows = [(row.profile, row.outcome, row.route, row.route_path) for row in ledger.entries()]
    assert rows == [("dead", "unreachable", "outer", ("outer", "inner")), ("a", "ok", "outer", ("outer", "inner")),
                    ("dead", "unreachable", "inner", ()), ("a", "ok", "inner", ())]
    usage = json.loads(run_cli("usage", "--by", "route", "--json").stdout)
    by_route = {row["key"]: (row["calls"], row["errors"]) for row in usage["rows"]}
    assert by_route == {"outer": (2, 1), "inner": (4, 2)}  # the inner pool shows its spend through outer too
    cost = {row["key"]: row["cost_usd"] for row in usage["rows"]}
    assert cost["outer"] > 0 and cost["inner"] == pytest.approx(2 * cost["outer"])
    assert usage["total"]["calls"] == 4 and usage["total"]["cost_usd"] == pytest.approx(cost["inner"])  # once each
    text = run_cli("usage", "--by", "route").stdout
    assert [line.split()[:2] for line in text.splitlines() if line.split()[:1] in (["inner"], ["outer"], ["total"])
            ] == [["inner", "4"], ["outer", "2"], ["total", "4"]]


# ---- a conversation too long for a member's context window ---------------------------------------------------


def test_a_context_length_failure_skips_a_smaller_window_and_answers_with_a_larger_one(
    servers: list[LocalServer], config_file: Path,
) -> None:
    servers[0].state.scenario = "context_overflow"  # the provider's context_length_exceeded
    profiles = three(servers, {"route": "fallback", "members": ["a", "b", "c"]})
    profiles["a"]["context_window"], profiles["b"]["context_window"] = 8192, 4096
    profiles["c"]["context_window"] = 32768
    write(config_file, profiles)
    outcome = run_cli("chat", "-p", "r", "--json", "--no-stream", "hi")  # the 400 comes with a whole answer
    assert outcome.exit_code == 0, outcome
    payload = json.loads(outcome.stdout)
    assert (payload["member"], payload["text"]) == ("c", "answer from c"), (payload, outcome.stderr)
    assert [(a["member"], a["outcome"]) for a in payload["attempts"]] == [("a", "context_length"), ("c", "ok")]
    assert "b is passed over: its context window (4,096 tokens) is no larger than a's (8,192)" in outcome.stderr
    assert "a: the conversation is too long for its context window; answering with c" in outcome.stderr
    assert len(servers[0].state.requests) == 1  # never retried on the same member
    assert servers[1].state.requests == []


def test_after_a_context_length_failure_larger_windows_go_first_and_unknown_ones_after(
    servers: list[LocalServer], config_file: Path,
) -> None:
    from llmswitch.router.plan import RouterEvent

    servers[0].state.scenario = "context_overflow"
    profiles = three(servers, {"route": "fallback", "members": ["a", "b", "c"]})
    profiles["a"]["context_window"], profiles["c"]["context_window"] = 8192, 16384  # b's window is not known
    write(config_file, profiles)
    client = Client()
    events: list[RouterEvent] = []
    client.observers.append(events.append)
    response = ask(client=client)
    assert tried(response) == [("a", "context_length"), ("c", "ok")]
    assert not [event for event in events if event.kind == "skip"]  # b is not passed over, only later in line


def test_a_context_length_failure_of_a_member_whose_window_is_unknown_keeps_the_order(
    servers: list[LocalServer], config_file: Path,
) -> None:
    servers[0].state.scenario = "context_overflow"
    profiles = three(servers, {"route": "fallback", "members": ["a", "b", "c"]})
    profiles["b"]["context_window"], profiles["c"]["context_window"] = 4096, 32768
    write(config_file, profiles)
    assert tried(ask()) == [("a", "context_length"), ("b", "ok")]


def test_a_members_context_window_comes_from_its_price_table_or_its_profile(config_file: Path) -> None:
    from llmswitch.router.resolved import context_window

    write(config_file, {"table": {"backend": "openai", "model": "gpt-4o-mini", "api_key": "sk-test"},
                        "own": {"backend": "openai", "model": "gpt-4o-mini", "api_key": "sk-test",
                                "context_window": 8000},
                        "elsewhere": member("http://127.0.0.1:9", model="gpt-4o-mini")})
    client = Client()
    assert context_window(client.resolve("table")) == 128000
    assert context_window(client.resolve("own")) == 8000
    assert context_window(client.resolve("elsewhere")) is None  # another server's model: not OpenAI's table
