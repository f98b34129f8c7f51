"""The installed ``ollama`` plugin, reached through its entry point, against a local server that speaks
Ollama's REST API (JSON and NDJSON) over a real socket through httpx, including the ways it fails."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from llmswitch.client import Client, ResolvedProfile
from llmswitch.errors import (
    AuthError,
    BackendError,
    BackendTimeoutError,
    BadResponseError,
    ModelNotFoundError,
    RateLimitError,
    UnreachableError,
    UnsupportedOptionError,
)
from llmswitch.plugins import get_registry
from llmswitch.pricing import load_table
from llmswitch.profiles import builtin_profiles
from llmswitch.types import CheckStatus, Status, StreamEnd, StreamError, TextDelta, UsageEvent
from tests.servers.http import LocalServer, refused_port
from tests.servers.ollama_server import VERSION, ollama_server

ANSWER = "w0 w1 w2 w3 w4 "

# These tests are about what one request does; the router's retries are tested in tests/test_router_*.py.
ONE_REQUEST = {"max_retries": 0}


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with ollama_server() as running:
        yield running


def resolve(config_file: Path, name: str = "local", **values: Any) -> ResolvedProfile:
    """Write one ollama profile to the test's config file and resolve it through the registry."""
    config_file.write_text(tomli_w.dumps({"profiles": {name: {"backend": "ollama", **ONE_REQUEST, **values}}}))
    return Client().resolve(name)


def local(server: LocalServer, config_file: Path, **values: Any) -> ResolvedProfile:
    return resolve(config_file, **{"base_url": server.url, "model": "llama3.2", "timeout": 5.0, **values})


def stream_all(resolved: ResolvedProfile, prompt: str = "Say hello", **settings: Any) -> tuple[list[Any], Any]:
    result = resolved.stream(resolved.request(prompt, **settings))
    return list(result), result


def failure(resolved: ResolvedProfile) -> tuple[StreamError, str]:
    events, result = stream_all(resolved)
    assert isinstance(events[-1], StreamError), events
    return events[-1], result.text


def sent(server: LocalServer, path: str = "/api/chat") -> Any:
    matching = [r for r in server.state.requests if r.path == path]
    assert matching, f"no request to {path}: {server.state.requests}"
    return matching[-1]


# ---- discovery, data, import cost ---------------------------------------------------------------------


def test_the_backend_comes_from_the_installed_distribution() -> None:
    handle = get_registry().backend("ollama")
    assert handle.plugin.distribution == "llmswitch-ollama"
    assert set(handle.hooks) == {"complete", "stream", "acomplete", "astream", "astream_batches", "count_tokens",
                                 "health", "ahealth"}
    info = handle.info
    assert (info.key_env, info.base_url_env, info.default_base_url) == (None, "OLLAMA_HOST", "http://127.0.0.1:11434")
    assert {"num_ctx", "keep_alive", "repeat_penalty"} <= {spec.name for spec in info.generation_extras}


def test_local_models_cost_nothing() -> None:
    table = load_table(get_registry().backend("ollama").info)
    assert table is not None and table.error is None and table.date and table.source
    price = table.lookup(builtin_profiles()["ollama"]["model"])
    assert price is not None and price.free
    assert table.lookup("any-model:7b") == price


def test_loading_the_plugin_imports_no_http_library() -> None:
    code = ("import sys; from llmswitch.plugins import get_registry; get_registry().backend('ollama'); "
            "import llmswitch_ollama; print('httpx' in sys.modules or 'httpx2' in sys.modules)")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "False"


# ---- answers -------------------------------------------------------------------------------------------


def test_stream_yields_text_then_usage_then_end(server: LocalServer, config_file: Path) -> None:
    events, result = stream_all(local(server, config_file))
    assert [type(event) for event in events] == [TextDelta] * 5 + [UsageEvent, StreamEnd]
    assert result.text == ANSWER
    usage = events[-2].usage
    assert (usage.input_tokens, usage.output_tokens) == (6, 5)  # prompt_eval_count, eval_count
    assert events[-1] == StreamEnd("stop", "llama3.2")
    body = sent(server).body
    assert body["stream"] is True and body["model"] == "llama3.2"
    assert body["messages"] == [{"role": "user", "content": "Say hello"}]
    assert "options" not in body  # nothing set, nothing sent: Ollama's own defaults apply


def test_complete_returns_the_whole_answer(server: LocalServer, config_file: Path) -> None:
    server.state.options["done_reason"] = "length"
    resolved = local(server, config_file)
    response = resolved.complete(resolved.request("Say hello"))
    assert (response.text, response.finish_reason, response.model) == (ANSWER, "length", "llama3.2")
    assert (response.usage.input_tokens, response.usage.output_tokens) == (6, 5)
    assert sent(server).body["stream"] is False


def test_unicode_split_across_network_chunks_arrives_whole(server: LocalServer, config_file: Path) -> None:
    server.state.options.update(answer="héllo wörld ✓ 日本語 " * 20, batch=1)
    _, result = stream_all(local(server, config_file))
    assert result.text == "héllo wörld ✓ 日本語 " * 20


def test_closing_a_stream_early_releases_the_connection(server: LocalServer, config_file: Path) -> None:
    server.state.options["tokens"] = 2000
    resolved = local(server, config_file)
    result = resolved.stream(resolved.request("long"))
    iterator = result.__iter__()
    assert isinstance(iterator, Generator) and isinstance(next(iterator), TextDelta)
    iterator.close()
    server.state.options["tokens"] = 5
    _, again = stream_all(resolved)
    assert again.text == ANSWER


# ---- parameter mapping ---------------------------------------------------------------------------------


def test_generation_settings_are_mapped_to_ollama_options(server: LocalServer, config_file: Path) -> None:
    resolved = local(server, config_file, num_ctx=8192, keep_alive="-1")
    list(resolved.stream(resolved.request("Hi", system="Be brief.", temperature=0.2, top_p=0.8, top_k=30,
                                          seed=42, max_tokens=64, stop=["\n\n"], repeat_penalty=1.1,
                                          think=False)))
    body = sent(server).body
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert body["options"] == {"temperature": 0.2, "top_p": 0.8, "top_k": 30, "seed": 42, "num_predict": 64,
                               "stop": ["\n\n"], "num_ctx": 8192, "repeat_penalty": 1.1}
    assert body["keep_alive"] == -1  # a number: the string "-1" is not a Go duration
    assert body["think"] is False


def test_keep_alive_durations_stay_strings(server: LocalServer, config_file: Path) -> None:
    resolved = local(server, config_file, keep_alive="10m")
    list(resolved.stream(resolved.request("hi")))
    assert sent(server).body["keep_alive"] == "10m"


def test_a_setting_ollama_does_not_know_is_refused_before_sending(server: LocalServer, config_file: Path) -> None:
    resolved = local(server, config_file)
    with pytest.raises(UnsupportedOptionError) as caught:
        resolved.stream(resolved.request("hi", logit_bias=5))
    assert "logit_bias" in str(caught.value) and "num_ctx" in (caught.value.remedy or "")
    assert server.state.requests == []


def test_ollama_host_without_a_scheme_is_understood(
    server: LocalServer, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{server.port}")
    resolved = resolve(config_file, model="llama3.2", timeout=5.0)
    _, result = stream_all(resolved)
    assert result.error is None and result.text == ANSWER


def test_headers_option_reaches_a_proxy_that_wants_a_key(server: LocalServer, config_file: Path) -> None:
    server.state.scenario = "proxy_auth"
    server.state.options["authorization"] = "Bearer proxy-token-123456"
    event, _ = failure(local(server, config_file))
    assert isinstance(event.error, AuthError) and "headers" in (event.error.remedy or "")
    _, result = stream_all(local(server, config_file, headers={"Authorization": "Bearer proxy-token-123456"}))
    assert result.error is None and result.text == ANSWER


# ---- failures ------------------------------------------------------------------------------------------


def test_a_model_that_is_not_pulled_says_how_to_pull_it(server: LocalServer, config_file: Path) -> None:
    resolved = local(server, config_file, model="mistral")
    event, _ = failure(resolved)
    assert isinstance(event.error, ModelNotFoundError) and event.error.status_code == 404
    assert "ollama pull mistral" in (event.error.remedy or "")
    with pytest.raises(ModelNotFoundError):
        resolved.complete(resolved.request("hi"))


def test_connection_refused_says_how_to_start_ollama(config_file: Path) -> None:
    url = f"http://127.0.0.1:{refused_port()}"
    resolved = resolve(config_file, base_url=url, timeout=5.0)
    event, _ = failure(resolved)
    assert isinstance(event.error, UnreachableError)
    assert url in event.error.message and "ollama serve" in (event.error.remedy or "")
    with pytest.raises(UnreachableError):
        resolved.complete(resolved.request("hi"))


def test_rate_limit_from_a_proxy_carries_retry_after(server: LocalServer, config_file: Path) -> None:
    server.state.scenario = "rate_limit"
    server.state.options["retry_after"] = 3
    event, _ = failure(local(server, config_file))
    assert isinstance(event.error, RateLimitError) and event.error.retry_after == 3.0


@pytest.mark.parametrize(
    ("scenario", "kind", "status", "says"),
    [
        ("server_error", BadResponseError, 500, "more system memory"),
        ("bad_request", BackendError, 400, "cannot unmarshal"),
        ("not_ollama", ModelNotFoundError, 404, "no Ollama API"),
    ],
)
def test_http_failures_map_to_errors_with_remedies(
    server: LocalServer, config_file: Path, scenario: str, kind: type[BackendError], status: int, says: str
) -> None:
    server.state.scenario = scenario
    resolved = local(server, config_file)
    event, _ = failure(resolved)
    assert isinstance(event.error, kind) and event.error.status_code == status
    assert says in event.error.message and event.error.remedy
    with pytest.raises(kind):
        resolved.complete(resolved.request("hi"))


@pytest.mark.parametrize(
    ("scenario", "kind", "says"),
    [
        ("error_line", BadResponseError, "unexpected EOF"),
        ("cut", BadResponseError, "cut off"),
        ("no_done", BadResponseError, "cut off"),
        ("garbage", BadResponseError, "not JSON"),
        ("stall", BackendTimeoutError, "stopped sending"),
    ],
)
def test_a_stream_failing_midway_keeps_the_text_so_far(
    server: LocalServer, config_file: Path, scenario: str, kind: type[BackendError], says: str
) -> None:
    server.state.scenario = scenario
    server.state.options["delay"] = 1.5
    event, text = failure(local(server, config_file, timeout=0.5))
    assert isinstance(event.error, kind), event.error
    assert says in event.error.message and event.error.remedy
    assert text == event.text == "w0 w1 w2 "


def test_a_busy_server_is_reported_after_exactly_one_request(server: LocalServer, config_file: Path) -> None:
    server.state.script = ["unavailable", "ok"]  # 503 once, then fine: the plugin must not ride it out on its own
    event, _ = failure(local(server, config_file))
    assert isinstance(event.error, BadResponseError) and event.error.status_code == 503
    assert "server busy" in event.error.message
    assert len(server.state.requests) == 1  # retries belong to the router, not the transport


def test_connection_reset_before_the_answer(server: LocalServer, config_file: Path) -> None:
    server.state.scenario = "reset"
    event, text = failure(local(server, config_file))
    assert isinstance(event.error, UnreachableError) and "reset" in event.error.message and text == ""


def test_no_first_byte_within_the_timeout(server: LocalServer, config_file: Path) -> None:
    server.state.scenario = "slow_first_byte"
    server.state.options["delay"] = 2.0
    event, text = failure(local(server, config_file, timeout=0.4))
    assert isinstance(event.error, BackendTimeoutError) and text == ""
    assert "0.4 s" in event.error.message and "timeout" in (event.error.remedy or "")


# ---- count_tokens and health ---------------------------------------------------------------------------


def test_count_tokens_is_an_estimate_and_sends_nothing(server: LocalServer, config_file: Path) -> None:
    resolved = local(server, config_file)
    count = resolved.count_tokens(resolved.request("word " * 40))
    assert not count.exact and count.n > 0 and server.state.requests == []


def statuses(report: Any) -> dict[str, CheckStatus]:
    return {check.name: check.status for check in report.checks}


def test_health_reports_the_server_and_the_pulled_model(server: LocalServer, config_file: Path) -> None:
    report = local(server, config_file).health(timeout=5)
    assert report.status is Status.OK and statuses(report) == {"server": CheckStatus.PASS, "model": CheckStatus.PASS}
    assert VERSION in report.checks[0].detail and report.latency_s is not None
    assert [r.path for r in server.state.requests] == ["/api/version", "/api/tags"]


def test_health_says_to_pull_a_missing_model(server: LocalServer, config_file: Path) -> None:
    report = local(server, config_file, model="qwen3").health(timeout=5)
    model = report.checks[1]
    assert report.status is Status.DOWN and model.status is CheckStatus.FAIL
    assert "ollama pull qwen3" in (model.remedy or "") and "qwen3:0.6b" in (model.remedy or "")


def test_health_when_nothing_listens(config_file: Path) -> None:
    report = resolve(config_file, base_url=f"127.0.0.1:{refused_port()}").health(timeout=2)
    assert report.status is Status.DOWN and statuses(report)["server"] is CheckStatus.FAIL
    assert "ollama serve" in (report.checks[0].remedy or "")


def test_health_of_a_server_that_is_not_ollama(server: LocalServer, config_file: Path) -> None:
    server.state.scenario = "not_ollama"
    report = local(server, config_file).health(timeout=5)
    assert report.status is Status.DOWN and "is it Ollama" in report.checks[0].detail


def test_health_offline_touches_nothing(server: LocalServer, config_file: Path) -> None:
    report = local(server, config_file).health(timeout=5, offline=True)
    assert statuses(report) == {"server": CheckStatus.SKIP} and server.state.requests == []


# ---- through the CLI -----------------------------------------------------------------------------------


def test_cli_chat_prints_only_the_answer_and_failures_as_sentences(server: LocalServer, config_file: Path) -> None:
    from tests.helpers import run_cli

    config_file.write_text(tomli_w.dumps({"profiles": {"local": {
        "backend": "ollama", "base_url": server.url, "model": "llama3.2", "timeout": 5.0}}}))
    result = run_cli("chat", "--profile", "local", "-o", "num_ctx", "4096", "hi")
    assert result.exit_code == 0, result
    assert result.stdout == ANSWER + "\n" and sent(server).body["options"] == {"num_ctx": 4096}
    missing = run_cli("chat", "--profile", "local", "-m", "phi4", "hi")
    assert missing.exit_code == 1 and "ollama pull phi4" in missing.stderr
    assert "Traceback" not in missing.output and missing.stdout == ""
