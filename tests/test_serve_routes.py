"""``llmswitch serve`` serving a route, and the router's decisions as Prometheus counters: the official openai
and anthropic SDKs as clients, OpenAI-protocol servers on 127.0.0.1 as members (one dead port, one that answers
503 or a scripted 429), the metrics read with prometheus-client's own parser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2 as httpx
import openai
import pytest
import tomli_w
import tomllib
from prometheus_client.parser import text_string_to_metric_families

from llmswitch import metrics
from llmswitch.ledger import Ledger
from llmswitch.testing.server import refused_port
from tests.helpers import run_cli
from tests.servers.gateway import RunningGateway, reset_upstream
from tests.servers.http import LocalServer
from tests.servers.openai_server import openai_server

PRICE = {"price_input_per_mtok": 1.0, "price_output_per_mtok": 2.0}
GOOD_ANSWER = "the second member answers"


@pytest.fixture(scope="module")
def shared_servers() -> Iterator[tuple[LocalServer, LocalServer]]:
    with openai_server() as failing, openai_server() as answering:
        yield failing, answering


@pytest.fixture
def servers(shared_servers: tuple[LocalServer, LocalServer]) -> tuple[LocalServer, LocalServer]:
    failing, answering = shared_servers
    return reset_upstream(failing, unavailable_retry_after=0), reset_upstream(answering, answer=GOOD_ANSWER)


def member(url: str) -> dict[str, Any]:
    return {"backend": "openai", "model": "test-model", "base_url": f"{url}/v1", "api_key": "sk-up-0123456789abcd",
            "timeout": 10.0, **PRICE}


def write_config(config_file: Path, failing: LocalServer, answering: LocalServer) -> None:
    profiles = {
        "dead": member(f"http://127.0.0.1:{refused_port()}"),
        "busy": member(failing.url),
        "good": member(answering.url),
        # (cooldown_failures: each call tries the first member, however often it failed before)
        "via-dead": {"route": "fallback", "members": ["dead", "good"], "cooldown_failures": 10},
        "via-503": {"route": "fallback", "members": ["busy", "good"], "max_retries": 0, "cooldown_failures": 10},
        "retrying": {"route": "fallback", "members": ["busy", "good"], "backoff_base_s": 0.01},
    }
    config_file.write_text(tomli_w.dumps({"profiles": profiles}))


def four_ways(gateway: RunningGateway, model: str) -> list[str]:
    """The route's answer through both SDKs, whole and streamed."""
    chat = openai.OpenAI(base_url=gateway.base_url, api_key="x", max_retries=0, timeout=20).chat.completions
    messages: Any = [{"role": "user", "content": "hello"}]
    texts = [chat.create(model=model, messages=messages).choices[0].message.content or ""]
    texts.append("".join(chunk.choices[0].delta.content or "" for chunk in chat.create(
        model=model, messages=messages, stream=True) if chunk.choices))
    client = anthropic.Anthropic(base_url=gateway.url, api_key="x", max_retries=0, timeout=20)
    whole = client.messages.create(model=model, max_tokens=50, messages=messages)
    texts.append(whole.content[0].text)  # type: ignore[union-attr]
    with client.messages.stream(model=model, max_tokens=50, messages=messages) as stream:
        texts.append("".join(stream.text_stream))
    return texts


@pytest.mark.parametrize(("route", "failed", "outcome"), [("via-dead", "dead", "unreachable"),
                                                          ("via-503", "busy", "bad_response")])
def test_the_gateway_serves_a_fallback_route_from_its_second_member(
        config_file: Path, servers: tuple[LocalServer, LocalServer], route: str, failed: str, outcome: str) -> None:
    failing, answering = servers
    failing.state.scenario = "unavailable"
    write_config(config_file, failing, answering)
    with RunningGateway() as gateway:
        assert four_ways(gateway, route) == [GOOD_ANSWER] * 4
    assert len(answering.state.requests) == 4
    with Ledger() as ledger:
        rows = ledger.entries()
    answers = [row for row in rows if row.outcome == "ok"]
    assert [(row.profile, row.route) for row in answers] == [("good", route)] * 4  # charged to who answered
    assert all(row.cost_usd and row.cost_usd > 0 and row.output_tokens for row in answers)
    failures = [row for row in rows if row.outcome != "ok"]
    assert [(row.profile, row.route, row.cost_usd) for row in failures] == [(failed, route, None)] * 4
    assert len(failing.state.requests) == (0 if failed == "dead" else 4)
    assert {row.outcome for row in failures} == {outcome}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_router_retries_fallbacks_and_cooldowns_are_counted_on_metrics(
        config_file: Path, servers: tuple[LocalServer, LocalServer]) -> None:
    failing, answering = servers
    # A 503, then an answer: one retry. Then a 429: the member cools and the fallback moves on to the next.
    failing.state.script = ["unavailable", "ok", "rate_limit"]
    failing.state.options.update(retry_after="0", unavailable_retry_after="0")
    write_config(config_file, failing, answering)
    with RunningGateway() as gateway:
        chat = openai.OpenAI(base_url=gateway.base_url, api_key="x", max_retries=0, timeout=20).chat.completions
        retried = chat.create(model="retrying", messages=[{"role": "user", "content": "hi"}])
        assert retried.choices[0].message.content and retried.choices[0].message.content != GOOD_ANSWER
        cooled = chat.create(model="retrying", messages=[{"role": "user", "content": "hi"}])
        assert cooled.choices[0].message.content == GOOD_ANSWER
        fell_back = chat.create(model="via-dead", messages=[{"role": "user", "content": "hi"}])
        assert fell_back.choices[0].message.content == GOOD_ANSWER
        found = samples(httpx.get(f"{gateway.url}/metrics").text)
    assert found[("llmswitch_router_retries_total", (("profile", "busy"), ("route", "retrying")))] == 1
    assert found[("llmswitch_router_cooldowns_total", (("profile", "busy"), ("route", "retrying")))] == 1
    assert found[("llmswitch_router_fallbacks_total", (("from_profile", "busy"), ("route", "retrying"),
                                                       ("to_profile", "good")))] == 1
    fallback = (("from_profile", "dead"), ("route", "via-dead"), ("to_profile", "good"))
    assert found[("llmswitch_router_fallbacks_total", fallback)] == 1


def counted(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], family: str,
            **wanted: str) -> dict[tuple[str, ...], float]:
    """The samples of one counter family whose labels include ``wanted``, keyed by the other labels' values (in
    the order of their names)."""
    return {tuple(value for name, value in labels if name not in wanted): count
            for (name, labels), count in found.items()
            if name == family and wanted.items() <= dict(labels).items()}


def test_every_attempt_is_counted_once_retried_fallen_back_or_refused_before_sending(
        config_file: Path, servers: tuple[LocalServer, LocalServer], monkeypatch: pytest.MonkeyPatch) -> None:
    failing, answering = servers
    failing.state.script = ["rate_limit", "ok", "unavailable", "ok"]  # each call: a 429 or a 503, retried, answered
    failing.state.options.update(retry_after="0", unavailable_retry_after="0")
    write_config(config_file, failing, answering)
    config = tomllib.loads(config_file.read_text())
    config["profiles"]["nokey"] = {**member(answering.url), "api_key_env": "LLMSWITCH_TEST_ABSENT_KEY"}
    del config["profiles"]["nokey"]["api_key"]
    config["profiles"]["via-nokey"] = {"route": "fallback", "members": ["nokey", "good"]}
    config["profiles"]["busy"]["backoff_base_s"] = 0.01
    config_file.write_text(tomli_w.dumps(config))
    monkeypatch.delenv("LLMSWITCH_TEST_ABSENT_KEY", raising=False)
    with RunningGateway() as gateway:
        chat = openai.OpenAI(base_url=gateway.base_url, api_key="x", max_retries=0, timeout=20).chat.completions
        hi = [{"role": "user", "content": "hi"}]
        chat.create(model="busy", messages=hi)  # a plain profile: its 429 retried
        chat.create(model="retrying", messages=hi)  # a route: its member's 503 retried (a 429 would cool it)
        assert chat.create(model="via-dead", messages=hi).choices[0].message.content == GOOD_ANSWER
        assert chat.create(model="via-nokey", messages=hi).choices[0].message.content == GOOD_ANSWER
        with pytest.raises(openai.APIStatusError):
            chat.create(model="nokey", messages=hi)  # refused before sending: no key
        found = samples(httpx.get(f"{gateway.url}/metrics").text)
    errors = counted(found, "llmswitch_errors_total", backend="openai")  # (kind, profile): count
    assert errors == {("rate_limited", "busy"): 1, ("bad_response", "busy"): 1, ("unreachable", "dead"): 1,
                      ("missing_key", "nokey"): 2}
    requests = counted(found, "llmswitch_requests_total", backend="openai", model="test-model")
    assert requests == {("busy", "rate_limited"): 1, ("busy", "bad_response"): 1, ("busy", "ok"): 2,
                        ("dead", "unreachable"): 1, ("nokey", "missing_key"): 2,
                        ("good", "ok"): 2}  # (profile, status): count


def test_chat_pushes_the_router_counters_to_the_metrics_file(
        config_file: Path, servers: tuple[LocalServer, LocalServer], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    failing, answering = servers
    failing.state.script = ["unavailable", "ok"]
    failing.state.options["unavailable_retry_after"] = "0"
    write_config(config_file, failing, answering)
    textfile = tmp_path / "llmswitch.prom"
    monkeypatch.setenv("LLMSWITCH_METRICS_FILE", str(textfile))
    metrics.disable()  # read the variable afresh
    try:
        assert run_cli("chat", "-p", "retrying", "hi").exit_code == 0
        assert run_cli("chat", "-p", "via-dead", "hi").exit_code == 0
    finally:
        metrics.disable()
    found = samples(textfile.read_text())
    assert found[("llmswitch_router_retries_total", (("profile", "busy"), ("route", "retrying")))] == 1
    assert found[("llmswitch_router_fallbacks_total", (("from_profile", "dead"), ("route", "via-dead"),
                                                       ("to_profile", "good")))] == 1
    assert found[("llmswitch_requests_total", (("backend", "openai"), ("model", "test-model"),
                                               ("profile", "good"), ("status", "ok")))] == 1


def test_readyz_names_the_member_of_a_route_that_is_down(config_file: Path,
                                                          servers: tuple[LocalServer, LocalServer]) -> None:
    """A fallback with one dead member is ready (its other member answers), and its detail names the dead one
    and why; a route whose members are all down is not ready, and names each of them."""
    failing, answering = servers
    write_config(config_file, failing, answering)
    with RunningGateway(profiles=["via-dead"]) as running:
        ready = httpx.get(f"{running.url}/readyz", timeout=30)
        assert ready.status_code == 200, ready.text
        entry = ready.json()["profiles"]["via-dead"]
        assert entry["status"] == "ok"
        assert "member dead: down" in entry["detail"] and "refused" in entry["detail"]  # which member, and why
        assert "member good" not in entry["detail"]
    dead_too = {"backend": "openai", "model": "test-model", "base_url": f"http://127.0.0.1:{refused_port()}/v1",
                "api_key": "sk-up-0123456789abcd", "timeout": 10.0}
    config_file.write_text(tomli_w.dumps({"profiles": {
        "dead": member(f"http://127.0.0.1:{refused_port()}"), "gone": dead_too,
        "nowhere": {"route": "fallback", "members": ["dead", "gone"]}}}))
    with RunningGateway(profiles=["nowhere"]) as running:
        down = httpx.get(f"{running.url}/readyz", timeout=30)
        assert down.status_code == 503, down.text
        entry = down.json()["profiles"]["nowhere"]
        assert entry["status"] == "down"
        assert "no member of fallback 'nowhere' is up" in entry["detail"]
        assert "member dead: down" in entry["detail"] and "member gone: down" in entry["detail"]
