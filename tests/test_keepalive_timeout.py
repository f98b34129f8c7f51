"""A server that sends only keep-alives (SSE comments, Anthropic pings, blank NDJSON lines) cannot hold an
answer open past ``timeout``: the timeout counts time without an answer, not time without a byte. Real
servers for each protocol on real sockets, keep-alives every 0.3 s, ``timeout = 2``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import tomli_w

from llmswitch.client import Client
from llmswitch.errors import BackendTimeoutError
from llmswitch.types import StreamError
from tests.servers.anthropic_server import anthropic_server
from tests.servers.http import LocalServer
from tests.servers.ollama_server import ollama_server
from tests.servers.openai_server import openai_server

KEEPALIVES: dict[str, tuple[Callable[[], LocalServer], Callable[[str], dict[str, Any]], bytes]] = {
    "openai": (openai_server, lambda url: {"base_url": f"{url}/v1", "model": "test-model"}, b": keep-alive\n\n"),
    "anthropic": (anthropic_server, lambda url: {"base_url": url, "model": "claude-haiku-4-5", "api_key": "sk-x"},
                  b'event: ping\ndata: {"type": "ping"}\n\n'),
    "ollama": (ollama_server, lambda url: {"base_url": url, "model": "llama3.2"}, b"\n"),
}


@pytest.mark.parametrize("backend", sorted(KEEPALIVES))
def test_keepalives_alone_do_not_defeat_the_timeout(backend: str, config_file: Any) -> None:
    make_server, settings, keepalive = KEEPALIVES[backend]
    with make_server() as server:
        server.state.scenario = "keepalive"
        server.state.options.update(keepalive=keepalive, interval=0.3, keepalives=200)
        config_file.write_text(tomli_w.dumps({"profiles": {"p": {
            "backend": backend, "timeout": 2.0, "max_retries": 0, **settings(server.url)}}}))
        resolved = Client().resolve("p")
        started = time.monotonic()
        result = resolved.stream(resolved.request("hi"))
        events = list(result)
        elapsed = time.monotonic() - started
    assert isinstance(events[-1], StreamError) and isinstance(result.error, BackendTimeoutError), (backend, events)
    assert "keep-alive" in result.error.message and "timeout" in (result.error.remedy or "")
    assert 2.0 <= elapsed < 6.0, elapsed  # 60 s of keep-alives were on offer


def test_an_html_page_with_status_200_is_named_on_the_openai_backend(config_file: Any) -> None:
    with openai_server() as server:
        server.state.scenario = "html_page"
        config_file.write_text(tomli_w.dumps({"profiles": {"p": {
            "backend": "openai", "timeout": 5.0, "base_url": f"{server.url}/v1", "model": "test-model"}}}))
        resolved = Client().resolve("p")
        result = resolved.stream(resolved.request("hi"))
        list(result)
        assert result.error is not None and "HTML page" in result.error.message, result.error
        assert "Sign in to the Wi-Fi" in result.error.message and "base_url" in (result.error.remedy or "")
        with pytest.raises(Exception, match="HTML page"):
            resolved.complete(resolved.request("hi"))
