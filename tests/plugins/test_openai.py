"""The installed ``openai`` plugin, reached through its entry point, against a local server that speaks
OpenAI's chat-completions protocol (JSON and SSE) over a real socket, including the ways servers fail."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import tomli_w

from llmswitch.client import Client, ResolvedProfile
from llmswitch.errors import (
    AuthError,
    BackendError,
    BackendTimeoutError,
    BadResponseError,
    MissingKeyError,
    ModelNotFoundError,
    RateLimitError,
    UnreachableError,
    UnsupportedOptionError,
)
from llmswitch.plugins import get_registry
from llmswitch.types import StreamEnd, StreamError, TextDelta, UsageEvent
from tests.servers.http import LocalServer, refused_port, words
from tests.servers.openai_server import openai_server

SECRET = "sk-proj-THISISASECRETKEYTHATMUSTNEVERSHOW1234"

# These tests are about what one request does; the router's retries are tested in tests/test_router_*.py.
ONE_REQUEST = {"max_retries": 0}


@pytest.fixture(scope="module")
def shared_server() -> Iterator[LocalServer]:
    with openai_server() as running:
        yield running


@pytest.fixture
def server(shared_server: LocalServer) -> LocalServer:
    """The module's server, reset: stopping a server takes half a second, resetting it nothing."""
    from llmswitch_openai import calls

    shared_server.state.scenario = "ok"
    shared_server.state.script.clear()  # a test's unused scripted faults must not answer the next test
    shared_server.state.requests.clear()
    shared_server.state.options.clear()
    calls._refuses_stream_options.clear()  # the plugin remembers refusals per URL, and the URL is shared
    return shared_server


def resolve(config_file: Path, name: str = "p", **values: Any) -> ResolvedProfile:
    """Write one profile (backend openai) to the test's config file and resolve it through the registry."""
    config_file.write_text(tomli_w.dumps({"profiles": {name: {"backend": "openai", **ONE_REQUEST, **values}}}))
    return Client().resolve(name)


def local(server: LocalServer, config_file: Path, **values: Any) -> ResolvedProfile:
    return resolve(config_file, base_url=f"{server.url}/v1", model="test-model", **values)


def stream_all(resolved: ResolvedProfile, prompt: str = "Say hello", **settings: Any) -> tuple[list[Any], Any]:
    result = resolved.stream(resolved.request(prompt, **settings))
    events = list(result)
    return events, result


def last_request(server: LocalServer) -> Any:
    return server.state.requests[-1]


# ---- discovery -----------------------------------------------------------------------------------------


def test_the_backend_comes_from_the_installed_distribution() -> None:
    registry = get_registry()
    handle = registry.backend("openai")
    assert handle.plugin.distribution == "llmswitch-openai"
    assert set(handle.hooks) == {"complete", "stream", "acomplete", "astream", "astream_batches", "count_tokens",
                                 "health", "ahealth", "batch_line", "batch_submit", "batch_retrieve", "batch_results",
                                 "batch_cancel"}
    info = handle.info
    assert info.key_env == "OPENAI_API_KEY"
    assert info.base_url_env == "OPENAI_BASE_URL"
    assert info.default_base_url == "https://api.openai.com/v1"
    assert {"groq", "together", "openrouter", "deepseek", "mistral", "vllm", "llamacpp-server", "lmstudio",
            "ollama-openai", "litellm"} <= set(info.presets)
    assert info.option("api_key") is not None and info.option("api_key").secret  # type: ignore[union-attr]


def test_loading_the_plugin_imports_neither_httpx_nor_the_sdk() -> None:
    code = (
        "import sys; from llmswitch.plugins import get_registry; get_registry().backend('openai'); "
        "print(sorted(m for m in ('httpx', 'openai', 'tiktoken') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_price_table_is_package_data_with_its_date_and_source() -> None:
    from importlib.resources import files

    import tomllib

    package, resource = get_registry().backend("openai").info.prices  # type: ignore[misc]
    table = tomllib.loads(files(package).joinpath(resource).read_text())
    assert table["meta"]["date"] and table["meta"]["source"].startswith("https://")
    mini = table["models"]["gpt-4o-mini"]
    assert mini["input_per_mtok"] < mini["output_per_mtok"]
    for name, row in table["models"].items():
        assert {"input_per_mtok", "output_per_mtok", "context_window", "max_output"} <= set(row), name


# ---- answering -----------------------------------------------------------------------------------------


def test_complete_maps_every_setting_and_reads_the_answer(server: LocalServer, config_file: Path) -> None:
    server.state.options["answer"] = "Paris is the capital."
    resolved = local(server, config_file, temperature=0.2, system="Be brief.")
    response = resolved.complete(
        resolved.request("Capital of France?", top_p=0.9, max_tokens=20, stop=["\n", "Q:"], seed=7)
    )
    assert response.text == "Paris is the capital."
    assert response.finish_reason == "stop"
    assert response.model == "test-model"
    assert response.usage.input_tokens is not None and response.usage.output_tokens == 6
    body = last_request(server).body
    assert last_request(server).path == "/v1/chat/completions"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
    ]
    assert body["temperature"] == 0.2 and body["top_p"] == 0.9 and body["seed"] == 7
    assert body["max_tokens"] == 20 and "max_completion_tokens" not in body
    assert body["stop"] == ["\n", "Q:"]
    assert body["stream"] is False and "stream_options" not in body


def test_stream_arrives_token_by_token_with_usage(server: LocalServer, config_file: Path) -> None:
    server.state.options["tokens"] = 50
    events, result = stream_all(local(server, config_file))
    deltas = [event.text for event in events if isinstance(event, TextDelta)]
    assert deltas == list(words(50))
    assert isinstance(events[-2], UsageEvent) and events[-2].usage.output_tokens == 50
    assert isinstance(events[-1], StreamEnd) and events[-1].finish_reason == "stop"
    assert result.text == "".join(words(50)) and result.error is None
    body = last_request(server).body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_include_usage_can_be_turned_off(server: LocalServer, config_file: Path) -> None:
    events, result = stream_all(local(server, config_file, include_usage=False))
    assert "stream_options" not in last_request(server).body
    assert not any(isinstance(event, UsageEvent) for event in events)
    assert result.text == "".join(words(5))


def test_a_server_that_rejects_stream_options_is_asked_again_and_remembered(
    server: LocalServer, config_file: Path
) -> None:
    server.state.scenario = "reject_stream_options"
    resolved = local(server, config_file)
    events, result = stream_all(resolved)
    assert result.error is None and result.text == "".join(words(5))
    assert [("stream_options" in r.body) for r in server.state.requests] == [True, False]
    stream_all(resolved)  # the same server again: no second refusal
    assert len(server.state.requests) == 3 and "stream_options" not in last_request(server).body


def test_server_specific_settings_go_to_open_servers(server: LocalServer, config_file: Path) -> None:
    resolved = local(server, config_file, top_k=40, extra_body={"repetition_penalty": 1.1, "top_k": 20})
    stream_all(resolved, min_p=0.05, presence_penalty=0.5)
    body = last_request(server).body
    assert body["repetition_penalty"] == 1.1
    assert body["top_k"] == 20  # extra_body is the profile's explicit word: it wins over the mapped field
    assert body["min_p"] == 0.05 and body["presence_penalty"] == 0.5


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"top_k": 40}, "top_k"),
        ({"repetition_penalty": 1.2}, "repetition_penalty"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "5 stop sequences"),
        ({"mirostat": 2}, "mirostat"),
    ],
)
def test_settings_openai_cannot_honour_are_refused_before_sending(
    settings: dict[str, Any], named: str, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    resolved = resolve(config_file, model="gpt-4o-mini")
    request = resolved.request("hi", **settings)
    with pytest.raises(UnsupportedOptionError) as raised:
        resolved.stream(request)  # raised at once: nothing is sent to api.openai.com
    assert named in raised.value.message and raised.value.remedy
    with pytest.raises(UnsupportedOptionError):
        resolved.complete(request)


def test_an_unknown_setting_is_refused_for_open_servers_too(server: LocalServer, config_file: Path) -> None:
    resolved = local(server, config_file)
    with pytest.raises(UnsupportedOptionError) as raised:
        resolved.stream(resolved.request("hi", mirostat=2))
    assert "extra_body" in (raised.value.remedy or "")
    assert server.state.requests == []


# ---- keys and base URLs ------------------------------------------------------------------------------


def test_openai_api_key_is_not_sent_to_a_custom_base_url(
    server: LocalServer, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    resolved = local(server, config_file)
    assert resolved.target.api_key is None and "OPENAI_API_KEY" in " ".join(resolved.target.notes)
    _, result = stream_all(resolved)
    assert result.error is None  # a local server that ignores keys works without one
    assert "authorization" not in last_request(server).headers


def test_a_profile_that_names_its_key_variable_sends_that_key(
    server: LocalServer, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-this-one-000000000")
    monkeypatch.setenv("MY_SERVER_KEY", SECRET)
    server.state.scenario = "require_key"
    server.state.options["key"] = SECRET
    _, result = stream_all(local(server, config_file, api_key_env="MY_SERVER_KEY"))
    assert result.error is None
    assert last_request(server).headers["authorization"] == f"Bearer {SECRET}"


def test_openai_base_url_and_key_from_the_environment_go_together(
    server: LocalServer, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    resolved = resolve(config_file, model="test-model")
    assert resolved.complete(resolved.request("hi")).text
    assert last_request(server).headers["authorization"] == f"Bearer {SECRET}"


def test_key_and_base_url_from_a_dotenv_file(server: LocalServer, config_file: Path) -> None:
    Path(".env").write_text(f"OPENAI_BASE_URL={server.url}/v1\nOPENAI_API_KEY='{SECRET}'\n")
    resolved = resolve(config_file, model="test-model")
    assert resolved.target.api_key is not None and resolved.target.api_key.source == ".env:OPENAI_API_KEY"
    assert resolved.complete(resolved.request("hi")).text
    assert last_request(server).headers["authorization"] == f"Bearer {SECRET}"


def test_an_explicit_key_beats_the_environment(
    server: LocalServer, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-key-000000000000")
    config_file.write_text(tomli_w.dumps({"profiles": {"p": {
        "backend": "openai", "model": "test-model", "base_url": f"{server.url}/v1", "api_key_env": "OPENAI_API_KEY",
    }}}))
    resolved = Client(api_key=SECRET).resolve("p")
    resolved.complete(resolved.request("hi"))
    assert last_request(server).headers["authorization"] == f"Bearer {SECRET}"


def test_the_builtin_openai_profile_without_a_key_names_the_variable() -> None:
    with pytest.raises(MissingKeyError) as raised:
        resolved = Client().resolve("openai")
        resolved.complete(resolved.request("hi"))
    assert raised.value.variable == "OPENAI_API_KEY"


def test_a_preset_supplies_url_key_variable_and_model(
    server: LocalServer, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.state.options["models"] = ["llama-3.3-70b-versatile"]
    # The profile's own base_url wins over the preset's, which lets the test point Groq's preset here.
    resolved = resolve(config_file, preset="groq", base_url=f"{server.url}/v1")
    assert resolved.target.model == "llama-3.3-70b-versatile"
    with pytest.raises(MissingKeyError) as raised:
        resolved.complete(resolved.request("hi"))
    assert raised.value.variable == "GROQ_API_KEY"
    monkeypatch.setenv("GROQ_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-this-one-000000000")
    resolved = Client().resolve("p")
    resolved.complete(resolved.request("hi"))
    assert last_request(server).headers["authorization"] == f"Bearer {SECRET}"
    assert last_request(server).body["model"] == "llama-3.3-70b-versatile"


def test_organization_project_and_extra_headers_are_sent(server: LocalServer, config_file: Path) -> None:
    resolved = local(server, config_file, organization="org-1", project="proj-2", headers={"X-Title": "llmswitch"})
    stream_all(resolved)
    headers = last_request(server).headers
    assert headers["openai-organization"] == "org-1"
    assert headers["openai-project"] == "proj-2"
    assert headers["x-title"] == "llmswitch"


# ---- failures ------------------------------------------------------------------------------------------


def keyed(server: LocalServer, config_file: Path, monkeypatch: pytest.MonkeyPatch, **values: Any) -> ResolvedProfile:
    monkeypatch.setenv("MY_SERVER_KEY", SECRET)
    return local(server, config_file, api_key_env="MY_SERVER_KEY", **values)


def test_401_names_the_key_variable_and_shows_the_key_masked(
    server: LocalServer, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.state.scenario = "auth"
    resolved = keyed(server, config_file, monkeypatch)
    with pytest.raises(AuthError) as raised:
        resolved.complete(resolved.request("hi"))
    error = raised.value
    assert error.status_code == 401 and "MY_SERVER_KEY" in (error.remedy or "")
    assert "sk-…1234" in error.message and SECRET not in error.message + (error.remedy or "")
    _, result = stream_all(resolved)  # the same through a stream: a StreamError, not an exception
    assert isinstance(result.error, AuthError)


def test_401_without_a_key_explains_how_to_send_one(
    server: LocalServer, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    server.state.scenario = "auth"
    with pytest.raises(AuthError) as raised:
        resolved = local(server, config_file)
        resolved.complete(resolved.request("hi"))
    assert "none was sent" in raised.value.message
    assert "api_key_env" in (raised.value.remedy or "")


def test_403_is_an_auth_error_about_access(
    server: LocalServer, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.state.scenario = "forbidden"
    resolved = keyed(server, config_file, monkeypatch)
    with pytest.raises(AuthError) as raised:
        resolved.complete(resolved.request("hi"))
    assert raised.value.status_code == 403 and "access" in (raised.value.remedy or "")


def test_unknown_model_lists_what_the_server_serves(server: LocalServer, config_file: Path) -> None:
    resolved = resolve(config_file, base_url=f"{server.url}/v1", model="gpt-4o-mimi")
    _, result = stream_all(resolved)
    assert isinstance(result.error, ModelNotFoundError)
    assert "gpt-4o-mimi" in result.error.message
    assert "'gpt-4o-mini'" in (result.error.remedy or "")  # the close match
    server.state.options["models"] = ["alpha", "beta"]
    with pytest.raises(ModelNotFoundError) as raised:
        resolved.complete(resolved.request("hi"))
    assert "alpha, beta" in (raised.value.remedy or "")


def test_a_base_url_without_v1_is_explained(server: LocalServer, config_file: Path) -> None:
    resolved = resolve(config_file, base_url=server.url, model="test-model")
    with pytest.raises(BadResponseError) as raised:
        resolved.complete(resolved.request("hi"))
    assert raised.value.status_code == 404 and "/v1" in (raised.value.remedy or "")


def test_429_carries_retry_after(server: LocalServer, config_file: Path) -> None:
    server.state.scenario = "rate_limit"
    server.state.options["retry_after"] = 7
    resolved = local(server, config_file)
    _, result = stream_all(resolved)
    assert isinstance(result.error, RateLimitError)
    assert result.error.retry_after == 7.0 and "7 s" in (result.error.remedy or "")
    with pytest.raises(RateLimitError) as raised:
        resolved.complete(resolved.request("hi"))
    assert raised.value.retry_after == 7.0


@pytest.mark.parametrize(("scenario", "status", "words_in_message"), [
    ("server_error", 500, "server had an error"),
    ("bad_gateway", 502, "Bad Gateway"),
])
def test_server_failures_are_bad_responses(
    scenario: str, status: int, words_in_message: str, server: LocalServer, config_file: Path
) -> None:
    server.state.scenario = scenario
    _, result = stream_all(local(server, config_file))
    assert isinstance(result.error, BadResponseError)
    assert result.error.status_code == status and words_in_message in result.error.message
    assert "log" in (result.error.remedy or "")


def test_an_unavailable_server_is_reported_after_exactly_one_request(server: LocalServer, config_file: Path) -> None:
    server.state.script = ["unavailable", "ok"]  # 503 once, then fine: the plugin must not ride it out on its own
    server.state.options["unavailable_retry_after"] = "0"  # a retry would not even have to wait
    _, result = stream_all(local(server, config_file))
    assert isinstance(result.error, BadResponseError) and result.error.status_code == 503
    assert "overloaded" in result.error.message
    assert len(server.state.requests) == 1  # retries belong to the router, not the transport


def test_connection_refused_names_the_url_and_how_to_start_a_server(config_file: Path) -> None:
    port = refused_port()
    resolved = resolve(config_file, base_url=f"http://127.0.0.1:{port}/v1", model="m")
    _, result = stream_all(resolved)
    assert isinstance(result.error, UnreachableError)
    assert f"http://127.0.0.1:{port}/v1" in result.error.message
    remedy = result.error.remedy or ""
    assert "vllm serve" in remedy and f"llama-server -m FILE.gguf --port {port}" in remedy


def test_connection_reset_is_unreachable(server: LocalServer, config_file: Path) -> None:
    server.state.scenario = "reset"
    resolved = local(server, config_file)
    with pytest.raises(UnreachableError):
        resolved.complete(resolved.request("hi"))


def test_a_slow_first_byte_times_out_on_time(server: LocalServer, config_file: Path) -> None:
    server.state.scenario = "slow_first_byte"
    server.state.options["delay"] = 3.0
    resolved = local(server, config_file, timeout=0.4)
    started = time.perf_counter()
    _, result = stream_all(resolved)
    assert time.perf_counter() - started < 2.5
    assert isinstance(result.error, BackendTimeoutError) and "timeout" in (result.error.remedy or "")


@pytest.mark.parametrize(("scenario", "error_type"), [
    ("cut", BadResponseError),
    ("garbage", BadResponseError),
    ("error_event", BadResponseError),
])
def test_a_stream_that_breaks_keeps_the_text_so_far(
    scenario: str, error_type: type[BackendError], server: LocalServer, config_file: Path
) -> None:
    server.state.scenario = scenario
    server.state.options["tokens"] = 10
    events, result = stream_all(local(server, config_file))
    assert isinstance(events[-1], StreamError) and isinstance(result.error, error_type)
    assert result.text == "".join(list(words(10))[:3]) == events[-1].text
    assert ("cut off" if scenario == "cut" else "characters") in result.error.message


def test_stopping_a_stream_early_releases_it(server: LocalServer, config_file: Path) -> None:
    server.state.options["tokens"] = 5000
    server.state.options["batch"] = 1
    resolved = local(server, config_file)
    result = resolved.stream(resolved.request("hi"))
    iterator = cast(Generator[Any, None, None], iter(result))
    first = next(event for event in iterator if isinstance(event, TextDelta))
    iterator.close()  # what Ctrl-C / a TUI cancel does
    assert first.text == "w0 " and result.text == "w0 "
    assert resolved.complete(resolved.request("again")).text  # the pool is still usable


def test_the_cli_reports_failures_as_sentences(server: LocalServer, config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.helpers import run_cli

    server.state.scenario = "auth"
    keyed(server, config_file, monkeypatch)
    outcome = run_cli("chat", "--profile", "p", "hi")
    assert outcome.exit_code == 1
    assert "rejected key sk-…1234" in outcome.stderr and "MY_SERVER_KEY" in outcome.stderr
    assert "Traceback" not in outcome.output and SECRET not in outcome.output


# ---- health --------------------------------------------------------------------------------------------


def check_map(report: Any) -> dict[str, Any]:
    return {check.name: check for check in report.checks}


def test_health_of_a_working_server(server: LocalServer, config_file: Path) -> None:
    report = local(server, config_file).health(timeout=5)
    checks = check_map(report)
    assert report.status.value == "ok" and report.latency_s is not None
    assert checks["model"].status.value == "pass" and checks["server"].status.value == "pass"
    assert report.metrics["models_served"] == 2
    assert last_request(server).method == "GET" and last_request(server).path == "/v1/models"


def test_health_finds_an_unserved_model(server: LocalServer, config_file: Path) -> None:
    report = resolve(config_file, base_url=f"{server.url}/v1", model="nope").health(timeout=5)
    model = check_map(report)["model"]
    assert report.status.value == "down" and model.status.value == "fail"
    assert "gpt-4o-mini" in (model.remedy or "") and "test-model" in (model.remedy or "")


def test_health_with_a_refused_key(server: LocalServer, config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server.state.scenario = "auth"
    report = keyed(server, config_file, monkeypatch).health(timeout=5)
    checks = check_map(report)
    assert checks["key accepted"].status.value == "fail" and "MY_SERVER_KEY" in (checks["key accepted"].remedy or "")
    assert checks["model"].status.value == "skip"


def test_health_of_a_server_that_is_not_running(config_file: Path) -> None:
    port = refused_port()
    report = resolve(config_file, base_url=f"http://127.0.0.1:{port}/v1", model="m").health(timeout=5)
    server_check = check_map(report)["server"]
    assert report.status.value == "down" and server_check.status.value == "fail"
    assert "llama-server" in (server_check.remedy or "")


def test_health_offline_touches_nothing(server: LocalServer, config_file: Path) -> None:
    report = local(server, config_file).health(timeout=5, offline=True)
    assert server.state.requests == []
    assert {check_map(report)[name].status.value for name in ("server", "key accepted", "model")} == {"skip"}


def test_health_of_the_builtin_profile_without_a_key() -> None:
    report = Client().resolve("openai").health(timeout=5)
    key = check_map(report)["key"]
    assert key.status.value == "fail" and "OPENAI_API_KEY" in (key.remedy or "")
    assert check_map(report)["server"].status.value == "skip"  # nothing was sent without a key
