"""``llmswitch chat`` end to end through the openai plugin and a local OpenAI-protocol server on a real socket:
what the user sees, and what the server was sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w

from tests.helpers import run_cli
from tests.servers.http import LocalServer
from tests.servers.openai_server import openai_server


@pytest.fixture(scope="module")
def shared_server() -> Iterator[LocalServer]:
    with openai_server() as running:
        yield running


@pytest.fixture
def server(shared_server: LocalServer, config_file: Path) -> LocalServer:
    """The module's server, reset, and a profile ``p`` pointing at it."""
    from llmswitch_openai import calls

    shared_server.state.scenario = "ok"
    shared_server.state.requests.clear()
    shared_server.state.options.clear()
    calls._refuses_stream_options.clear()
    profile = {"backend": "openai", "base_url": f"{shared_server.url}/v1", "model": "test-model"}
    config_file.write_text(tomli_w.dumps({"profiles": {"p": profile}}))
    return shared_server


def chat_requests(server: LocalServer) -> list[dict[str, object]]:
    return [r.body for r in server.state.requests if r.path.endswith("/chat/completions")]


# ---- --no-stream ------------------------------------------------------------------------------------------


def test_no_stream_asks_for_a_whole_answer_and_shows_its_usage(server: LocalServer) -> None:
    # Like llama.cpp's server: usage only for a whole answer, so streaming could not report it.
    server.state.options.update(answer="all at once", no_stream_usage=True)
    outcome = run_cli("chat", "-p", "p", "--no-stream", "--usage", "one two three")
    assert outcome.exit_code == 0, outcome
    assert outcome.stdout == "all at once\n"
    [body] = chat_requests(server)
    assert body["stream"] is False and "stream_options" not in body
    assert "tokens in 6, out 3" in outcome.stderr  # the server's own counts: 3 words + 3 per message, 3 pieces


def test_streaming_is_still_the_default(server: LocalServer) -> None:
    server.state.options.update(answer="piece by piece", no_stream_usage=True)
    outcome = run_cli("chat", "-p", "p", "--usage", "hi")
    assert outcome.stdout == "piece by piece\n"
    [body] = chat_requests(server)
    assert body["stream"] is True
    assert "tokens in ?" in outcome.stderr  # this server does not say in a stream


def test_no_stream_with_json_records_usage_and_cost(server: LocalServer) -> None:
    server.state.options.update(answer="whole", no_stream_usage=True)
    outcome = run_cli("chat", "-p", "p", "--no-stream", "--json", "a b")
    payload = json.loads(outcome.stdout)
    assert payload["text"] == "whole" and payload["finish_reason"] == "stop"
    assert payload["usage"] == {"input_tokens": 5, "output_tokens": 2}
    assert payload["cost"]["tokens_estimated"] is False
    assert chat_requests(server)[0]["stream"] is False


def test_no_stream_shows_the_servers_context_overflow_message(server: LocalServer) -> None:
    server.state.scenario = "context_overflow"
    server.state.options.update(n_ctx=2048)
    outcome = run_cli("chat", "-p", "p", "--no-stream", "a very long prompt")
    assert outcome.exit_code == 1
    assert "maximum context length is 2048" in outcome.stderr
    assert "too long for model 'test-model'" in outcome.stderr and "shorten the conversation" in outcome.stderr
    assert "ended early" not in outcome.stderr and "Traceback" not in outcome.output


def test_no_stream_in_the_repl_asks_for_whole_answers(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from llmswitch.cli.chat import repl
    from llmswitch.client import Client
    from llmswitch.conversation import Conversation

    server.state.options.update(answer="whole")
    lines = iter(["hello"])

    def typed(prompt: str = "") -> str:
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    monkeypatch.setattr("builtins.input", typed)
    assert repl(Conversation(Client(), "p"), show_usage=False, whole=True) == 0
    assert "whole" in capsys.readouterr().out
    assert [body["stream"] for body in chat_requests(server)] == [False]


def test_conversation_complete_asks_for_a_whole_answer_sync_and_async(server: LocalServer) -> None:
    import asyncio

    from llmswitch.client import Client
    from llmswitch.conversation import Conversation

    server.state.options.update(answer="whole", no_stream_usage=True)
    assert Conversation(Client(), "p").complete("hi").usage.output_tokens == 2
    response = asyncio.run(Conversation(Client(), "p").acomplete("hi"))
    assert response.text == "whole" and response.usage.output_tokens == 2
    assert [body["stream"] for body in chat_requests(server)] == [False, False]


# ---- an unknown model through a proxy ----------------------------------------------------------------------


def test_an_unknown_model_through_a_litellm_proxy_is_model_not_found_with_the_served_models(
    server: LocalServer, config_file: Path
) -> None:
    server.state.scenario = "litellm"  # 400 "Invalid model name passed in model=...", param "None"
    server.state.options["models"] = ["gpt-4o", "claude-sonnet"]
    for whole in ([], ["--no-stream"]):
        outcome = run_cli("chat", "-p", "p", "-m", "gpt-4o-mimi", "--json", *whole, "hi")
        assert outcome.exit_code == 1, outcome
        error = json.loads(outcome.stdout)["error"]
        assert error["kind"] == "model_not_found", error
        assert "gpt-4o-mimi" in error["message"] and "Invalid model name" in error["message"]
        assert "did you mean 'gpt-4o'" in error["remedy"] and "extra_body" not in error["remedy"]

    # The same words doctor uses for the profile's model.
    profile = {"backend": "openai", "base_url": f"{server.url}/v1", "model": "mixtral"}
    config_file.write_text(tomli_w.dumps({"profiles": {"p": profile}}))
    chat = run_cli("chat", "-p", "p", "hi")
    assert "does not serve model 'mixtral'" in chat.stderr and "claude-sonnet, gpt-4o" in chat.stderr
    doctor = json.loads(run_cli("doctor", "--json", "p").stdout)
    [model_check] = [c for c in doctor["profiles"][0]["checks"] if c["name"] == "model"]
    assert model_check["status"] == "fail" and model_check["remedy"] in chat.stderr


def test_a_proxy_400_about_something_else_is_not_a_missing_model(server: LocalServer) -> None:
    server.state.scenario = "reject_stream_options"  # 400 about a field, for a model it does serve
    outcome = run_cli("chat", "-p", "p", "--json", "hi")  # asked again without the field: answers
    assert outcome.exit_code == 0, outcome
    server.state.scenario = "litellm"
    outcome = run_cli("chat", "-p", "p", "--json", "hi")  # a served model through the proxy: answers
    assert outcome.exit_code == 0 and json.loads(outcome.stdout)["text"]


# ---- prices -----------------------------------------------------------------------------------------------


def test_gpt_4o_on_a_local_server_is_not_charged_at_openais_rate(
    server: LocalServer, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.state.options["models"] = ["gpt-4o"]
    payload = json.loads(run_cli("chat", "-p", "p", "-m", "gpt-4o", "--json", "hi").stdout)
    assert payload["cost"]["usd"] is None and "not " + server.url in payload["cost"]["price_source"]
    monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")  # the built-in profile, pointed at it
    payload = json.loads(run_cli("chat", "-p", "openai", "-m", "gpt-4o", "--json", "hi").stdout)
    assert payload["text"] and payload["cost"]["usd"] is None
    profile = {"backend": "openai", "base_url": f"{server.url}/v1", "model": "gpt-4o"}
    config_file.write_text(tomli_w.dumps({"profiles": {"p": profile}}))
    doctor = json.loads(run_cli("doctor", "--json", "--offline", "p").stdout)
    assert doctor["profiles"][0]["standard_request_usd"] is None
    assert "not " + server.url in doctor["profiles"][0]["price"]["source"]
    costs = json.loads(run_cli("cost", "--json", "-p", "p").stdout)["profiles"][0]
    assert costs["usd_per_request"] is None
