"""No backend follows a redirect: a server on 127.0.0.1 that redirects (302, 307) to another port, where a
protocol server logs every request, must see the error name the new address, and the target must receive
nothing (no key, no headers, no prompt)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmswitch.redirects import redirect_error, suggested_base_url
from tests.helpers import run_cli, write_config
from tests.servers.anthropic_server import AnthropicHandler
from tests.servers.http import LocalServer
from tests.servers.ollama_server import OllamaHandler
from tests.servers.openai_server import OpenAIHandler
from tests.servers.redirecting_server import redirecting_server

KEY = "sk-redirect-0123456789abcdefRDIR"
HEADER_TOKEN = "redirect-token-0123456789RTOK"
HANDLERS = {"openai": OpenAIHandler, "anthropic": AnthropicHandler, "ollama": OllamaHandler}
SUFFIX = {"openai": "/v1", "anthropic": "", "ollama": ""}
MODEL = {"openai": "test-model", "anthropic": "claude-sonnet-5-5", "ollama": "llama3.2"}


def profile(backend: str, base_url: str) -> str:
    lines = ["[profiles.p]", f'backend = "{backend}"', f'model = "{MODEL[backend]}"', f'base_url = "{base_url}"',
             f'headers = {{ X-Auth-Token = "{HEADER_TOKEN}" }}']
    if backend != "ollama":
        lines.append(f'api_key = "{KEY}"')
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("status", [302, 307])
@pytest.mark.parametrize("backend", ["openai", "anthropic", "ollama"])
@pytest.mark.parametrize("mode", ["stream", "no-stream"])
def test_a_redirect_to_another_origin_is_named_and_not_followed(
    backend: str, status: int, mode: str, config_file: Path
) -> None:
    pytest.importorskip(f"llmswitch_{backend}")
    with LocalServer(HANDLERS[backend]) as target, redirecting_server() as redirector:
        redirector.state.options.update(status=status, to=target.url)
        write_config(config_file, profile(backend, f"{redirector.url}{SUFFIX[backend]}"))
        extra = ["--no-stream"] if mode == "no-stream" else []
        result = run_cli("chat", "-p", "p", "--no-history", *extra, "the secret prompt")
        as_json = run_cli("chat", "-p", "p", "--no-history", "--json", *extra, "the secret prompt")
        # The first server was asked (with the key: it is the profile's own base_url) ...
        assert redirector.state.requests
        # ... and the one it pointed at received nothing at all.
        assert target.state.requests == []
    assert result.exit_code == 1
    assert f"redirected to {target.url}{SUFFIX[backend]}/" in result.stderr
    assert f"(HTTP {status})" in result.stderr and "cut off" not in result.stderr
    assert f"set base_url to {target.url}{SUFFIX[backend]} in profile 'p' if you trust it" in result.stderr
    error = json.loads(as_json.stdout)["error"]
    assert error["kind"] == "redirected" and target.url in error["message"]


@pytest.mark.parametrize("backend", ["openai", "anthropic", "ollama"])
def test_doctor_names_a_redirect(backend: str, config_file: Path) -> None:
    pytest.importorskip(f"llmswitch_{backend}")
    with LocalServer(HANDLERS[backend]) as target, redirecting_server() as redirector:
        redirector.state.options.update(status=302, to=target.url)
        write_config(config_file, profile(backend, f"{redirector.url}{SUFFIX[backend]}"))
        doctor = json.loads(run_cli("doctor", "--json", "--timeout", "5", "p").stdout)
        assert target.state.requests == []
    entry = doctor["profiles"][0]
    assert entry["status"] == "down"
    failed = [check for check in entry["checks"] if check["status"] == "fail"]
    assert failed and f"redirected to {target.url}" in failed[0]["detail"]
    assert "if you trust it" in (failed[0]["remedy"] or "")


def test_a_redirect_to_an_address_with_credentials_is_shown_masked(config_file: Path) -> None:
    pytest.importorskip("llmswitch_openai")
    with redirecting_server() as redirector:
        redirector.state.options.update(status=302, to=f"http://me:{HEADER_TOKEN}@127.0.0.1:9")
        write_config(config_file, profile("openai", f"{redirector.url}/v1"))
        result = run_cli("chat", "-p", "p", "--no-history", "hi")
    assert "redirected to http://…@127.0.0.1:9/v1/chat/completions" in result.stderr
    assert HEADER_TOKEN not in result.output and KEY not in result.output


@pytest.mark.parametrize(("request_url", "location", "base_url", "expected"), [
    ("http://a:1/v1/chat/completions", "http://b:2/v1/chat/completions", "http://a:1/v1", "http://b:2/v1"),
    ("http://a:1/v1/chat/completions", "https://b/api/v1/chat/completions", "http://a:1/v1", "https://b/api/v1"),
    ("http://a:1/api/chat", "/login", "http://a:1", "http://a:1"),
    ("http://a:1/v1/messages", "http://b:2/elsewhere", "http://a:1", "http://b:2"),
])
def test_the_suggested_base_url(request_url: str, location: str, base_url: str, expected: str) -> None:
    assert suggested_base_url(request_url, location, base_url) == expected


def test_a_redirect_without_a_location_says_so() -> None:
    error = redirect_error(status=302, location=None, request_url="http://a/v1/x", base_url="http://a/v1",
                           server="the server at http://a/v1", profile="p", backend="openai")
    assert "without saying where" in error.message and error.location is None


def test_the_async_form_refuses_a_redirect_too(config_file: Path) -> None:
    pytest.importorskip("llmswitch_openai")
    import asyncio

    from llmswitch.client import AsyncClient
    from llmswitch.errors import RedirectError

    async def ask() -> RedirectError:
        async with AsyncClient() as client:
            resolved = client.resolve("p")
            try:
                await resolved.acomplete(resolved.request("the secret prompt"))
            except RedirectError as error:
                return error
        raise AssertionError("no RedirectError")

    with LocalServer(OpenAIHandler) as target, redirecting_server() as redirector:
        redirector.state.options.update(status=307, to=target.url)
        write_config(config_file, profile("openai", f"{redirector.url}/v1"))
        error = asyncio.run(ask())
        assert target.state.requests == []
    assert error.location == f"{target.url}/v1/chat/completions"
    assert error.remedy == f"set base_url to {target.url}/v1 in profile 'p' if you trust it"
