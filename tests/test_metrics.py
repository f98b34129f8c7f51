"""Prometheus metrics: the gateway's ``/metrics`` and the textfile that ``chat`` writes, both read back with
prometheus-client's own parser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import openai
import pytest
import tomli_w
from prometheus_client.parser import text_string_to_metric_families

from llmswitch import metrics
from tests.helpers import llmswitch_subprocess
from tests.servers.gateway import RunningGateway
from tests.servers.http import LocalServer
from tests.servers.openai_server import openai_server


@pytest.fixture(autouse=True)
def fresh_metrics() -> Iterator[None]:
    metrics.disable()
    yield
    metrics.disable()


@pytest.fixture
def upstream() -> Iterator[LocalServer]:
    with openai_server() as running:
        yield running


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, by name and labels (the parser fails on anything malformed)."""
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def test_metrics_count_calls_tokens_errors_and_timings(config_file: Path, upstream: LocalServer) -> None:
    config_file.write_text(tomli_w.dumps({"profiles": {"up": {
        "backend": "openai", "model": "test-model", "base_url": f"{upstream.url}/v1", "timeout": 10.0,
        "price_input_per_mtok": 1.0, "price_output_per_mtok": 2.0}}}))
    upstream.state.options.update(tokens=10)
    with RunningGateway() as gateway:
        client = openai.OpenAI(base_url=gateway.base_url, api_key="x", max_retries=0)
        client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "one two three"}])
        list(client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "four five"}],
                                            stream=True))
        client.chat.completions.create(model="up", messages=[{"role": "user", "content": "count"}])
        upstream.state.scenario = "rate_limit"
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="up", messages=[{"role": "user", "content": "again"}])
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="nobody", messages=[{"role": "user", "content": "x"}])
        response = httpx.get(f"{gateway.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    echo = {"profile": "echo", "backend": "echo", "model": "echo"}
    up = {"profile": "up", "backend": "openai", "model": "test-model"}
    assert value(found, "llmswitch_requests_total", **echo, status="ok") == 2
    assert value(found, "llmswitch_requests_total", **up, status="ok") == 1
    # the 429 was asked three times (two retries, the default): each attempt is counted, once
    assert value(found, "llmswitch_requests_total", **up, status="rate_limited") == 3
    assert value(found, "llmswitch_errors_total", profile="up", backend="openai", kind="rate_limited") == 3
    assert value(found, "llmswitch_tokens_total", **echo, direction="output") == 5
    assert value(found, "llmswitch_tokens_total", **up, direction="output") == 10
    input_tokens = value(found, "llmswitch_tokens_total", **up, direction="input")
    assert input_tokens > 0
    assert value(found, "llmswitch_cost_usd_total", **up) == pytest.approx((input_tokens * 1.0 + 10 * 2.0) / 1e6)
    assert value(found, "llmswitch_request_duration_seconds_count", **echo) == 2
    assert value(found, "llmswitch_time_to_first_token_seconds_count", **up) == 1
    assert value(found, "llmswitch_time_to_first_token_seconds_bucket", **up, le="+Inf") == 1
    assert value(found, "llmswitch_requests_in_flight", profile="echo") == 0
    assert value(found, "llmswitch_http_requests_total", path="/v1/chat/completions", code="404") == 1
    assert value(found, "llmswitch_http_requests_total", path="/v1/chat/completions", code="200") == 3
    assert value(found, "llmswitch_http_requests_total", path="/v1/chat/completions", code="429") == 1


def test_metrics_need_a_gateway_key_when_keys_are_set(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_file.write_text("")
    monkeypatch.setenv("LLMSWITCH_SERVE_KEYS", "scrape-key")
    with RunningGateway(profiles=["echo"]) as gateway:
        assert httpx.get(f"{gateway.url}/metrics").status_code == 401
        allowed = httpx.get(f"{gateway.url}/metrics", headers={"Authorization": "Bearer scrape-key"})
    assert allowed.status_code == 200 and "llmswitch_requests_total" in allowed.text


def test_chat_processes_add_their_counts_to_one_textfile(config_file: Path, tmp_path: Path) -> None:
    config_file.write_text("")
    textfile = tmp_path / "textfile" / "llmswitch.prom"
    for prompt in ("alpha beta", "gamma delta epsilon"):
        finished = llmswitch_subprocess("chat", "-p", "echo", prompt, env={"LLMSWITCH_METRICS_FILE": str(textfile)})
        assert finished.returncode == 0, finished.stderr
    found = samples(textfile.read_text())
    echo = {"profile": "echo", "backend": "echo", "model": "echo"}
    assert value(found, "llmswitch_requests_total", **echo, status="ok") == 2  # two processes, added up
    assert value(found, "llmswitch_tokens_total", **echo, direction="output") == 5
    assert value(found, "llmswitch_request_duration_seconds_count", **echo) == 2
    assert value(found, "llmswitch_request_duration_seconds_bucket", **echo, le="+Inf") == 2
    assert not list(textfile.parent.glob(".*.tmp"))  # written whole, by rename


def test_router_events_have_their_counters(tmp_path: Path) -> None:
    active = metrics.enable(tmp_path / "router.prom")
    active.observe_route("retry", "fast", "groq")
    active.observe_route("retry", "fast", "groq")
    active.observe_route("fallback", "fast", "groq", "local")
    active.observe_route("cooldown", "fast", "groq")
    for text in (active.exposition().decode(), (tmp_path / "router.prom").read_text()):
        found = samples(text)
        assert value(found, "llmswitch_router_retries_total", route="fast", profile="groq") == 2
        assert value(found, "llmswitch_router_fallbacks_total", route="fast", from_profile="groq",
                     to_profile="local") == 1
        assert value(found, "llmswitch_router_cooldowns_total", route="fast", profile="groq") == 1


@pytest.fixture
def without_prometheus_client(tmp_path: Path) -> dict[str, str]:
    """An environment in which ``import prometheus_client`` fails as it does when the package is not installed."""
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "prometheus_client.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'prometheus_client'\", name='prometheus_client')\n")
    import os

    return {"PYTHONPATH": os.pathsep.join([str(blocked), os.environ.get("PYTHONPATH", "")])}


def test_a_metrics_file_without_prometheus_client_warns_once_and_keeps_the_answer_and_ledger(
        config_file: Path, tmp_path: Path, without_prometheus_client: dict[str, str]) -> None:
    from llmswitch.ledger import Ledger

    config_file.write_text("")
    env = {**without_prometheus_client, "LLMSWITCH_METRICS_FILE": str(tmp_path / "llmswitch.prom")}
    chat = llmswitch_subprocess("chat", "-p", "echo", "hi", env=env)
    assert (chat.returncode, chat.stdout.strip()) == (0, "hi"), chat.stderr
    assert chat.stderr.count("prometheus-client is not installed") == 1
    assert "pip install 'llmswitch[serve]'" in chat.stderr and "Traceback" not in chat.stderr
    assert "error" not in chat.stderr
    source = tmp_path / "in.jsonl"
    source.write_text("".join(f'{{"id": "{n}", "prompt": "line {n}"}}\n' for n in range(3)))
    batch = llmswitch_subprocess("batch", str(source), "-p", "echo", "-o", str(tmp_path / "out.jsonl"), env=env)
    assert batch.returncode == 0, batch.stderr
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 3
    assert batch.stderr.count("prometheus-client is not installed") == 1
    with Ledger() as ledger:
        assert len(ledger.entries()) == 4  # the chat's row and one per batch line
    assert not (tmp_path / "llmswitch.prom").exists()


def test_serve_without_prometheus_client_names_it(config_file: Path, without_prometheus_client: dict[str, str]) -> None:
    config_file.write_text("")
    serve = llmswitch_subprocess("serve", "-p", "echo", "--port", "0", env=without_prometheus_client)
    assert serve.returncode == 2, serve.stderr
    assert "prometheus-client is not installed" in serve.stderr
    assert "pip install 'llmswitch[serve]'" in serve.stderr
