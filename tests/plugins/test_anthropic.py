"""The installed ``anthropic`` plugin, reached through its entry point (on the toolkit, no SDK), against a local
server that speaks Anthropic's Messages API (JSON and SSE with ``event:`` lines) over a real socket,
including every way the real one fails."""

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
    LLMSwitchError,
    ModelNotFoundError,
    RateLimitError,
    UnreachableError,
    UnsupportedOptionError,
)
from llmswitch.plugins import get_registry
from llmswitch.pricing import load_table
from llmswitch.profiles import builtin_profiles
from llmswitch.types import (
    CheckStatus,
    Message,
    Status,
    StreamEnd,
    StreamError,
    Target,
    TextDelta,
    UsageEvent,
)
from tests.servers.anthropic_server import anthropic_server
from tests.servers.http import LocalServer, refused_port

SECRET = "sk-ant-api03-THISISASECRETKEYTHATMUSTNEVERSHOW-9876"
ANSWER = "w0 w1 w2 w3 w4 "

# These tests are about what one request does; the router's retries are tested in tests/test_router_*.py.
ONE_REQUEST = {"max_retries": 0}


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with anthropic_server() as running:
        running.state.options["key"] = SECRET
        yield running


def resolve(config_file: Path, name: str = "claude", **values: Any) -> ResolvedProfile:
    """Write one anthropic profile to the test's config file and resolve it through the registry."""
    config_file.write_text(tomli_w.dumps({"profiles": {name: {"backend": "anthropic", **ONE_REQUEST, **values}}}))
    return Client().resolve(name)


def local(server: LocalServer, config_file: Path, **values: Any) -> ResolvedProfile:
    values = {"base_url": server.url, "model": "claude-haiku-4-5", "api_key": SECRET, "timeout": 5.0, **values}
    return resolve(config_file, **values)


def stream_all(resolved: ResolvedProfile, prompt: str = "Say hello", **settings: Any) -> tuple[list[Any], Any]:
    result = resolved.stream(resolved.request(prompt, **settings))
    return list(result), result


def failure(resolved: ResolvedProfile) -> tuple[StreamError, str]:
    events, result = stream_all(resolved)
    assert isinstance(events[-1], StreamError), events
    return events[-1], result.text


def sent(server: LocalServer, path: str = "/v1/messages") -> Any:
    matching = [r for r in server.state.requests if r.path.split("?")[0] == path]
    assert matching, f"no request to {path}: {server.state.requests}"
    return matching[-1]


def sent_key(request: Any) -> str | None:
    if "x-api-key" in request.headers:
        return str(request.headers["x-api-key"])
    authorization = request.headers.get("authorization", "")
    return authorization.removeprefix("Bearer ") if authorization else None


# ---- discovery, data, import cost ---------------------------------------------------------------------


def test_the_backend_comes_from_the_installed_distribution() -> None:
    handle = get_registry().backend("anthropic")
    assert handle.plugin.distribution == "llmswitch-anthropic"
    assert set(handle.hooks) == {"complete", "stream", "acomplete", "astream", "astream_batches", "count_tokens",
                                 "health", "ahealth", "batch_line", "batch_submit", "batch_retrieve", "batch_results",
                                 "batch_cancel"}
    info = handle.info
    assert (info.key_env, info.base_url_env, info.default_base_url) == (
        "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "https://api.anthropic.com")
    api_key = info.option("api_key")
    assert api_key is not None and api_key.secret


def test_the_price_table_has_date_source_and_the_builtin_profiles_model() -> None:
    table = load_table(get_registry().backend("anthropic").info)
    assert table is not None and table.error is None
    assert table.date and table.source and "claude.com" in table.source
    info = get_registry().backend("anthropic").info
    assert info.default_model is not None and table.lookup(info.default_model) is not None
    price = table.lookup(builtin_profiles()["anthropic"]["model"])
    assert price is not None and price.known and price.context_window and price.max_output
    assert table.lookup(builtin_profiles()["anthropic"]["model"] + "-20260101") == price  # a dated snapshot costs the same
    assert price.cached_input_per_mtok is not None
    assert price.cached_input_per_mtok < price.input_per_mtok < price.output_per_mtok  # type: ignore[operator]


def test_loading_the_plugin_imports_neither_the_sdk_nor_its_http_client() -> None:
    code = (
        "import sys; from llmswitch.plugins import get_registry; get_registry().backend('anthropic'); "
        "import llmswitch_anthropic; "
        "print(sorted(m for m in ('anthropic', 'httpx2', 'httpx', 'pydantic') if m in sys.modules))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


# ---- answers -------------------------------------------------------------------------------------------


def test_stream_yields_text_then_usage_then_end(server: LocalServer, config_file: Path) -> None:
    events, result = stream_all(local(server, config_file))
    kinds = [type(event) for event in events]
    assert kinds == [TextDelta] * 5 + [UsageEvent, StreamEnd]
    assert result.text == ANSWER
    usage = events[-2].usage
    assert (usage.input_tokens, usage.output_tokens) == (5, 5)
    assert events[-1] == StreamEnd("stop", "claude-haiku-4-5-20251001")
    body = sent(server).body
    assert body["stream"] is True and body["model"] == "claude-haiku-4-5"
    assert body["messages"] == [{"role": "user", "content": "Say hello"}]


def test_complete_returns_the_whole_message(server: LocalServer, config_file: Path) -> None:
    resolved = local(server, config_file)
    response = resolved.complete(resolved.request("Say hello"))
    assert response.text == ANSWER
    assert response.finish_reason == "stop"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (5, 5)
    assert response.model == "claude-haiku-4-5-20251001"
    assert "stream" not in sent(server).body


def test_max_tokens_stop_reason_reads_as_length(server: LocalServer, config_file: Path) -> None:
    server.state.options["stop_reason"] = "max_tokens"
    events, _ = stream_all(local(server, config_file))
    assert events[-1].finish_reason == "length"


def test_thinking_is_not_part_of_the_answer(server: LocalServer, config_file: Path) -> None:
    server.state.options["thinking"] = True
    resolved = local(server, config_file)
    _, result = stream_all(resolved)
    assert result.text == ANSWER and result.error is None
    assert resolved.complete(resolved.request("hi")).text == ANSWER


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
    iterator.close()  # what Ctrl-C in the CLI or cancel in the TUI does
    assert result.interrupted or result.error is None
    server.state.options["tokens"] = 5
    _, again = stream_all(resolved)
    assert again.text == ANSWER


# ---- parameter mapping ---------------------------------------------------------------------------------


def test_generation_settings_are_mapped_to_the_messages_api(server: LocalServer, config_file: Path) -> None:
    resolved = local(server, config_file)
    conversation = [Message("system", "Answer briefly."), Message("user", "Hi"), Message("assistant", "Hello"),
                    Message("user", "More")]
    list(resolved.stream(resolved.request(conversation, system="You are terse.", temperature=0.3, top_p=0.9,
                                          top_k=40, max_tokens=77, stop=["END", "STOP"])))
    body = sent(server).body
    assert body["system"] == "You are terse.\n\nAnswer briefly."
    assert body["messages"] == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                                {"role": "user", "content": "More"}]
    assert (body["temperature"], body["top_p"], body["top_k"], body["max_tokens"]) == (0.3, 0.9, 40, 77)
    assert body["stop_sequences"] == ["END", "STOP"]


def test_profile_defaults_fill_the_request_and_max_tokens_has_a_default(
    server: LocalServer, config_file: Path
) -> None:
    list(local(server, config_file).stream(local(server, config_file).request("hi")))
    assert sent(server).body["max_tokens"] == 4096  # required by the API: never left out
    for absent in ("temperature", "top_p", "top_k", "stop_sequences", "system"):
        assert absent not in sent(server).body
    resolved = local(server, config_file, temperature=0.1, max_tokens=300, system="Be kind.")
    list(resolved.stream(resolved.request("hi")))
    body = sent(server).body
    assert (body["temperature"], body["max_tokens"], body["system"]) == (0.1, 300, "Be kind.")


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"seed": 7}, "seed"),
        ({"temperature": 1.5}, "between 0 and 1"),
        ({"top_p": 2.0}, "between 0 and 1"),
        ({"top_k": 0}, "top_k"),
        ({"num_ctx": 4096}, "num_ctx"),  # an extra another backend knows: reported, not dropped
    ],
)
def test_settings_anthropic_cannot_honour_are_refused_before_sending(
    server: LocalServer, config_file: Path, settings: dict[str, Any], says: str
) -> None:
    resolved = local(server, config_file)
    with pytest.raises(UnsupportedOptionError) as caught:
        resolved.stream(resolved.request("hi", **settings))
    assert says in str(caught.value) and caught.value.remedy
    with pytest.raises(UnsupportedOptionError):
        resolved.complete(resolved.request("hi", **settings))
    assert server.state.requests == []


def test_headers_and_anthropic_version_options_are_sent(server: LocalServer, config_file: Path) -> None:
    resolved = local(server, config_file, headers={"X-Team": "search", "X-Num": 7},
                     anthropic_version="2023-06-01")
    list(resolved.stream(resolved.request("hi")))
    headers = sent(server).headers
    assert (headers["x-team"], headers["x-num"], headers["anthropic-version"]) == ("search", "7", "2023-06-01")


# ---- keys ----------------------------------------------------------------------------------------------


def test_the_key_from_the_environment_reaches_the_server(
    server: LocalServer, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    server.state.scenario = "require_key"
    resolved = resolve(config_file, base_url=server.url, model="claude-haiku-4-5",
                       api_key_env="ANTHROPIC_API_KEY", timeout=5.0)
    _, result = stream_all(resolved)
    assert result.error is None and result.text == ANSWER
    assert sent_key(sent(server)) == SECRET


def test_a_custom_base_url_never_receives_the_provider_key_unasked(
    server: LocalServer, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    resolved = resolve(config_file, base_url=server.url, model="claude-haiku-4-5", timeout=5.0)
    _, result = stream_all(resolved)
    assert result.error is None
    assert sent_key(sent(server)) is None
    assert SECRET not in repr(sent(server).headers)


def test_a_rejected_key_names_its_variable_and_never_shows_in_full(
    server: LocalServer, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    server.state.scenario = "auth"
    resolved = resolve(config_file, base_url=server.url, api_key_env="ANTHROPIC_API_KEY", timeout=5.0)
    event, _ = failure(resolved)
    error = event.error
    assert isinstance(error, AuthError) and error.status_code == 401
    assert "ANTHROPIC_API_KEY" in (error.remedy or "") and "sk-…9876" in error.message
    assert SECRET not in error.message + (error.remedy or "")
    with pytest.raises(AuthError):
        resolved.complete(resolved.request("hi"))


def test_a_server_that_wants_a_key_when_none_was_sent(server: LocalServer, config_file: Path) -> None:
    server.state.scenario = "require_key"
    event, _ = failure(resolve(config_file, base_url=server.url, timeout=5.0))
    assert isinstance(event.error, AuthError)
    assert "none was sent" in event.error.message and "api_key_env" in (event.error.remedy or "")


# ---- failures ------------------------------------------------------------------------------------------


def test_forbidden_is_an_auth_error(server: LocalServer, config_file: Path) -> None:
    server.state.scenario = "forbidden"
    event, _ = failure(local(server, config_file))
    assert isinstance(event.error, AuthError) and event.error.status_code == 403


def test_unknown_model_suggests_a_close_name(server: LocalServer, config_file: Path) -> None:
    event, _ = failure(local(server, config_file, model="claude-sonet-4-5"))
    assert isinstance(event.error, ModelNotFoundError) and event.error.status_code == 404
    assert "claude-sonet-4-5" in event.error.message
    assert "claude-sonnet-4-5" in (event.error.remedy or "")


def test_a_wrong_base_url_path_is_not_called_a_missing_model(server: LocalServer, config_file: Path) -> None:
    event, _ = failure(local(server, config_file, base_url=f"{server.url}/v1"))
    assert isinstance(event.error, ModelNotFoundError)
    assert "no Messages API" in event.error.message and "without /v1" in (event.error.remedy or "")


def test_a_model_that_refuses_sampling_settings_says_which_to_remove(
    server: LocalServer, config_file: Path
) -> None:
    server.state.scenario = "no_sampling"
    resolved = local(server, config_file, model="claude-sonnet-5-5", temperature=0.2)
    event, _ = failure(resolved)
    assert isinstance(event.error, BackendError) and event.error.status_code == 400
    assert "temperature" in event.error.message and "remove it" in (event.error.remedy or "")
    _, without = stream_all(local(server, config_file, model="claude-sonnet-5-5"))
    assert without.error is None


def test_rate_limit_carries_retry_after(server: LocalServer, config_file: Path) -> None:
    server.state.scenario = "rate_limit"
    server.state.options["retry_after"] = 12
    resolved = local(server, config_file)
    event, _ = failure(resolved)
    assert isinstance(event.error, RateLimitError) and event.error.retry_after == 12.0
    assert "12 s" in (event.error.remedy or "")
    with pytest.raises(RateLimitError) as caught:
        resolved.complete(resolved.request("hi"))
    assert caught.value.retry_after == 12.0


@pytest.mark.parametrize(
    ("scenario", "status", "says"),
    [("server_error", 500, "HTTP 500"), ("overloaded", 529, "overloaded"), ("bad_gateway", 502, "HTTP 502")],
)
def test_server_failures_are_bad_responses_with_a_remedy(
    server: LocalServer, config_file: Path, scenario: str, status: int, says: str
) -> None:
    server.state.scenario = scenario
    resolved = local(server, config_file)
    event, _ = failure(resolved)
    assert isinstance(event.error, BadResponseError) and event.error.status_code == status
    assert says in event.error.message and event.error.remedy
    with pytest.raises(BadResponseError):
        resolved.complete(resolved.request("hi"))


def test_a_page_instead_of_an_answer_is_a_bad_response(server: LocalServer, config_file: Path) -> None:
    server.state.scenario = "html_page"
    resolved = local(server, config_file)
    event, _ = failure(resolved)
    assert isinstance(event.error, BadResponseError) and "an HTML page, not a Messages API answer" in event.error.message
    with pytest.raises(BadResponseError, match="an HTML page"):
        resolved.complete(resolved.request("hi"))


def test_an_overloaded_server_is_reported_after_exactly_one_request(server: LocalServer, config_file: Path) -> None:
    server.state.scenario = "flaky"  # 529 once, then fine: the plugin must not ride it out on its own
    _, result = stream_all(local(server, config_file))
    assert isinstance(result.error, BadResponseError) and "overloaded" in result.error.message
    assert len(server.state.requests) == 1  # retries belong to the router, not the transport


def test_max_retries_is_the_routers_a_529_is_retried_there_once(server: LocalServer, config_file: Path) -> None:
    server.state.scenario = "flaky"  # 529 once, then fine
    _, result = stream_all(local(server, config_file, max_retries=2, backoff_base_s=0.01))
    assert result.error is None and result.text
    assert [(attempt.outcome, attempt.status) for attempt in result.attempts] == [("bad_response", 529), ("ok", None)]
    assert len(server.state.requests) == 2


@pytest.mark.parametrize(
    ("scenario", "kind", "says"),
    [
        ("error_event", BadResponseError, "overloaded"),
        ("cut", BadResponseError, "cut off"),
        ("no_stop", BadResponseError, "cut off"),
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


def test_connection_reset_before_the_answer(server: LocalServer, config_file: Path) -> None:
    server.state.scenario = "reset"
    event, text = failure(local(server, config_file))
    assert isinstance(event.error, UnreachableError) and "reset" in event.error.message
    assert text == ""


def test_connection_refused_names_the_url(config_file: Path) -> None:
    url = f"http://127.0.0.1:{refused_port()}"
    resolved = resolve(config_file, base_url=url, api_key=SECRET, timeout=5.0)
    event, _ = failure(resolved)
    assert isinstance(event.error, UnreachableError)
    assert url in event.error.message and "running" in (event.error.remedy or "")
    with pytest.raises(UnreachableError):
        resolved.complete(resolved.request("hi"))


def test_no_first_byte_within_the_timeout(server: LocalServer, config_file: Path) -> None:
    server.state.scenario = "slow_first_byte"
    server.state.options["delay"] = 2.0
    resolved = local(server, config_file, timeout=0.4)
    event, text = failure(resolved)
    assert isinstance(event.error, BackendTimeoutError) and text == ""
    assert "0.4 s" in event.error.message and "timeout" in (event.error.remedy or "")


# ---- count_tokens --------------------------------------------------------------------------------------


def test_count_tokens_asks_the_counting_endpoint(server: LocalServer, config_file: Path) -> None:
    server.state.options["count"] = 1234
    resolved = local(server, config_file)
    count = resolved.count_tokens(resolved.request("How many?", system="Count well."))
    assert (count.n, count.exact) == (1234, True)
    body = sent(server, "/v1/messages/count_tokens").body
    assert body["system"] == "Count well." and body["messages"] == [{"role": "user", "content": "How many?"}]
    assert "max_tokens" not in body


def test_count_tokens_estimates_when_the_endpoint_is_missing(server: LocalServer, config_file: Path) -> None:
    server.state.scenario = "no_count"
    resolved = local(server, config_file)
    count = resolved.count_tokens(resolved.request("word " * 40))
    assert not count.exact and count.n > 0 and "count_tokens failed" in count.method


def test_count_tokens_can_be_kept_offline(server: LocalServer, config_file: Path) -> None:
    resolved = local(server, config_file, count_with_api=False)
    count = resolved.count_tokens(resolved.request("word " * 40))
    assert not count.exact and server.state.requests == []


def test_count_tokens_without_a_key_does_not_call_anthropic(config_file: Path) -> None:
    resolved = resolve(config_file, timeout=0.2)  # api.anthropic.com, and no key anywhere
    count = resolved.count_tokens(resolved.request("hello"))
    assert not count.exact and "no API key" in count.method


# ---- health --------------------------------------------------------------------------------------------


def statuses(report: Any) -> dict[str, CheckStatus]:
    return {check.name: check.status for check in report.checks}


def test_health_reports_reachable_authorised_and_the_model(server: LocalServer, config_file: Path) -> None:
    report = local(server, config_file).health(timeout=5)
    assert report.status is Status.OK
    assert statuses(report) == {"key": CheckStatus.PASS, "reachable": CheckStatus.PASS,
                                "authorised": CheckStatus.PASS, "model": CheckStatus.PASS}
    assert report.latency_s is not None and report.latency_s >= 0
    assert sent(server, "/v1/models").method == "GET"


def test_health_warns_about_a_deprecated_model(server: LocalServer, config_file: Path) -> None:
    report = local(server, config_file, model="claude-sonnet-4-5").health(timeout=5)
    model = next(check for check in report.checks if check.name == "model")
    assert model.status is CheckStatus.WARN and "end of life" in model.detail
    assert report.status is Status.DEGRADED


def test_health_names_served_models_when_the_profiles_is_not(server: LocalServer, config_file: Path) -> None:
    report = local(server, config_file, model="claude-haiku-3").health(timeout=5)
    model = next(check for check in report.checks if check.name == "model")
    assert model.status is CheckStatus.FAIL and "claude-haiku-4-5-20251001" in (model.remedy or "")
    assert report.status is Status.DOWN


def test_health_with_a_rejected_key(server: LocalServer, config_file: Path) -> None:
    server.state.scenario = "auth"
    report = local(server, config_file).health(timeout=5)
    checks = {check.name: check for check in report.checks}
    assert checks["reachable"].status is CheckStatus.PASS
    assert checks["authorised"].status is CheckStatus.FAIL and "ANTHROPIC_API_KEY" in (checks["authorised"].remedy or "")
    assert SECRET not in repr(report)


def test_health_when_nothing_listens(config_file: Path) -> None:
    report = resolve(config_file, base_url=f"http://127.0.0.1:{refused_port()}", api_key=SECRET).health(timeout=2)
    reachable = next(check for check in report.checks if check.name == "reachable")
    assert report.status is Status.DOWN and reachable.status is CheckStatus.FAIL and reachable.remedy


def test_health_without_a_key_for_anthropic_says_which_variable(config_file: Path) -> None:
    report = resolve(config_file).health(timeout=0.5)
    key = report.checks[0]
    assert key.name == "key" and key.status is CheckStatus.FAIL and "ANTHROPIC_API_KEY" in (key.remedy or "")
    assert statuses(report)["reachable"] is CheckStatus.SKIP  # nothing was sent to api.anthropic.com


def test_health_offline_touches_nothing(server: LocalServer, config_file: Path) -> None:
    report = local(server, config_file).health(timeout=5, offline=True)
    assert statuses(report)["reachable"] is CheckStatus.SKIP and server.state.requests == []


# ---- through the CLI -----------------------------------------------------------------------------------


def write_profile(config_file: Path, server: LocalServer, **values: Any) -> None:
    profile = {"backend": "anthropic", "base_url": server.url, "model": "claude-haiku-4-5", "api_key": SECRET,
               "timeout": 5.0, **values}
    config_file.write_text(tomli_w.dumps({"profiles": {"claude": profile}}))


def test_cli_chat_prints_only_the_answer(server: LocalServer, config_file: Path) -> None:
    from tests.helpers import run_cli

    write_profile(config_file, server)
    result = run_cli("chat", "--profile", "claude", "-o", "temperature", "0.5", "hi")
    assert result.exit_code == 0, result
    assert result.stdout == ANSWER + "\n"
    assert sent(server).body["temperature"] == 0.5


def test_cli_chat_failures_are_sentences_with_hints(server: LocalServer, config_file: Path) -> None:
    from tests.helpers import run_cli

    write_profile(config_file, server)
    server.state.scenario = "auth"
    rejected = run_cli("chat", "--profile", "claude", "hi")
    assert rejected.exit_code == 1 and "error:" in rejected.stderr and "hint:" in rejected.stderr
    assert "Traceback" not in rejected.output and SECRET not in rejected.output
    server.state.scenario = "cut"
    cut = run_cli("chat", "--profile", "claude", "hi")
    assert cut.exit_code == 1 and cut.stdout.startswith("w0 w1 w2") and "cut off" in cut.stderr
    seeded = run_cli("chat", "--profile", "claude", "-o", "seed", "3", "hi")
    assert seeded.exit_code == 2 and "seed" in seeded.stderr and "Traceback" not in seeded.output


# ---- another server speaking the Messages API -------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["forbidden", "rate_limit", "billing", "invalid"])
def test_hints_name_the_server_when_it_is_not_anthropic(server: LocalServer, config_file: Path, scenario: str) -> None:
    server.state.scenario = scenario
    event, _ = failure(local(server, config_file))
    said = f"{event.error.message} {event.error.remedy}"
    assert "Anthropic" not in said, said  # a proxy's limits, billing and access are not Anthropic's
    assert server.url in said, said
    with pytest.raises(LLMSwitchError) as raised:
        resolved = local(server, config_file)
        resolved.complete(resolved.request("hi"))
    assert "Anthropic" not in f"{raised.value.message} {raised.value.remedy}"


def test_settings_refused_before_sending_name_the_server(server: LocalServer, config_file: Path) -> None:
    resolved = local(server, config_file, temperature=1.5)
    with pytest.raises(UnsupportedOptionError) as raised:
        resolved.stream(resolved.request("hi"))
    assert server.url in raised.value.message and "Anthropic" not in raised.value.message
    assert server.state.requests == []


def test_anthropics_own_api_still_points_at_its_console() -> None:
    from llmswitch_anthropic.errors import from_error_body

    target = Target(profile="claude", backend="anthropic", model="claude-sonnet-5-5", base_url=None)
    for kind, status in (("permission_error", 403), ("rate_limit_error", 429), ("billing_error", 402)):
        error = from_error_body(target, status, {"type": "error", "error": {"type": kind, "message": "no"}})
        assert "Anthropic console" in (error.remedy or ""), error.remedy
