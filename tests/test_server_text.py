"""Text a server sends, one policy for every HTTP backend: an answer whose bytes are not UTF-8 is a clear
BadResponseError (streamed and whole), the text before them kept. Real servers for each protocol, real sockets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import tomli_w

from llmswitch.client import Client
from llmswitch.encoding import decode_input, repair_argument, server_json
from llmswitch.errors import BadResponseError
from llmswitch.types import StreamError
from tests.servers.anthropic_server import anthropic_server
from tests.servers.http import LocalServer
from tests.servers.ollama_server import ollama_server
from tests.servers.openai_server import openai_server

BACKENDS: dict[str, tuple[Callable[[], LocalServer], Callable[[str], dict[str, Any]]]] = {
    "openai": (openai_server, lambda url: {"base_url": f"{url}/v1", "model": "test-model"}),
    "anthropic": (anthropic_server, lambda url: {"base_url": url, "model": "claude-haiku-4-5", "api_key": "sk-x"}),
    "ollama": (ollama_server, lambda url: {"base_url": url, "model": "llama3.2"}),
}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, config_file: Any) -> Iterator[tuple[str, LocalServer]]:
    make_server, settings = BACKENDS[request.param]
    with make_server() as server:
        config_file.write_text(tomli_w.dumps({"profiles": {"p": {
            "backend": request.param, "timeout": 5.0, **settings(server.url)}}}))
        yield request.param, server


def test_invalid_utf8_in_an_answer_is_a_bad_response(backend: tuple[str, LocalServer]) -> None:
    name, server = backend
    server.state.options.update(answer="caf~ and more", swap_bytes={b"~": b"\xe9"})  # a latin-1 byte
    resolved = Client().resolve("p")
    result = resolved.stream(resolved.request("hi"))
    events = list(result)
    assert isinstance(events[-1], StreamError) and isinstance(result.error, BadResponseError), (name, events)
    assert f"{server.url}" in result.error.message and "not UTF-8" in result.error.message
    assert "caf and more".startswith(result.text) and "\ufffd" not in result.text  # what came before is kept
    with pytest.raises(BadResponseError, match="not UTF-8"):
        resolved.complete(resolved.request("hi"))


def test_the_policy_in_one_place() -> None:
    assert server_json(b'{"a": "caf\xe9"}') == {"a": "caf\ufffd"}
    assert server_json(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}
    with pytest.raises(ValueError):
        server_json(b"<html>")
    assert decode_input(b"caf\xe9") == ("caf\ufffd", True)
    assert decode_input("café".encode()) == ("café", False)
    assert repair_argument("caf\udce9") == ("caf\ufffd", True)
    assert repair_argument("lone \ud800") == ("lone ?", True)
    assert repair_argument("café") == ("café", False)
