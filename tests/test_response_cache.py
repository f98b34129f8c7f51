"""The response cache, the same through the library, ``chat``, and ``serve``: against the OpenAI protocol
server, whose request log says whether the upstream was asked again."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import tomli_w
import tomllib

from llmswitch.client import AsyncClient, Client
from llmswitch.errors import InvalidOptionError
from llmswitch.ledger import Ledger
from llmswitch.response_cache import parse_ttl
from llmswitch.types import TextDelta
from tests.helpers import llmswitch_on_terminal, run_cli
from tests.servers.gateway import RunningGateway, reset_upstream
from tests.servers.http import LocalServer
from tests.servers.openai_server import openai_server


@pytest.fixture(scope="module")
def shared_upstream() -> Iterator[LocalServer]:
    with openai_server() as running:
        yield running


@pytest.fixture
def upstream(shared_upstream: LocalServer) -> LocalServer:
    return reset_upstream(shared_upstream, tokens=12)


def write(config_file: Path, upstream: LocalServer, **cache: Any) -> None:
    profile = {"backend": "openai", "model": "test-model", "base_url": f"{upstream.url}/v1", "timeout": 10.0,
               "price_input_per_mtok": 3.0, "price_output_per_mtok": 15.0, "cache": True, **cache}
    config_file.write_text(tomli_w.dumps({"profiles": {"cached": profile}}))


def asked(upstream: LocalServer) -> int:
    return sum(1 for request in upstream.state.requests if request.path.endswith("/chat/completions"))


def ledger_rows() -> list[Any]:
    with Ledger() as ledger:
        return ledger.entries()


def stream_text(client: Client, prompt: str = "count", **settings: Any) -> tuple[str, Any, list[Any]]:
    resolved = client.resolve("cached")
    result = resolved.stream(resolved.request(prompt, **settings))
    events = list(result)
    return result.text, result, events


def test_a_second_identical_request_is_replayed_as_a_stream_without_asking(
        config_file: Path, upstream: LocalServer) -> None:
    write(config_file, upstream)
    client = Client()
    first_text, first, first_events = stream_text(client)
    second_text, second, second_events = stream_text(client)
    assert asked(upstream) == 1
    assert not first.cached and second.cached
    assert second_text == first_text == "".join(f"w{i} " for i in range(12))
    assert [e.text for e in second_events if type(e) is TextDelta] == \
        [e.text for e in first_events if type(e) is TextDelta]  # the same pieces, replayed as they streamed
    assert second.usage == first.usage and second.finish_reason == "stop"
    whole = client.resolve("cached").complete(client.resolve("cached").request("count"))
    assert whole.text == first_text and asked(upstream) == 1  # the whole-answer path shares the cache


def test_a_hit_costs_nothing_and_says_cached(config_file: Path, upstream: LocalServer) -> None:
    write(config_file, upstream)
    first = run_cli("chat", "-p", "cached", "--json", "count")
    second = run_cli("chat", "-p", "cached", "--json", "count")
    one, two = json.loads(first.stdout), json.loads(second.stdout)
    assert one["text"] == two["text"] and not one["cached"] and two["cached"]
    assert one["cost"]["usd"] > 0 and two["cost"]["usd"] == 0 and two["cost"]["price_source"] == "cached"
    assert [(row.outcome, row.cost_usd) for row in ledger_rows()][1] == ("cached", 0.0)
    shown = run_cli("chat", "-p", "cached", "--usage", "count")
    assert "cost $0 (cached)" in shown.stderr
    usage = json.loads(run_cli("usage", "--json").stdout)
    assert usage["total"]["errors"] == 0  # a hit is not a failure
    assert asked(upstream) == 1


def test_chat_no_cache_asks_again(config_file: Path, upstream: LocalServer) -> None:
    write(config_file, upstream)
    run_cli("chat", "-p", "cached", "count")
    again = run_cli("chat", "-p", "cached", "--no-cache", "--json", "count")
    assert not json.loads(again.stdout)["cached"]
    assert asked(upstream) == 2


def test_temperature_above_zero_is_not_cached_unless_the_profile_says_so(
        config_file: Path, upstream: LocalServer) -> None:
    write(config_file, upstream)
    client = Client()
    for _ in range(2):
        stream_text(client, temperature=0.7)
    assert asked(upstream) == 2
    stream_text(client, temperature=0.0)
    stream_text(client, temperature=0.0)
    assert asked(upstream) == 3
    write(config_file, upstream, cache_temperature=True)
    client = Client()
    stream_text(client, temperature=0.7)
    _, result, _ = stream_text(client, temperature=0.7)
    assert result.cached and asked(upstream) == 4


def test_the_key_covers_the_model_system_and_settings(config_file: Path, upstream: LocalServer) -> None:
    write(config_file, upstream)
    client = Client()
    stream_text(client)
    stream_text(client, max_tokens=50)
    resolved = client.resolve("cached")
    list(resolved.stream(resolved.request("count", system="be terse")))
    other_model = client.resolve("cached", model="gpt-4o-mini")
    list(other_model.stream(other_model.request("count")))
    assert asked(upstream) == 4
    stream_text(client, max_tokens=50)
    assert asked(upstream) == 4


def test_failures_and_expired_answers_are_not_served(config_file: Path, upstream: LocalServer) -> None:
    write(config_file, upstream, cache_ttl="1s")
    upstream.state.scenario = "cut"
    client = Client()
    _, failed, _ = stream_text(client)
    assert failed.error is not None
    upstream.state.scenario = "ok"
    _, fresh, _ = stream_text(client)
    assert not fresh.cached and fresh.error is None  # the cut-off answer was never stored
    time.sleep(1.1)
    _, expired, _ = stream_text(client)
    assert not expired.cached and asked(upstream) == 3


def test_cache_ttl_takes_durations_and_seconds_and_refuses_nonsense_naming_the_profile(config_file: Path) -> None:
    assert parse_ttl("1h") == 3600 and parse_ttl("90s") == 90 and parse_ttl(30) == 30 and parse_ttl("2d") == 172800
    assert parse_ttl("3600") == 3600 and parse_ttl(2.5) == 2.5 and parse_ttl(None) == 86400

    def chat_with(ttl: Any, route: bool = False) -> Any:
        profile: dict[str, Any] = {"backend": "echo", "cache": True, "cache_ttl": ttl}
        profiles = {"e": profile} if not route else {
            "m": {"backend": "echo"}, "e": {"route": "fallback", "members": ["m"], "cache": True, "cache_ttl": ttl}}
        config_file.write_text(tomli_w.dumps({"profiles": profiles}))
        return run_cli("chat", "-p", "e", "--json", "hi")

    for good in (3600, "3600", 1.5, " 2.5 ", "30m"):
        answered = chat_with(good)
        assert answered.exit_code == 0 and json.loads(answered.stdout)["text"] == "hi", (good, answered.stderr)
    for bad, says in (("soon", 'must be a duration such as "90s"'), ("-5m", "must be a duration"),
                      (0, "must be longer than 0, not 0"), ("0s", "must be longer than 0, not '0s'"),
                      (-3, "must be longer than 0"), (True, "must be a duration"), (float("inf"), "must be a duration"),
                      ([60], "must be a duration")):
        refused = chat_with(bad)
        assert refused.exit_code == 2 and "Traceback" not in refused.output, (bad, refused.output)
        assert f"profile 'e' ({config_file}): 'cache_ttl' {says}" in refused.stderr, (bad, refused.stderr)
        assert "or a number of seconds" in refused.stderr
    on_a_route = chat_with("0s", route=True)
    assert on_a_route.exit_code == 2 and f"route 'e' ({config_file}): 'cache_ttl' must be longer than 0" \
        in on_a_route.stderr
    with pytest.raises(InvalidOptionError, match="longer than 0"):
        parse_ttl(0)
    assert run_cli("profiles", "add", "t", "--backend", "echo", "--set", "cache_ttl=120").exit_code == 0
    assert tomllib.loads(config_file.read_text())["profiles"]["t"]["cache_ttl"] == 120  # seconds stay a number
    zero = run_cli("profiles", "add", "z", "--backend", "echo", "--set", "cache_ttl=0")
    assert zero.exit_code == 2 and "profile 'z' (command line): 'cache_ttl' must be longer than 0" in zero.stderr


def test_async_calls_share_the_cache(config_file: Path, upstream: LocalServer) -> None:
    write(config_file, upstream)
    stream_text(Client())

    async def ask() -> tuple[str, bool]:
        async with AsyncClient() as client:
            resolved = client.resolve("cached")
            result = resolved.astream(resolved.request("count"))
            async with result:
                async for _ in result:
                    pass
            whole = await resolved.acomplete(resolved.request("count"))
            return whole.text, result.cached

    text, cached = asyncio.run(ask())
    assert cached and text.startswith("w0 ") and asked(upstream) == 1


def test_complete_and_acomplete_say_whether_the_answer_came_from_the_cache(config_file: Path,
                                                                           upstream: LocalServer) -> None:
    write(config_file, upstream)
    resolved = Client().resolve("cached")
    fresh = resolved.complete(resolved.request("count"))
    replayed = resolved.complete(resolved.request("count"))
    assert (fresh.cached, replayed.cached) == (False, True)
    assert replayed.text == fresh.text and asked(upstream) == 1

    async def ask() -> tuple[bool, bool]:
        async with AsyncClient() as client:
            resolved = client.resolve("cached")
            other = await resolved.acomplete(resolved.request("another"))
            again = await resolved.acomplete(resolved.request("another"))
            return other.cached, again.cached

    assert asyncio.run(ask()) == (False, True) and asked(upstream) == 2
    assert [row.outcome for row in ledger_rows()] == ["ok", "cached", "ok", "cached"]


def test_cache_stats_and_clear(config_file: Path, upstream: LocalServer) -> None:
    write(config_file, upstream)
    client = Client()
    stream_text(client)
    stream_text(client)
    stream_text(client, max_tokens=9)
    stats = json.loads(run_cli("cache", "stats", "--json").stdout)
    assert stats["entries"] == 2 and stats["hits"] == 1 and stats["profiles"]["cached"] == {"entries": 2, "hits": 1}
    cleared = run_cli("cache", "clear")
    assert cleared.exit_code == 0 and "deleted 2 cached answers" in cleared.stderr
    assert json.loads(run_cli("cache", "stats", "--json").stdout)["entries"] == 0
    stream_text(client)
    assert asked(upstream) == 3


def test_cache_stats_counts_in_words_with_the_right_number(config_file: Path, upstream: LocalServer) -> None:
    write(config_file, upstream)
    client = Client()
    stream_text(client)
    one = run_cli("cache", "stats").stdout
    assert "  1 entry (0 expired), 0 hits," in one and "  cached: 1 entry, 0 hits" in one
    stream_text(client)
    stream_text(client, max_tokens=9)
    two = run_cli("cache", "stats").stdout
    assert "  2 entries (0 expired), 1 hit," in two and "  cached: 2 entries, 1 hit" in two
    assert "deleted 2 cached answers" in run_cli("cache", "clear").stderr


def test_the_gateway_serves_hits_from_the_same_cache(config_file: Path, upstream: LocalServer) -> None:
    import httpx2 as httpx
    from prometheus_client.parser import text_string_to_metric_families

    write(config_file, upstream)
    with RunningGateway() as gateway:
        client = openai.OpenAI(base_url=gateway.base_url, api_key="x", max_retries=0)
        answers = [client.chat.completions.create(model="cached", messages=[{"role": "user", "content": "count"}])
                   .choices[0].message.content for _ in range(2)]
        streamed = "".join(chunk.choices[0].delta.content or "" for chunk in client.chat.completions.create(
            model="cached", messages=[{"role": "user", "content": "count"}], stream=True) if chunk.choices)
        exposition = httpx.get(f"{gateway.url}/metrics").text
    assert answers[0] == answers[1] == streamed
    assert asked(upstream) == 1
    found = {(s.name, tuple(sorted(s.labels.items()))): s.value
             for family in text_string_to_metric_families(exposition) for s in family.samples}
    assert found[("llmswitch_cache_hits_total", (("profile", "cached"),))] == 2
    assert found[("llmswitch_cache_misses_total", (("profile", "cached"),))] == 1
    assert [row.outcome for row in ledger_rows()] == ["ok", "cached", "cached"]


def test_a_corrupt_cache_file_is_a_sentence_and_never_costs_the_answer(config_file: Path,
                                                                         upstream: LocalServer) -> None:
    from llmswitch.config import data_dir
    from llmswitch.store.responses import FILE_NAME

    write(config_file, upstream)
    path = data_dir() / FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"these bytes are not a SQLite database" * 200)
    answered = run_cli("chat", "-p", "cached", "count")
    assert answered.exit_code == 0 and answered.stdout.startswith("w0 w1"), answered
    stats = run_cli("cache", "stats")
    assert stats.exit_code != 0 and "Traceback" not in stats.output
    assert f"the response cache at {path} is corrupt" in stats.stderr
    assert "start an empty cache" in stats.stderr


def spend_the_budget(profile: str = "cached") -> None:
    from llmswitch.ledger import LedgerEntry

    with Ledger() as ledger:
        ledger.append(LedgerEntry(profile, "openai", "test-model", 1, 1, 1.0, 0.1))


def test_chat_over_budget_is_still_served_a_hit_but_nothing_new(config_file: Path, upstream: LocalServer) -> None:
    write(config_file, upstream, budget_usd_per_day=1.0)
    first = json.loads(run_cli("chat", "-p", "cached", "--json", "count").stdout)
    spend_the_budget()
    hit = run_cli("chat", "-p", "cached", "--json", "count")
    assert hit.exit_code == 0, hit.stderr
    assert json.loads(hit.stdout)["text"] == first["text"] and json.loads(hit.stdout)["cached"]
    refused = run_cli("chat", "-p", "cached", "something else")
    assert refused.exit_code != 0 and "daily budget" in refused.stderr
    missed = run_cli("chat", "-p", "cached", "--no-cache", "count")  # not from the cache: the budget holds
    assert missed.exit_code != 0 and "daily budget" in missed.stderr
    assert asked(upstream) == 1


def test_the_library_and_a_route_over_budget_are_served_a_hit(config_file: Path, upstream: LocalServer) -> None:
    write(config_file, upstream, budget_usd_per_day=1.0)
    client = AsyncClient()
    resolved = client.resolve("cached")
    request = resolved.request("count")
    assert not resolved.answers_from_cache(request)
    resolved.check_before_sending(request)  # nothing spent yet
    text, _result, _events = stream_text(Client())
    spend_the_budget()
    assert resolved.answers_from_cache(request)
    resolved.check_before_sending(request)  # held: no refusal, whatever the budget

    async def ask() -> str:
        from llmswitch.conversation import Conversation

        conversation = Conversation(client, "cached")
        turn = await conversation.astream("count")
        async with turn:
            async for _event in turn:
                pass
        return turn.result.text

    assert asyncio.run(ask()) == text
    assert asked(upstream) == 1


def test_the_gateway_serves_a_hit_to_a_profile_over_budget(config_file: Path, upstream: LocalServer) -> None:
    import anthropic

    write(config_file, upstream, budget_usd_per_day=1.0)
    with RunningGateway() as gateway:
        client = openai.OpenAI(base_url=gateway.base_url, api_key="x", max_retries=0)
        ask = {"model": "cached", "messages": [{"role": "user", "content": "count"}]}
        first = client.chat.completions.create(**ask).choices[0].message.content  # type: ignore[call-overload]
        spend_the_budget()
        again = client.chat.completions.create(**ask).choices[0].message.content  # type: ignore[call-overload]
        streamed = "".join(chunk.choices[0].delta.content or "" for chunk in client.chat.completions.create(
            **ask, stream=True) if chunk.choices)  # type: ignore[call-overload]
        assert first == again == streamed
        with pytest.raises(openai.RateLimitError, match="daily budget"):
            client.chat.completions.create(model="cached", messages=[{"role": "user", "content": "new"}])
        with pytest.raises(anthropic.RateLimitError):
            anthropic.Anthropic(base_url=gateway.url, api_key="x", max_retries=0).messages.create(
                model="cached", max_tokens=30, messages=[{"role": "user", "content": "new"}])
    assert asked(upstream) == 1


def test_chat_no_cache_holds_after_profile_in_the_repl(config_file: Path, upstream: LocalServer) -> None:
    """Through a pseudo-terminal, as a person types: `--no-cache` still holds for the profile `/profile` picks."""
    profile = {"backend": "openai", "model": "test-model", "base_url": f"{upstream.url}/v1", "timeout": 10.0,
               "cache": True}
    config_file.write_text(tomli_w.dumps({"profiles": {"cached": profile, "other": {**profile,
                                                                                    "system": "other"}}}))
    assert run_cli("chat", "-p", "other", "count").exit_code == 0  # 'other' now holds the answer to "count"
    assert asked(upstream) == 1
    code, output = llmswitch_on_terminal("chat", "-p", "cached", "--no-cache", "--no-history",
                                         lines=(b"/profile other\n", b"count\n", b"/exit\n"))
    assert code == 0, output.decode(errors="replace")
    assert b"now answering with other" in output and b"w11" in output
    assert asked(upstream) == 2  # asked again: not replayed from the cache


def test_profiles_that_differ_in_a_backend_option_never_share_answers(config_file: Path) -> None:
    same = {"backend": "echo", "model": "same", "cache": True}
    config_file.write_text(tomli_w.dumps({"profiles": {
        "p1": {**same, "prefix": "ONE: "}, "p2": {**same, "prefix": "TWO: "},
        "p1-again": {**same, "prefix": "ONE: "}}}))
    assert run_cli("chat", "-p", "p1", "question").stdout.strip() == "ONE: question"
    second = json.loads(run_cli("chat", "-p", "p2", "--json", "question").stdout)
    assert (second["text"], second["cached"]) == ("TWO: question", False)
    shared = json.loads(run_cli("chat", "-p", "p1-again", "--json", "question").stdout)
    assert (shared["text"], shared["cached"]) == ("ONE: question", True)  # the same model under another name
    stats = json.loads(run_cli("cache", "stats", "--json").stdout)
    assert stats["profiles"] == {"p1": {"entries": 1, "hits": 1}, "p2": {"entries": 1, "hits": 0}}
    assert "deleted 1 cached answer" in run_cli("cache", "clear", "-p", "p2").stderr
    assert json.loads(run_cli("chat", "-p", "p1", "--json", "question").stdout)["cached"]


def test_the_key_covers_headers_but_never_credentials_or_the_timeout(config_file: Path,
                                                                      upstream: LocalServer) -> None:
    base = {"backend": "openai", "model": "test-model", "base_url": f"{upstream.url}/v1", "cache": True,
            "api_key": "sk-first-key-0000000000001234", "headers": {"X-Variant": "a", "Authorization": "Bearer t1"}}
    config_file.write_text(tomli_w.dumps({"profiles": {
        "a": base,
        "a-rotated": {**base, "api_key": "sk-second-key-000000000005678", "timeout": 99.0,
                      "headers": {"x-variant": "a", "Authorization": "Bearer t2"}},
        "b": {**base, "headers": {"X-Variant": "b", "Authorization": "Bearer t1"}}}}))
    client = Client()
    for name in ("a", "a-rotated", "b"):
        resolved = client.resolve(name)
        list(resolved.stream(resolved.request("count")))
    assert asked(upstream) == 2  # a-rotated was a hit; b, with another variant header, was asked
    identity = json.dumps(client.resolve("a").cache_identity())
    assert "sk-first" not in identity and "Bearer" not in identity and "X-Variant".lower() in identity


def test_a_routes_key_covers_what_its_members_are(config_file: Path, upstream: LocalServer) -> None:
    member = {"backend": "openai", "model": "test-model", "base_url": f"{upstream.url}/v1"}
    profiles: dict[str, Any] = {"m": member, "r": {"route": "fallback", "members": ["m"], "cache": True}}
    config_file.write_text(tomli_w.dumps({"profiles": profiles}))
    for _ in range(2):
        assert run_cli("chat", "-p", "r", "count").exit_code == 0
    assert asked(upstream) == 1
    profiles["m"] = {**member, "system": "answer in French"}  # the member now answers another question
    config_file.write_text(tomli_w.dumps({"profiles": profiles}))
    assert not json.loads(run_cli("chat", "-p", "r", "--json", "count").stdout)["cached"]
    profiles["m"] = {**member, "system": "answer in French", "temperature": 0.0}
    config_file.write_text(tomli_w.dumps({"profiles": profiles}))
    run_cli("chat", "-p", "r", "count")
    assert asked(upstream) == 3


def test_batch_run_again_is_answered_from_the_cache_and_says_so(config_file: Path, upstream: LocalServer,
                                                                 tmp_path: Path) -> None:
    write(config_file, upstream)
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": n, "prompt": f"count {n}"}) + "\n" for n in range(3)))
    output = tmp_path / "out.jsonl"
    first = run_cli("batch", str(source), "-p", "cached", "-o", str(output))
    assert first.exit_code == 0, first.stderr
    assert [json.loads(line)["cached"] for line in output.read_text().splitlines()] == [False] * 3
    assert "from the response cache" not in first.stderr
    assert asked(upstream) == 3
    again = run_cli("batch", str(source), "-p", "cached", "-o", str(output), "--restart")
    assert again.exit_code == 0, again.stderr
    assert asked(upstream) == 3  # the upstream was asked nothing the second time
    records = sorted((json.loads(line) for line in output.read_text().splitlines()), key=lambda r: r["id"])
    assert [(r["cached"], r["cost"]["usd"], r["text"].startswith("w0 ")) for r in records] == [(True, 0, True)] * 3
    assert "3 from the response cache" in again.stderr and "$0" in again.stderr
    rows = ledger_rows()
    assert [(row.outcome, row.cost_usd) for row in rows[3:]] == [("cached", 0.0)] * 3
    assert all(row.outcome == "ok" and row.cost_usd > 0 for row in rows[:3])


def test_chat_on_a_terminal_says_an_answer_came_from_the_cache_and_a_pipe_gets_only_the_answer(
        config_file: Path) -> None:
    from llmswitch.cli.chat import CACHED_NOTE

    config_file.write_text(tomli_w.dumps({"profiles": {"e": {"backend": "echo", "cache": True}}}))
    code, first = llmswitch_on_terminal("chat", "-p", "e", "hello cache")
    assert code == 0 and b"hello cache" in first and CACHED_NOTE.encode() not in first
    code, second = llmswitch_on_terminal("chat", "-p", "e", "hello cache")
    assert code == 0 and b"hello cache" in second and CACHED_NOTE.encode() in second
    piped = run_cli("chat", "-p", "e", "hello cache")
    assert piped.stdout == "hello cache\n" and CACHED_NOTE not in piped.stderr
    code, repl = llmswitch_on_terminal("chat", "-p", "e", "--no-history",
                                       lines=(b"hello cache\n", b"/exit\n"))
    assert code == 0 and repl.count(CACHED_NOTE.encode()) == 1


def test_an_unset_temperature_is_cached_and_profiles_show_says_the_rule(config_file: Path,
                                                                          upstream: LocalServer) -> None:
    """The rule: with cache = true, a request that sets no temperature is cached (the provider samples at its
    default, and the first answer is the one kept); one that sets a temperature above 0 is not, unless
    cache_temperature = true. A route's member that sets its own temperature counts as setting it."""
    member = {"backend": "openai", "model": "test-model", "base_url": f"{upstream.url}/v1"}
    config_file.write_text(tomli_w.dumps({"profiles": {
        "unset": {**member, "cache": True},
        "warm": {**member, "cache": True, "temperature": 0.7},
        "warm-member": {**member, "temperature": 0.7},
        "route": {"route": "fallback", "members": ["warm-member"], "cache": True}}}))
    client = Client()
    for name in ("unset", "unset", "warm", "warm", "route", "route"):
        resolved = client.resolve(name)
        list(resolved.stream(resolved.request("count")))
    assert asked(upstream) == 5  # only the second "unset" was a hit
    resolved = client.resolve("warm")
    list(resolved.stream(resolved.request("count", temperature=0)))
    hit = resolved.stream(resolved.request("count", temperature=0))
    list(hit)
    assert hit.cached and asked(upstream) == 6  # temperature 0 set on the call is cached on "warm" too
    shown = run_cli("profiles", "show", "unset").stdout
    assert "# cache: on, answers kept 1d, for requests with temperature 0 or unset (unset means the provider's " \
           "default, which may sample: the first answer is the one replayed)" in shown
    assert "not at this profile's temperature 0.7" in run_cli("profiles", "show", "warm").stdout
    assert "# cache: on, answers kept 1d, but not while a member samples at temperature 0.7" in \
        run_cli("profiles", "show", "route").stdout


def test_profiles_show_json_of_a_route_carries_the_cache_rule_as_a_plain_profiles_does(config_file: Path) -> None:
    """`profiles show NAME --json` of a route has the settings (cache, cache_ttl, cache_temperature... with their
    type, default, value in effect and origin) and the notes (the cache rule) in the shape of a plain profile's."""
    config_file.write_text(tomli_w.dumps({"profiles": {
        "plain": {"backend": "echo", "cache": True, "cache_ttl": "1h"},
        "warm-member": {"backend": "echo", "temperature": 0.7},
        "cached-route": {"route": "fallback", "members": ["warm-member", "plain"], "cache": True, "cache_ttl": "1h",
                         "max_retries": 1},
        "hot-route": {"route": "pool", "members": ["plain"], "cache": True, "cache_temperature": True},
        "uncached-route": {"route": "split", "weights": {"plain": 1}}}}))

    def shown(name: str) -> dict[str, Any]:
        outcome = run_cli("profiles", "show", name, "--json")
        assert outcome.exit_code == 0, outcome.stderr
        return json.loads(outcome.stdout)  # type: ignore[no-any-return]

    def settings(shown: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {setting["name"]: setting for setting in shown["settings"]}

    plain, route = shown("plain"), shown("cached-route")
    cache_keys = ("cache", "cache_ttl", "cache_temperature")
    for key in cache_keys:  # the same fields, and the same values for the same keys in the same file
        assert settings(route)[key].keys() == settings(plain)[key].keys()
        assert {field: value for field, value in settings(route)[key].items() if field != "from"} == \
            {field: value for field, value in settings(plain)[key].items() if field != "from"}
    assert settings(route)["cache"]["value"] is True and settings(route)["cache"]["from"] == "your file"
    assert settings(route)["cache_ttl"]["value"] == "1h" and settings(route)["cache_ttl"]["default"] == "1d"
    assert settings(route)["cache_temperature"] == {**settings(route)["cache_temperature"], "value": False,
                                                    "from": "default"}
    assert settings(route)["max_retries"]["value"] == 1 and settings(route)["max_retries"]["group"] == "router"
    assert "backend" not in settings(route) and "model" not in settings(route)  # a route has neither
    assert route["notes"] == ["cache: on, answers kept 1h, but not while a member samples at temperature 0.7: only "
                              "requests that set temperature = 0 are cached (cache_temperature = true caches sampled "
                              "answers too)"]
    assert any(note.startswith("cache: on, answers kept 1h, for requests with temperature 0 or unset")
               for note in plain["notes"])
    hot = shown("hot-route")
    assert settings(hot)["cache_temperature"]["value"] is True
    assert hot["notes"] == ["cache: on, answers kept 1d, for every request, sampled ones too (cache_temperature = "
                            "true): the first answer is replayed"]
    uncached = shown("uncached-route")
    assert settings(uncached)["cache"]["value"] is False and uncached["notes"] == []
    assert route["route"] == "fallback" and [m["name"] for m in route["members"]] == ["warm-member", "plain"]


def test_cache_clear_refuses_an_unknown_profile_name_unless_the_cache_holds_its_answers(config_file: Path) -> None:
    config_file.write_text(tomli_w.dumps({"profiles": {"docs-bot": {"backend": "echo", "cache": True},
                                                       "gone": {"backend": "echo", "cache": True, "prefix": "g "}}}))
    for name in ("docs-bot", "gone"):
        assert run_cli("chat", "-p", name, "hello").exit_code == 0
    misspelt = run_cli("cache", "clear", "-p", "docs-bto")
    assert misspelt.exit_code == 2 and "no profile named 'docs-bto'" in misspelt.stderr
    assert "did you mean 'docs-bot'?" in misspelt.stderr and "deleted" not in misspelt.stderr
    nope = run_cli("cache", "clear", "-p", "nope")
    assert nope.exit_code == 2 and "no profile named 'nope'" in nope.stderr and "cache stats" in nope.stderr
    assert json.loads(run_cli("cache", "stats", "--json").stdout)["entries"] == 2  # nothing was deleted
    config_file.write_text(tomli_w.dumps({"profiles": {"docs-bot": {"backend": "echo", "cache": True}}}))
    removed = run_cli("cache", "clear", "-p", "gone")  # no longer a profile, but its answers are still here
    assert removed.exit_code == 0 and "deleted 1 cached answer" in removed.stderr
    assert "deleted 0 cached answers" in run_cli("cache", "clear", "-p", "docs-bot", "--expired").stderr
