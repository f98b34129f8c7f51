"""``llmswitch serve`` with the official openai and anthropic SDKs as its clients, over real sockets on 127.0.0.1:
the gateway serving echo and the OpenAI protocol test server (tests/servers/openai_server.py) as upstream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2 as httpx
import openai
import pytest
import tomli_w

from llmswitch.ledger import Ledger
from tests.servers.gateway import RunningGateway, reset_upstream
from tests.servers.http import LocalServer
from tests.servers.openai_server import openai_server

UPSTREAM_KEY = "sk-proj-UPSTREAMKEYTHATNOCLIENTMAYEVERSEE9876"


@pytest.fixture(scope="module")
def shared_upstream() -> Iterator[LocalServer]:
    with openai_server() as running:
        yield running


@pytest.fixture
def upstream(shared_upstream: LocalServer) -> LocalServer:
    return reset_upstream(shared_upstream)


def write_profiles(config_file: Path, upstream: LocalServer, **extra: dict[str, Any]) -> None:
    profiles = {
        "up": {"backend": "openai", "model": "test-model", "base_url": f"{upstream.url}/v1",
               "api_key": UPSTREAM_KEY, "timeout": 10.0},
        "slow-echo": {"backend": "echo", "chunk_size": 2, "delay": 0.05},
        **extra,
    }
    config_file.write_text(tomli_w.dumps({"profiles": profiles}))


@pytest.fixture
def gateway(config_file: Path, upstream: LocalServer) -> Iterator[RunningGateway]:
    write_profiles(config_file, upstream)
    with RunningGateway() as running:
        yield running


def openai_client(gateway: RunningGateway, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0, timeout=20)


def anthropic_client(gateway: RunningGateway, key: str = "unused") -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0, timeout=20)


def ledger_rows() -> list[Any]:
    with Ledger() as ledger:
        return ledger.entries()


# ---- OpenAI protocol -------------------------------------------------------------------------------------


def test_openai_sdk_gets_a_whole_answer_from_echo_with_usage(gateway: RunningGateway) -> None:
    answer = openai_client(gateway).chat.completions.create(
        model="echo", messages=[{"role": "system", "content": "be brief"},
                                {"role": "user", "content": "hello gateway world"}])
    assert answer.choices[0].message.content == "hello gateway world"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.model == "echo"
    assert answer.usage is not None and answer.usage.completion_tokens == 3
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + 3
    rows = ledger_rows()
    assert [(row.profile, row.outcome) for row in rows] == [("echo", "ok")]


def test_openai_sdk_streams_from_echo_and_gets_the_usage_chunk(gateway: RunningGateway) -> None:
    stream = openai_client(gateway).chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "one two three four five"}], stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "one two three four five"
    assert len([chunk for chunk in chunks if chunk.choices and chunk.choices[0].delta.content]) > 1  # streamed
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 5
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] == "stop"


def test_without_include_usage_no_usage_chunk_is_sent(gateway: RunningGateway) -> None:
    chunks = list(openai_client(gateway).chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert all(chunk.usage is None for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_openai_sdk_through_a_protocol_server_upstream(gateway: RunningGateway, upstream: LocalServer) -> None:
    upstream.state.options.update(tokens=30)
    client = openai_client(gateway, key="client-side-key")
    whole = client.chat.completions.create(model="up", messages=[{"role": "user", "content": "count"}],
                                           max_tokens=100, temperature=0.5)
    assert whole.choices[0].message.content == "".join(f"w{i} " for i in range(30))
    assert whole.usage is not None and whole.usage.completion_tokens == 30
    sent = upstream.state.requests[-1]
    assert sent.body["model"] == "test-model"  # the profile's model, whatever the client named
    assert sent.body["max_tokens"] == 100 and sent.body["temperature"] == 0.5
    assert sent.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"  # the client's key never goes upstream
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in client.chat.completions.create(
        model="up", messages=[{"role": "user", "content": "count"}], stream=True) if chunk.choices)
    assert streamed == whole.choices[0].message.content


def test_the_upstream_key_never_reaches_a_client(gateway: RunningGateway, upstream: LocalServer) -> None:
    upstream.state.scenario = "auth"  # the upstream refuses the key: the error a client sees must not carry it
    seen: list[str] = []
    for stream in (False, True):
        response = httpx.post(f"{gateway.base_url}/chat/completions", json={
            "model": "up", "messages": [{"role": "user", "content": "x"}], "stream": stream})
        seen.append(response.text + json.dumps(dict(response.headers)))
        assert response.status_code == 502
    models = httpx.get(f"{gateway.base_url}/models")
    assert UPSTREAM_KEY not in "".join(seen) + models.text
    assert UPSTREAM_KEY[-4:] not in "".join(seen)


def test_models_lists_every_profile_for_both_sdks(gateway: RunningGateway) -> None:
    ids = [model.id for model in openai_client(gateway).models.list()]
    assert {"echo", "up", "slow-echo"} <= set(ids)
    assert [model.id for model in anthropic_client(gateway).models.list()] == ids


def test_only_the_profiles_asked_for_are_served(config_file: Path, upstream: LocalServer) -> None:
    write_profiles(config_file, upstream)
    with RunningGateway(profiles=["echo"]) as running:
        client = openai_client(running)
        assert [model.id for model in client.models.list()] == ["echo"]
        with pytest.raises(openai.NotFoundError) as caught:
            client.chat.completions.create(model="up", messages=[{"role": "user", "content": "x"}])
        assert "no profile named 'up'" in caught.value.message


# ---- errors ------------------------------------------------------------------------------------------------


def test_an_upstream_rate_limit_is_a_429_with_retry_after_in_both_shapes(
        gateway: RunningGateway, upstream: LocalServer) -> None:
    upstream.state.scenario = "rate_limit"
    upstream.state.options["retry_after"] = 7
    with pytest.raises(openai.RateLimitError) as from_openai:
        openai_client(gateway).chat.completions.create(model="up", messages=[{"role": "user", "content": "x"}],
                                                       stream=True)
    assert from_openai.value.status_code == 429
    assert from_openai.value.response.headers["retry-after"] == "7"
    assert from_openai.value.code == "rate_limit_exceeded"
    with pytest.raises(anthropic.RateLimitError) as from_anthropic:
        anthropic_client(gateway).messages.create(model="up", max_tokens=50,
                                                  messages=[{"role": "user", "content": "x"}])
    assert from_anthropic.value.response.headers["retry-after"] == "7"
    assert from_anthropic.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]


def test_an_unknown_model_is_a_404_naming_close_profiles(gateway: RunningGateway) -> None:
    with pytest.raises(openai.NotFoundError) as from_openai:
        openai_client(gateway).chat.completions.create(model="ech", messages=[{"role": "user", "content": "x"}])
    assert "'echo'" in from_openai.value.message
    assert from_openai.value.code == "model_not_found"
    with pytest.raises(anthropic.NotFoundError) as from_anthropic:
        anthropic_client(gateway).messages.create(model="ech", max_tokens=5,
                                                  messages=[{"role": "user", "content": "x"}])
    assert from_anthropic.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


def test_what_llmswitch_cannot_honour_is_refused_not_dropped(gateway: RunningGateway) -> None:
    client = openai_client(gateway)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "x"}], n=2)
    assert "'n' is not supported" in caught.value.message
    with pytest.raises(openai.BadRequestError, match="image_url"):
        client.chat.completions.create(model="echo", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:,"}}]}])
    # defaults that change nothing are fine
    answer = client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "ok"}], n=1,
                                            presence_penalty=0)
    assert answer.choices[0].message.content == "ok"
    with pytest.raises(anthropic.BadRequestError, match="max_tokens"):
        anthropic_client(gateway).messages.create(model="echo", max_tokens=None,  # type: ignore[arg-type]
                                                  messages=[{"role": "user", "content": "x"}])


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
@pytest.mark.parametrize("value", [0, -5])
def test_a_max_tokens_below_one_is_a_400_naming_the_field(gateway: RunningGateway, upstream: LocalServer,
                                                           field: str, value: int) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client(gateway).chat.completions.create(model="up", messages=[{"role": "user", "content": "x"}],
                                                       **{field: value})  # type: ignore[call-overload]
    assert caught.value.status_code == 400
    assert caught.value.param == field and caught.value.type == "invalid_request_error"
    assert f"'{field}' must be at least 1, not {value}" in caught.value.message
    assert upstream.state.requests == []  # refused here, not 502 from an upstream that got it


@pytest.mark.parametrize("value", [0, -5])
def test_an_anthropic_max_tokens_below_one_is_a_400_in_its_shape(gateway: RunningGateway, upstream: LocalServer,
                                                                  value: int) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        anthropic_client(gateway).messages.create(model="up", max_tokens=value,
                                                  messages=[{"role": "user", "content": "x"}])
    assert caught.value.body == {"type": "error", "error": {  # type: ignore[comparison-overlap]
        "type": "invalid_request_error", "message": f"'max_tokens' must be at least 1, not {value}"}}
    assert upstream.state.requests == []


@pytest.mark.parametrize(("path", "field", "literal", "shown"), [
    ("/v1/chat/completions", "temperature", "NaN", "NaN"),
    ("/v1/chat/completions", "top_p", "Infinity", "Infinity"),
    ("/v1/chat/completions", "temperature", "1e999", "Infinity"),
    ("/v1/chat/completions", "temperature", "1" + "0" * 400, "an integer that large"),
    ("/v1/messages", "temperature", "-Infinity", "-Infinity"),
    ("/v1/messages", "top_p", "NaN", "NaN"),
])
def test_a_number_that_is_not_finite_is_a_400_naming_the_field_in_both_protocols(
        gateway: RunningGateway, upstream: LocalServer, path: str, field: str, literal: str, shown: str) -> None:
    # Python's JSON reader takes NaN and Infinity, which no upstream does: it was a 500 "the backend plugin failed"
    body = ('{"model": "up", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], '
            f'"{field}": {literal}}}')
    response = httpx.post(gateway.url + path, content=body.encode(), headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"] == f"'{field}' must be a finite number, not {shown}"
    if path == "/v1/chat/completions":
        assert error["param"] == field
    assert upstream.state.requests == []


def test_max_completion_tokens_wins_over_max_tokens(gateway: RunningGateway, upstream: LocalServer) -> None:
    openai_client(gateway).chat.completions.create(model="up", messages=[{"role": "user", "content": "x"}],
                                                   max_completion_tokens=7, max_tokens=900)
    assert upstream.state.requests[-1].body["max_tokens"] == 7


def test_a_body_that_is_not_json_is_a_400_in_the_protocols_shape(gateway: RunningGateway) -> None:
    response = httpx.post(f"{gateway.base_url}/chat/completions", content=b"{not json")
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]["message"]
    response = httpx.post(f"{gateway.url}/v1/messages", content=b"[]")
    assert response.status_code == 400 and response.json()["type"] == "error"


def test_a_failure_mid_stream_ends_with_an_error_event_after_the_text(
        gateway: RunningGateway, upstream: LocalServer) -> None:
    upstream.state.scenario = "cut"
    upstream.state.options.update(tokens=40)
    received: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in openai_client(gateway).chat.completions.create(
                model="up", messages=[{"role": "user", "content": "x"}], stream=True):
            if chunk.choices:
                received.append(chunk.choices[0].delta.content or "")
    assert "".join(received).startswith("w0 w1 ")  # the text that arrived reached the client first
    assert "stream cut off" in caught.value.message and "profile 'up'" in caught.value.message
    texts: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as from_anthropic, anthropic_client(gateway).messages.stream(
            model="up", max_tokens=100, messages=[{"role": "user", "content": "x"}]) as stream:
        texts.extend(stream.text_stream)
    assert "".join(texts).startswith("w0 w1 ")
    assert from_anthropic.value.body["error"]["type"] == "api_error"  # type: ignore[index]
    outcomes = [row.outcome for row in ledger_rows()]
    assert outcomes == ["bad_response", "bad_response"]


def test_a_missing_upstream_key_is_asked_once_names_the_profile_and_tells_the_operator_how(
        config_file: Path, upstream: LocalServer, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("LLMSWITCH_TEST_ABSENT_KEY", raising=False)
    write_profiles(config_file, upstream, nokey={"backend": "openai", "model": "test-model",
                                                 "base_url": f"{upstream.url}/v1",
                                                 "api_key_env": "LLMSWITCH_TEST_ABSENT_KEY"})
    sent: list[str] = []
    count = {"event_hooks": {"request": [lambda request: sent.append(request.url.path)]}}
    with RunningGateway() as running, caplog.at_level("WARNING", logger="llmswitch.serve"):
        # The SDKs as shipped: two retries on a 5xx, unless the server says not to.
        openai_sdk = openai.OpenAI(base_url=running.base_url, api_key="unused", http_client=httpx.Client(**count))
        with pytest.raises(openai.InternalServerError) as from_openai:
            openai_sdk.chat.completions.create(model="nokey", messages=[{"role": "user", "content": "x"}])
        anthropic_sdk = anthropic.Anthropic(base_url=running.url, api_key="unused", http_client=httpx.Client(**count))
        with pytest.raises(anthropic.InternalServerError) as from_anthropic:
            anthropic_sdk.messages.create(model="nokey", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert sent == ["/v1/chat/completions", "/v1/messages"]  # each asked once: no retry of what cannot pass
    for caught in (from_openai.value, from_anthropic.value):
        assert caught.status_code == 500 and caught.response.headers["x-should-retry"] == "false"
        assert "no key for this profile's upstream" in caught.message and "profile 'nokey'" in caught.message
        assert "LLMSWITCH_TEST_ABSENT_KEY" not in caught.message  # the operator's business, in the log
    logged = [record.getMessage() for record in caplog.records]
    assert len(logged) == 2 and all(line.startswith("profile nokey: ") for line in logged), logged
    assert "export LLMSWITCH_TEST_ABSENT_KEY=..." in logged[0] and "restart `llmswitch serve`" in logged[0]
    assert "--api-key" not in logged[0]  # serve has no such flag
    assert upstream.state.requests == []


def test_an_upstream_that_refuses_the_gateways_key_is_asked_once(gateway: RunningGateway,
                                                                   upstream: LocalServer) -> None:
    upstream.state.scenario = "auth"
    with pytest.raises(openai.APIStatusError) as caught:  # the SDK's default retries
        openai.OpenAI(base_url=gateway.base_url, api_key="unused").chat.completions.create(
            model="up", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 502 and caught.value.response.headers["x-should-retry"] == "false"
    assert "refused the gateway's credentials" in caught.value.message
    assert len(upstream.state.requests) == 1


def counting_sdks(running: RunningGateway, sent: list[str]) -> tuple[openai.OpenAI, anthropic.Anthropic]:
    """Both SDKs as shipped (two retries on a 408, 409, 429 or 5xx, unless the server says not to), each
    request they send noted in ``sent``."""
    hooks = {"event_hooks": {"request": [lambda request: sent.append(request.url.path)]}}
    return (openai.OpenAI(base_url=running.base_url, api_key="unused", http_client=httpx.Client(**hooks)),
            anthropic.Anthropic(base_url=running.url, api_key="unused", http_client=httpx.Client(**hooks)))


def test_a_conversation_too_long_upstream_is_the_clients_400_in_both_shapes(gateway: RunningGateway,
                                                                             upstream: LocalServer) -> None:
    upstream.state.scenario = "context_overflow"
    upstream.state.options["refuse_streams"] = True  # as OpenAI and vLLM answer a stream: a 400 before it
    sent: list[str] = []
    openai_sdk, anthropic_sdk = counting_sdks(gateway, sent)
    with pytest.raises(openai.BadRequestError) as from_openai:
        openai_sdk.chat.completions.create(model="up", messages=[{"role": "user", "content": "x"}])
    assert from_openai.value.status_code == 400 and from_openai.value.code == "context_length_exceeded"
    assert "maximum context length is 2048 tokens" in from_openai.value.message  # the upstream's own words
    assert from_openai.value.type == "invalid_request_error"
    with pytest.raises(anthropic.BadRequestError) as from_anthropic:
        anthropic_sdk.messages.create(model="up", max_tokens=50, messages=[{"role": "user", "content": "x"}],
                                      stream=True)
    assert from_anthropic.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "maximum context length is 2048 tokens" in from_anthropic.value.message
    assert sent == ["/v1/chat/completions", "/v1/messages"]  # neither SDK retried
    # One request each, and the stream once more without stream_options (the openai plugin's resend for servers
    # that refuse that field with a 400): neither the router nor a client retried.
    assert [request.body["stream"] for request in upstream.state.requests] == [False, True, True]
    told = from_openai.value.message + from_anthropic.value.message
    assert UPSTREAM_KEY not in told and upstream.url not in told  # where the upstream is stays the operator's
    assert "the upstream says the conversation is too long" in from_openai.value.message


def test_an_upstream_400_about_the_request_is_a_400_not_a_retried_502(gateway: RunningGateway,
                                                                       upstream: LocalServer) -> None:
    upstream.state.scenario = "invalid"
    sent: list[str] = []
    openai_sdk, anthropic_sdk = counting_sdks(gateway, sent)
    with pytest.raises(openai.BadRequestError) as from_openai:
        openai_sdk.chat.completions.create(model="up", messages=[{"role": "user", "content": "x"}], stream=True)
    assert from_openai.value.status_code == 400 and from_openai.value.type == "invalid_request_error"
    assert "Invalid value for 'messages[0].role'" in from_openai.value.message
    with pytest.raises(anthropic.BadRequestError) as from_anthropic:
        anthropic_sdk.messages.create(model="up", max_tokens=50, messages=[{"role": "user", "content": "x"}])
    assert from_anthropic.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert upstream.url not in from_openai.value.message + from_anthropic.value.message
    assert len(sent) == 2
    assert [request.body["stream"] for request in upstream.state.requests] == [True, True, False]  # see above


def test_an_overloaded_upstream_is_a_503_with_the_upstreams_own_retry_after(config_file: Path,
                                                                           upstream: LocalServer) -> None:
    upstream.state.scenario = "unavailable"
    upstream.state.options["unavailable_retry_after"] = "4"
    write_profiles(config_file, upstream, once={"backend": "openai", "model": "test-model", "max_retries": 0,
                                                "base_url": f"{upstream.url}/v1", "api_key": UPSTREAM_KEY})
    with RunningGateway() as running:
        with pytest.raises(openai.InternalServerError) as from_openai:
            openai_client(running).chat.completions.create(model="once", messages=[{"role": "user", "content": "x"}])
        with pytest.raises(anthropic.APIStatusError) as from_anthropic:
            anthropic_client(running).messages.create(model="once", max_tokens=5,
                                                      messages=[{"role": "user", "content": "x"}])
    for caught in (from_openai.value, from_anthropic.value):
        assert caught.status_code == 503 and caught.response.headers["retry-after"] == "4"
        assert "x-should-retry" not in caught.response.headers  # one attempt: the client's retry is welcome
    assert from_anthropic.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


def test_after_the_routers_own_retries_the_sdks_are_asked_not_to_retry(config_file: Path,
                                                                      upstream: LocalServer) -> None:
    upstream.state.scenario = "rate_limit"
    upstream.state.options["retry_after"] = "0.05"
    write_profiles(config_file, upstream, fast={"backend": "openai", "model": "test-model", "backoff_base_s": 0.01,
                                                "backoff_max_s": 0.02, "base_url": f"{upstream.url}/v1",
                                                "api_key": UPSTREAM_KEY})
    sent: list[str] = []
    with RunningGateway() as running:
        openai_sdk, anthropic_sdk = counting_sdks(running, sent)
        with pytest.raises(openai.RateLimitError) as from_openai:
            openai_sdk.chat.completions.create(model="fast", messages=[{"role": "user", "content": "x"}])
        with pytest.raises(anthropic.RateLimitError) as from_anthropic:
            anthropic_sdk.messages.create(model="fast", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert sent == ["/v1/chat/completions", "/v1/messages"]  # each SDK asked once, at its default max_retries
    assert len(upstream.state.requests) == 6  # the router's three attempts (max_retries = 2) for each, no more
    for caught in (from_openai.value, from_anthropic.value):
        assert caught.response.headers["x-should-retry"] == "false"
        assert caught.response.headers["retry-after"] == "1"  # still said, for a client that schedules its own


# ---- Anthropic protocol ------------------------------------------------------------------------------------


def test_anthropic_sdk_whole_stream_and_count_tokens(gateway: RunningGateway) -> None:
    client = anthropic_client(gateway)
    message = client.messages.create(model="echo", max_tokens=100, system="be brief",
                                     messages=[{"role": "user", "content": "hello anthropic world"}])
    assert message.content[0].text == "hello anthropic world"  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn" and message.usage.output_tokens == 3
    with client.messages.stream(model="slow-echo", max_tokens=100,
                                messages=[{"role": "user", "content": [{"type": "text", "text": "a b c"}]}]) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == "a b c" and len(pieces) > 1
    assert final.usage.output_tokens == 3 and final.usage.input_tokens > 0
    assert final.stop_reason == "end_turn"
    counted = client.messages.count_tokens(model="echo", messages=[{"role": "user", "content": "one two three"}])
    assert counted.input_tokens == 3


def test_anthropic_sdk_through_the_openai_protocol_upstream(gateway: RunningGateway, upstream: LocalServer) -> None:
    upstream.state.options.update(tokens=12)
    message = anthropic_client(gateway).messages.create(
        model="up", max_tokens=64, extra_body={"temperature": 0.1}, stop_sequences=["END"],
        messages=[{"role": "user", "content": "count"}])
    assert message.content[0].text == "".join(f"w{i} " for i in range(12))  # type: ignore[union-attr]
    sent = upstream.state.requests[-1].body
    assert sent["max_tokens"] == 64 and sent["stop"] == ["END"] and sent["temperature"] == 0.1


# ---- keys and binding --------------------------------------------------------------------------------------


def test_gateway_keys_refuse_and_accept(config_file: Path, upstream: LocalServer,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    write_profiles(config_file, upstream)
    monkeypatch.setenv("LLMSWITCH_SERVE_KEYS", "gw-key-one, gw-key-two")
    with RunningGateway() as running:
        with pytest.raises(openai.AuthenticationError) as refused:
            openai_client(running, key="wrong").chat.completions.create(
                model="echo", messages=[{"role": "user", "content": "x"}])
        assert "gateway key is required" in refused.value.message
        with pytest.raises(anthropic.AuthenticationError):
            anthropic_client(running, key="gw-key-one-not").messages.create(
                model="echo", max_tokens=5, messages=[{"role": "user", "content": "x"}])
        answer = openai_client(running, key="gw-key-two").chat.completions.create(
            model="echo", messages=[{"role": "user", "content": "let me in"}])
        assert answer.choices[0].message.content == "let me in"
        message = anthropic_client(running, key="gw-key-one").messages.create(
            model="echo", max_tokens=5, messages=[{"role": "user", "content": "me too"}])
        assert message.content[0].text == "me too"  # type: ignore[union-attr]
        assert httpx.get(f"{running.url}/healthz").status_code == 200  # liveness needs no key
        assert "profiles" not in httpx.get(f"{running.url}/readyz").json()
    assert ledger_rows()  # the refused calls were never sent: only the two answers are charged
    assert len(ledger_rows()) == 2


def test_healthz_and_readyz(gateway: RunningGateway, upstream: LocalServer) -> None:
    assert httpx.get(f"{gateway.url}/healthz").json() == {"status": "ok"}
    with RunningGateway(profiles=["echo", "up"]) as running:
        ready = httpx.get(f"{running.url}/readyz")
        assert ready.status_code == 200, ready.text
        assert set(ready.json()["profiles"]) == {"echo", "up"}
    upstream.state.scenario = "reset"
    with RunningGateway(profiles=["echo", "up"]) as running:
        down = httpx.get(f"{running.url}/readyz", timeout=20)
        assert down.status_code == 503
        assert down.json()["profiles"]["up"]["status"] == "down"
        assert down.json()["profiles"]["echo"]["status"] == "ok"


def test_text_goes_out_as_it_arrives_not_held_for_a_batch(gateway: RunningGateway, upstream: LocalServer) -> None:
    """The gateway writes whatever the upstream delivered at once, and the first token at once: an upstream that
    sends three tokens and then goes quiet for 2 s (and drops the connection) has those three at the client long
    before then, in both protocols."""
    import time

    upstream.state.scenario = "stall"
    upstream.state.options.update(delay=2.0, tokens=6)
    started = time.monotonic()
    arrived: list[float] = []
    with pytest.raises(openai.APIError):  # the cut after the quiet ends the stream with an error event
        for chunk in openai_client(gateway).chat.completions.create(
                model="up", messages=[{"role": "user", "content": "x"}], stream=True):
            if chunk.choices and chunk.choices[0].delta.content:
                arrived.append(time.monotonic() - started)
    assert len(arrived) == 3 and arrived[-1] < 1.5 and time.monotonic() - started >= 2.0, arrived
    started, arrived = time.monotonic(), []
    with pytest.raises(anthropic.APIError), anthropic_client(gateway).messages.stream(
            model="up", max_tokens=50, messages=[{"role": "user", "content": "x"}]) as stream:
        for _text in stream.text_stream:
            arrived.append(time.monotonic() - started)
    assert len(arrived) == 3 and arrived[-1] < 1.5, arrived


def test_an_answer_read_at_once_goes_out_at_once_and_its_end_after_its_ledger_row(
        gateway: RunningGateway, upstream: LocalServer) -> None:
    """The first token at once, alone; the rest of the read that ends the answer at once too, not held back
    while the call's ledger row is written; then the answer's end (its finish, its usage, [DONE]), which waits
    for that row, in a write of its own."""
    upstream.state.options.update(tokens=20)
    body = {"model": "up", "messages": [{"role": "user", "content": "x"}], "stream": True,
            "stream_options": {"include_usage": True}}
    with httpx.stream("POST", f"{gateway.base_url}/chat/completions", json=body, timeout=20) as response:
        chunks = [chunk.decode() for chunk in response.iter_raw()]  # one per HTTP chunk the gateway wrote
    events = [json.loads(line[6:]) for chunk in chunks for line in chunk.split("\n")
              if line.startswith("data: {")]
    assert len(chunks) == 3, chunks
    assert '"content":"w0 "' in chunks[0] and '"w1 "' not in chunks[0]
    assert '"content":"w19 "' in chunks[1] and "finish_reason\":\"stop" not in chunks[1]
    assert chunks[2].endswith("data: [DONE]\n\n") and '"content"' not in chunks[2]
    assert '"finish_reason":"stop"' in chunks[2] and '"usage"' in chunks[2]
    assert "".join(event["choices"][0]["delta"].get("content", "") for event in events if event["choices"]) == \
        "".join(f"w{index} " for index in range(20))
    assert events[-1]["usage"]["completion_tokens"] == 20


def test_any_text_arrives_as_the_upstream_sent_it_in_both_protocols(gateway: RunningGateway,
                                                                    upstream: LocalServer) -> None:
    """Quotes, backslashes, escapes, control characters, separators, characters outside the BMP and a lone
    surrogate, in an answer long enough that its reads are read whole (kit.SSEDecoder.slot_texts) and its
    events written from the template (serve.answer.TextEvents): the SDKs get exactly the upstream's text,
    and the ledger is charged once."""
    answer = "".join(f'q"b\\n\n\t\x01\u2028 \U0001f600 caf\u00e9 </s>{index} \ud800 ' for index in range(120))
    upstream.state.options.update(answer=answer)
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in openai_client(gateway).chat.completions.create(
        model="up", messages=[{"role": "user", "content": "x"}], stream=True) if chunk.choices)
    assert streamed == answer
    with anthropic_client(gateway).messages.stream(model="up", max_tokens=50,
                                                   messages=[{"role": "user", "content": "x"}]) as stream:
        assert "".join(stream.text_stream) == answer
    whole = openai_client(gateway).chat.completions.create(model="up", messages=[{"role": "user", "content": "x"}])
    assert whole.choices[0].message.content == answer
    assert [row.outcome for row in ledger_rows()] == ["ok"] * 3


# ---- what the gateway does not serve ------------------------------------------------------------------------


def test_an_endpoint_the_gateway_lacks_is_a_404_in_the_protocols_shape_naming_what_it_serves(
        gateway: RunningGateway) -> None:
    client = openai_client(gateway)
    with pytest.raises(openai.NotFoundError) as refused:
        client.embeddings.create(model="echo", input="x")
    body = refused.value.body
    assert isinstance(body, dict), body  # the OpenAI shape, which the SDK parsed: {"error": {...}}
    assert body["type"] == "invalid_request_error" and body["code"] == "unknown_path"
    assert body["message"].startswith("POST /v1/embeddings is not served by llmswitch serve (it serves ")
    assert "POST /v1/chat/completions" in body["message"] and "POST /v1/messages" in body["message"]
    with pytest.raises(openai.NotFoundError) as refused:
        client.responses.create(model="echo", input="x")
    assert "POST /v1/responses is not served by llmswitch serve" in refused.value.message
    with pytest.raises(anthropic.NotFoundError) as unknown:  # under /v1/messages: Anthropic's shape
        anthropic_client(gateway).messages.batches.list()
    assert unknown.value.body == {"type": "error", "error": {"type": "not_found_error", "message": (
        unknown.value.body["error"]["message"])}}
    assert "GET /v1/messages/batches is not served by llmswitch serve" in unknown.value.message


def test_a_wrong_method_is_a_405_in_the_protocols_shape_naming_the_right_one(gateway: RunningGateway) -> None:
    wrong = httpx.get(f"{gateway.url}/v1/messages")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    assert wrong.json() == {"type": "error", "error": {
        "type": "invalid_request_error",
        "message": "GET /v1/messages is not served by llmswitch serve: /v1/messages takes POST"}}
    wrong = httpx.delete(f"{gateway.url}/v1/chat/completions")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["message"] == ("DELETE /v1/chat/completions is not served by llmswitch serve: "
                                                "/v1/chat/completions takes POST")
    assert wrong.json()["error"]["code"] == "method_not_allowed"
