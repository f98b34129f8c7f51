"""An empty answer, or a stream with nothing the backend understands, is a ``BadResponseError`` that names what
arrived, for every backend: through the CLI (exit 1, the error on stderr or in ``--json``), against local servers
speaking each protocol over real sockets, and the in-process backends."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from llmswitch.client import Client
from llmswitch.errors import BadResponseError
from tests.helpers import run_cli
from tests.servers.anthropic_server import anthropic_server
from tests.servers.http import LocalServer
from tests.servers.ollama_server import ollama_server
from tests.servers.openai_server import openai_server

# backend -> (server factory, profile values for a server at URL)
BACKENDS: dict[str, tuple[Callable[[], AbstractContextManager[LocalServer]], Callable[[str], dict[str, Any]]]] = {
    "openai": (openai_server, lambda url: {"base_url": f"{url}/v1", "model": "test-model"}),
    "anthropic": (anthropic_server, lambda url: {"base_url": url, "model": "claude-haiku-4-5", "api_key": "sk-ant-x"}),
    "ollama": (ollama_server, lambda url: {"base_url": url, "model": "llama3.2"}),
}
# The scenario in which each server sends another API's stream, and a word its message must quote.
FOREIGN = {"openai": ("foreign", '"response"'), "anthropic": ("foreign", "chat.completion.chunk"),
           "ollama": ("generate_lines", '"response"')}


@pytest.fixture(params=sorted(BACKENDS))
def served(request: pytest.FixtureRequest, config_file: Path) -> Iterator[tuple[str, LocalServer]]:
    """Each HTTP backend with its protocol server running, and a profile ``p`` pointing at it."""
    backend = str(request.param)
    start, values = BACKENDS[backend]
    with start() as server:
        config_file.write_text(tomli_w.dumps({"profiles": {"p": {"backend": backend, **values(server.url)}}}))
        yield backend, server


def json_error(*args: str) -> dict[str, Any]:
    outcome = run_cli("chat", "-p", "p", "--json", *args)
    assert outcome.exit_code == 1, outcome
    payload = json.loads(outcome.stdout)
    assert payload["text"] == ""
    return payload["error"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("whole", [False, True], ids=["stream", "no-stream"])
def test_an_empty_answer_is_a_bad_response_naming_what_arrived(served: tuple[str, LocalServer], whole: bool) -> None:
    backend, server = served
    server.state.options["answer"] = ""  # the server finishes normally, with no text at all
    error = json_error(*(["--no-stream"] if whole else []), "hi")
    assert error["kind"] == "bad_response", error
    assert "finished its answer without any text" in error["message"], error
    assert "finish reason 'stop'" in error["message"] and f"the {backend} backend at" in error["message"]
    assert error["remedy"]


def test_a_stream_of_another_apis_lines_is_a_bad_response_quoting_them(served: tuple[str, LocalServer]) -> None:
    backend, server = served
    scenario, quoted = FOREIGN[backend]
    server.state.scenario = scenario
    outcome = run_cli("chat", "-p", "p", "hi")
    assert outcome.exit_code == 1 and outcome.stdout.strip() == "", outcome
    assert "none of them" in outcome.stderr and quoted in outcome.stderr, outcome.stderr
    assert "base_url" in outcome.stderr and "Traceback" not in outcome.stderr


def test_an_ollama_stream_without_message_fields_names_the_lines(config_file: Path) -> None:
    """The case users met: an Ollama-protocol server streaming lines with no ``message``, then ``done``."""
    with ollama_server() as server:
        server.state.scenario = "generate_lines"
        config_file.write_text(tomli_w.dumps({"profiles": {"p": {"backend": "ollama", "base_url": server.url}}}))
        result = Client().resolve("p").stream(Client().resolve("p").request("hi"))
        events = list(result)
    assert isinstance(result.error, BadResponseError)
    assert "sent 5 lines, none of them with the 'message' of Ollama's /api/chat" in result.error.message
    assert type(events[-1]).__name__ == "StreamError" and result.text == ""


def test_an_openai_server_sending_no_event_at_all_says_so(config_file: Path) -> None:
    with openai_server() as server:
        server.state.scenario = "context_overflow"  # llama-cpp-python: 200, then the body ends
        values = BACKENDS["openai"][1](server.url)
        config_file.write_text(tomli_w.dumps({"profiles": {"p": {"backend": "openai", **values}}}))
        outcome = run_cli("chat", "-p", "p", "hi")
    assert outcome.exit_code == 1 and "answered with an empty event stream" in outcome.stderr, outcome
    assert "--no-stream" in outcome.stderr  # which shows the server's own message (see test_openai_chat_cli)


def test_echo_with_a_stop_sequence_at_the_start_is_an_empty_answer_too() -> None:
    resolved = Client().resolve("echo")
    request = resolved.request("hello there", stop=["h"])
    result = resolved.stream(request)
    list(result)
    assert isinstance(result.error, BadResponseError) and "stop sequence" in (result.error.remedy or "")
    with pytest.raises(BadResponseError, match="without any text"):
        resolved.complete(request)
    assert resolved.complete(resolved.request("hello there", stop=["t"])).text == "hello "
