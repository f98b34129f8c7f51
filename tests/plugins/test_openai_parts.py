"""The openai plugin's pure parts: error bodies, Retry-After, payloads (token counts: test_openai_tokens.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import pytest
from llmswitch_openai.errors import read_error_body
from llmswitch_openai.wire import build_body

from llmswitch.http_headers import parse_retry_after
from llmswitch.secrets import Secret
from llmswitch.types import Message, Request, Target

# ---- error bodies and Retry-After --------------------------------------------------------------------


def test_error_bodies_in_every_shape_servers_use() -> None:
    openai = read_error_body(
        b'{"error": {"message": "Bad key", "type": "invalid_request_error", "code": "invalid_api_key", "param": null}}'
    )
    assert (openai.message, openai.code, openai.param) == ("Bad key", "invalid_api_key", None)
    assert read_error_body(b'{"object": "error", "message": "The model `x` does not exist.", "code": 404}').message \
        == "The model `x` does not exist."
    assert read_error_body(b'{"detail": "Not Found"}').message == "Not Found"
    assert read_error_body(b'{"error": "plain string"}').message == "plain string"
    assert read_error_body(b"<html><body><h1>502 Bad Gateway</h1></body></html>").message == "502 Bad Gateway"
    assert read_error_body(b"").message == "(empty body)"


def test_a_key_echoed_by_the_server_is_masked() -> None:
    secret = Secret("sk-proj-ECHOEDBACKBYASERVER5678", "env:X")  # resolving a key registers it for redaction
    detail = read_error_body(f'{{"error": {{"message": "bad key {secret.value}"}}}}'.encode())
    assert secret.value not in detail.message and "sk-…5678" in detail.message


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers) == expected


def test_retry_after_as_an_http_date() -> None:
    when = datetime.now(timezone.utc) + timedelta(seconds=30)
    seconds = parse_retry_after({"retry-after": format_datetime(when, usegmt=True)})
    assert seconds is not None and 25 < seconds <= 30


# ---- payloads ------------------------------------------------------------------------------------------


def target(base_url: str, **options: Any) -> Target:
    return Target(profile="p", backend="openai", model="m", base_url=base_url, options=options)


def test_openai_gets_max_completion_tokens_other_servers_max_tokens() -> None:
    request = Request(messages=(Message("user", "hi"),), max_tokens=5)
    openai = build_body(target("https://api.openai.com/v1"), request, stream=False, include_usage=False)
    local = build_body(target("http://127.0.0.1:8000/v1"), request, stream=False, include_usage=False)
    assert openai["max_completion_tokens"] == 5 and "max_tokens" not in openai
    assert local["max_tokens"] == 5 and "max_completion_tokens" not in local


def test_nothing_unset_is_sent() -> None:
    body = build_body(target("http://h/v1"), Request(messages=(Message("user", "hi"),)), stream=True,
                      include_usage=False)
    assert body == {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}


@pytest.mark.parametrize(
    ("base_url", "local"),
    [
        ("http://127.0.0.1:8000/v1", True),
        ("http://localhost:1234/v1", True),
        ("http://192.168.1.20:8000/v1", True),
        ("http://gpu-box.lan:8000/v1", True),
        ("https://api.groq.com/openai/v1", False),
        ("https://8.8.8.8/v1", False),
    ],
)
def test_local_servers_get_the_start_a_server_remedy(base_url: str, local: bool) -> None:
    from llmswitch_openai.errors import is_local

    assert is_local(target(base_url)) is local
