"""The router's retries on a plain profile, against the OpenAI protocol server with scripted faults over a real
socket: what is retried, how long it waits (never sooner than Retry-After), the one deadline, and how every
attempt is shown (stderr, --json, the ledger)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from llmswitch.client import AsyncClient, Client
from llmswitch.errors import AuthError, BackendError, BackendTimeoutError, BadResponseError, RateLimitError
from llmswitch.ledger import Ledger
from tests.helpers import run_cli
from tests.servers.http import LocalServer
from tests.servers.openai_server import openai_server

FAST = {"backoff_base_s": 0.01, "backoff_max_s": 0.02}  # retries in milliseconds: no test waits on backoff


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with openai_server() as running:
        yield running


def write_profiles(config_file: Path, profiles: dict[str, dict[str, Any]], **top: Any) -> None:
    config_file.write_text(tomli_w.dumps({**top, "profiles": profiles}))


def openai_profile(server: LocalServer, **values: Any) -> dict[str, Any]:
    return {"backend": "openai", "base_url": f"{server.url}/v1", "model": "test-model", "api_key": "sk-test",
            **FAST, **values}


def outcomes(attempts: Any) -> list[tuple[str, str]]:
    return [(attempt.member, attempt.outcome) for attempt in attempts]


def test_a_429_with_retry_after_is_retried_no_sooner_and_answers(server: LocalServer, config_file: Path) -> None:
    server.state.script = ["rate_limit", "ok"]
    server.state.options["retry_after"] = "0.3"
    write_profiles(config_file, {"p": openai_profile(server)})
    resolved = Client().resolve("p")
    response = resolved.complete(resolved.request("hello"))
    assert response.text.strip()
    assert outcomes(response.attempts) == [("p", "rate_limited"), ("p", "ok")]
    assert response.attempts[0].status == 429
    first, second = server.state.requests
    assert second.at - first.at >= 0.3  # never sooner than the server asked


def test_two_503s_then_success_streams_the_answer(server: LocalServer, config_file: Path) -> None:
    server.state.script = ["unavailable", "unavailable", "ok"]
    server.state.options["unavailable_retry_after"] = "0"
    write_profiles(config_file, {"p": openai_profile(server)})
    resolved = Client().resolve("p")
    result = resolved.stream(resolved.request("hello"))
    events = list(result)
    assert result.error is None and result.text.strip()
    assert [type(event).__name__ for event in events][-1] == "StreamEnd"
    assert outcomes(result.attempts) == [("p", "bad_response"), ("p", "bad_response"), ("p", "ok")]
    assert [attempt.status for attempt in result.attempts] == [503, 503, None]
    assert len(server.state.requests) == 3


@pytest.mark.parametrize(("scenario", "options", "floor"), [
    ("unavailable", {"retry_after_date_s": 2}, 1.0),  # an HTTP date 2 s ahead, in whole seconds: 1 to 2 s
    ("rate_limit", {"retry_after_date_s": 2}, 1.0),
    ("unavailable", {"unavailable_retry_after": 0, "retry_after_ms": 700}, 0.7),  # read before Retry-After
    ("rate_limit", {"retry_after": 0, "retry_after_ms": 700}, 0.7),
])
def test_every_retried_status_waits_for_retry_after_as_a_date_or_in_milliseconds(
        server: LocalServer, config_file: Path, scenario: str, options: dict[str, Any], floor: float) -> None:
    server.state.script = [scenario, "ok"]
    server.state.options.update(options)
    write_profiles(config_file, {"p": openai_profile(server)})  # a backoff of 10 ms at most: the wait is the server's
    client = Client()
    heard: list[Any] = []
    client.observers.append(heard.append)
    resolved = client.resolve("p")
    result = resolved.stream(resolved.request("hello"))
    list(result)
    assert result.error is None and result.text.strip()
    first, second = server.state.requests
    assert second.at - first.at >= floor  # never sooner than the server asked
    assert [event.kind for event in heard] == ["retry"] and heard[0].message.endswith("(Retry-After)")
    assert heard[0].seconds is not None and heard[0].seconds >= floor


def test_an_anthropic_529_waits_for_its_retry_after(config_file: Path) -> None:
    from tests.servers.anthropic_server import anthropic_server

    with anthropic_server() as anthropic:
        anthropic.state.script = ["overloaded", "ok"]
        anthropic.state.options["overloaded_retry_after"] = "1"
        write_profiles(config_file, {"c": {"backend": "anthropic", "base_url": anthropic.url, "api_key": "sk-ant-test",
                                           "model": "claude-haiku-4-5-20251001", **FAST}})
        resolved = Client().resolve("c")
        response = resolved.complete(resolved.request("hello"))
        assert response.text.strip()
        assert [attempt.status for attempt in response.attempts] == [529, None]
        first, second = anthropic.state.requests
        assert second.at - first.at >= 1.0


def test_retries_stop_at_max_retries_and_the_error_names_every_attempt(server: LocalServer,
                                                                        config_file: Path) -> None:
    server.state.scenario = "server_error"
    write_profiles(config_file, {"p": openai_profile(server, max_retries=1)})
    resolved = Client().resolve("p")
    with pytest.raises(BadResponseError) as caught:
        resolved.complete(resolved.request("hello"))
    assert len(server.state.requests) == 2
    assert "after 2 attempts: p 500, p 500" in str(caught.value)


@pytest.mark.parametrize(("scenario", "values", "error"), [
    ("unavailable", {"max_retries": 0}, BadResponseError),  # retrying turned off
    ("auth", {}, AuthError),  # a 401 is never retried
    ("forbidden", {}, AuthError),
])
def test_one_request_when_a_retry_is_off_or_cannot_help(server: LocalServer, config_file: Path, scenario: str,
                                                        values: dict[str, Any], error: type[Exception]) -> None:
    server.state.scenario = scenario
    write_profiles(config_file, {"p": openai_profile(server, **values)})
    resolved = Client().resolve("p")
    with pytest.raises(error):
        resolved.complete(resolved.request("hello"))
    assert len(server.state.requests) == 1


@pytest.mark.parametrize(("scenario", "option", "error"), [
    ("rate_limit", "retry_after", RateLimitError),
    ("unavailable", "unavailable_retry_after", BadResponseError),
])
def test_a_retry_after_past_the_cap_is_not_waited_for(server: LocalServer, config_file: Path, scenario: str,
                                                      option: str, error: type[BackendError]) -> None:
    server.state.scenario = scenario
    server.state.options[option] = "120"
    write_profiles(config_file, {"p": openai_profile(server, retry_after_max_s=5.0)})
    resolved = Client().resolve("p")
    with pytest.raises(error) as caught:
        resolved.complete(resolved.request("hello"))
    assert len(server.state.requests) == 1
    assert caught.value.retry_after == pytest.approx(120.0)


def test_a_first_token_past_the_deadline_ends_the_call_at_the_deadline(server: LocalServer,
                                                                       config_file: Path) -> None:
    server.state.scenario = "slow_first_byte"
    server.state.options["delay"] = 3.0
    write_profiles(config_file, {"p": openai_profile(server, timeout_total=0.5)})
    resolved = Client().resolve("p")
    result = resolved.stream(resolved.request("hello"))
    list(result)
    assert isinstance(result.error, BackendTimeoutError)
    assert "timeout_total = 0.5 s" in str(result.error)
    assert result.latency_s is not None and result.latency_s < 2.5  # cut at the deadline, not the server's 3 s
    assert len(server.state.requests) == 1


def test_a_stream_cut_after_text_is_not_replayed(server: LocalServer, config_file: Path) -> None:
    server.state.scenario = "cut"
    server.state.options["tokens"] = 8
    write_profiles(config_file, {"p": openai_profile(server)})
    resolved = Client().resolve("p")
    result = resolved.stream(resolved.request("hello"))
    list(result)
    assert result.text.startswith("w0 w1 ")  # the text so far is kept
    assert result.error is not None
    assert len(server.state.requests) == 1


def test_the_async_api_retries_by_the_same_rules(server: LocalServer, config_file: Path) -> None:
    server.state.script = ["unavailable", "ok"]
    server.state.options["unavailable_retry_after"] = "0"
    write_profiles(config_file, {"p": openai_profile(server)})

    async def main() -> Any:
        async with AsyncClient() as client:
            resolved = client.resolve("p")
            return await resolved.acomplete(resolved.request("hello"))

    response = asyncio.run(main())
    assert outcomes(response.attempts) == [("p", "bad_response"), ("p", "ok")]


def test_observers_hear_each_decision(server: LocalServer, config_file: Path) -> None:
    server.state.script = ["rate_limit", "ok"]
    server.state.options["retry_after"] = "0.05"
    write_profiles(config_file, {"p": openai_profile(server)})
    client = Client()
    heard: list[Any] = []
    client.observers.append(heard.append)
    resolved = client.resolve("p")
    resolved.complete(resolved.request("hello"))
    assert [(event.kind, event.member) for event in heard] == [("retry", "p")]
    assert heard[0].message.startswith("p: 429, retrying in ")
    assert heard[0].message.endswith("s (Retry-After)")


def test_chat_shows_retries_on_stderr_attempts_in_json_and_a_ledger_row_per_attempt(
        server: LocalServer, config_file: Path) -> None:
    server.state.script = ["rate_limit", "ok"]
    server.state.options["retry_after"] = "0.05"
    write_profiles(config_file, {"p": openai_profile(server)})
    outcome = run_cli("chat", "-p", "p", "--json", "hello")
    assert outcome.exit_code == 0, outcome.stderr
    assert "p: 429, retrying in" in outcome.stderr
    payload = json.loads(outcome.stdout)
    assert [(a["member"], a["outcome"], a["status"]) for a in payload["attempts"]] == [
        ("p", "rate_limited", 429), ("p", "ok", None)]
    assert all(a["latency_s"] >= 0 for a in payload["attempts"])
    with Ledger() as ledger:
        rows = ledger.entries()
    assert [(row.profile, row.outcome) for row in rows] == [("p", "rate_limited"), ("p", "ok")]
    assert rows[0].cost_usd is None and rows[1].output_tokens
