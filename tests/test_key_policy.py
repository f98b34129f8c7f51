"""A key goes only to a base URL written in the same place as the key (llmswitch.key_policy).

Every combination of where the key comes from (``--api-key``, the profile, the environment, ``.env``, a
variable the profile names) and where the base URL comes from (the profile, the environment, ``.env``) is run
through the CLI against real protocol servers on 127.0.0.1 that log the headers they receive.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmswitch.key_policy import key_may_go_to
from tests.helpers import run_cli, write_config
from tests.servers.anthropic_server import AnthropicHandler
from tests.servers.http import LocalServer
from tests.servers.ollama_server import OllamaHandler
from tests.servers.openai_server import openai_server

pytest.importorskip("llmswitch_openai")

KEYS = {
    "flag": "sk-flag-0123456789abcdefFLAG",
    "profile": "sk-profile-0123456789abcdefPROF",
    "env": "sk-env-0123456789abcdefENVV",
    "dotenv": "sk-dotenv-0123456789abcdefDOTE",
    "own": "sk-own-0123456789abcdefOWNN",
}


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    """One server for the module: every test reads only the last request it received."""
    with openai_server() as running:
        yield running


def setup(server: LocalServer, config_file: Path, monkeypatch: pytest.MonkeyPatch, *, key: str, url: str,
          profile_lines: str = "") -> list[str]:
    """Write the profile, environment and .env for one combination; return the extra CLI arguments."""
    lines = ['[profiles.p]', 'backend = "openai"', 'model = "test-model"']
    dotenv: list[str] = []
    arguments: list[str] = []
    endpoint = f"{server.url}/v1"
    if url == "profile":
        lines.append(f'base_url = "{endpoint}"')
    elif url == "env":
        monkeypatch.setenv("OPENAI_BASE_URL", endpoint)
    elif url == "dotenv":
        dotenv.append(f"OPENAI_BASE_URL={endpoint}")
    if key == "flag":
        arguments = ["--api-key", KEYS["flag"]]
    elif key == "profile":
        lines.append(f'api_key = "{KEYS["profile"]}"')
    elif key == "env":
        monkeypatch.setenv("OPENAI_API_KEY", KEYS["env"])
    elif key == "dotenv":
        dotenv.append(f"OPENAI_API_KEY={KEYS['dotenv']}")
    elif key == "own-env":
        lines.append('api_key_env = "MY_GATEWAY_KEY"')
        monkeypatch.setenv("MY_GATEWAY_KEY", KEYS["own"])
    elif key == "own-dotenv":
        lines.append('api_key_env = "MY_GATEWAY_KEY"')
        dotenv.append(f"MY_GATEWAY_KEY={KEYS['own']}")
    if profile_lines:
        lines.append(profile_lines)
    write_config(config_file, "\n".join(lines) + "\n")
    if dotenv:
        Path(".env").write_text("\n".join(dotenv) + "\n")
    return arguments


# (where the key comes from, where the base URL comes from) -> the key the server receives (None: no key)
COMBINATIONS = [
    ("profile", "profile", "profile"),
    ("flag", "profile", "flag"),
    ("own-env", "profile", "own"),
    ("own-dotenv", "profile", "own"),
    ("env", "profile", None),        # the provider's key is not handed to the profile's own server
    ("dotenv", "profile", None),
    ("env", "env", "env"),           # exported together in the shell
    ("own-env", "env", "own"),
    ("profile", "env", None),        # a URL exported in the shell does not get the profile's key
    ("flag", "env", None),
    ("dotenv", "env", None),
    ("dotenv", "dotenv", "dotenv"),  # a project's .env with its own URL and key
    ("own-dotenv", "dotenv", "own"),
    ("env", "dotenv", None),         # the cloned-repository attack: .env redirects, the shell's key stays home
    ("own-env", "dotenv", None),
    ("profile", "dotenv", None),
    ("flag", "dotenv", None),
]


@pytest.mark.parametrize(("key", "url", "received"), COMBINATIONS, ids=[f"key:{k}-url:{u}" for k, u, _ in COMBINATIONS])
def test_every_key_and_base_url_combination_against_a_header_logging_server(
    server: LocalServer, config_file: Path, monkeypatch: pytest.MonkeyPatch, key: str, url: str, received: str | None
) -> None:
    arguments = setup(server, config_file, monkeypatch, key=key, url=url)
    result = run_cli("chat", "-p", "p", "--no-history", *arguments, "hi")
    assert result.exit_code == 0, result.output  # the server ignores keys: the call works either way
    headers = server.state.requests[-1].headers
    if received is None:
        assert "authorization" not in headers
        assert not any(value in json.dumps(headers) for value in KEYS.values())
    else:
        assert headers["authorization"] == f"Bearer {KEYS[received]}"
    assert not any(value in result.output for value in KEYS.values())


def test_a_dotenv_key_beside_the_dotenv_url_wins_over_the_shell_key(
    server: LocalServer, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup(server, config_file, monkeypatch, key="dotenv", url="dotenv")
    monkeypatch.setenv("OPENAI_API_KEY", KEYS["env"])
    assert run_cli("chat", "-p", "p", "--no-history", "hi").exit_code == 0
    assert server.state.requests[-1].headers["authorization"] == f"Bearer {KEYS['dotenv']}"


def test_the_builtin_profile_redirected_by_dotenv_keeps_the_key_and_says_why(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The finding: a cloned repository's .env sets OPENAI_BASE_URL; the shell's OPENAI_API_KEY stays home."""
    monkeypatch.setenv("OPENAI_API_KEY", KEYS["env"])
    Path(".env").write_text(f"OPENAI_BASE_URL={server.url}/v1\n")
    result = run_cli("chat", "-p", "openai", "-m", "test-model", "--no-history", "hi")
    assert result.exit_code == 0, result.output
    assert "authorization" not in server.state.requests[-1].headers

    shown = run_cli("profiles", "show", "openai")
    assert f"base_url resolves to {server.url}/v1 (from OPENAI_BASE_URL in ./.env)" in shown.stdout
    assert "not sent to the custom base_url" in shown.stdout and "$OPENAI_API_KEY" in shown.stdout
    assert KEYS["env"] not in shown.output

    doctor = run_cli("doctor", "--json", "--offline", "openai")
    entry = json.loads(doctor.stdout)["profiles"][0]
    assert entry["base_url_source"] == ".env:OPENAI_BASE_URL"
    assert entry["key"]["present"] is False and "not sent to the custom base_url" in entry["key"]["withheld"]
    key_check = next(check for check in entry["checks"] if check["name"] == "key")
    assert key_check["status"] == "warn" and "api_key_env" in key_check["remedy"]
    assert KEYS["env"] not in doctor.output
    text = run_cli("doctor", "--offline", "openai")
    assert "not sent to the custom base_url" in text.stdout and KEYS["env"] not in text.output
    assert "withheld" in text.stdout


def test_anthropic_key_is_not_sent_to_a_base_url_from_dotenv(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("llmswitch_anthropic")
    with LocalServer(AnthropicHandler) as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", KEYS["env"])
        Path(".env").write_text(f"ANTHROPIC_BASE_URL={server.url}\n")
        result = run_cli("chat", "-p", "anthropic", "--no-history", "hi")
        assert result.exit_code == 0, result.output
        headers = server.state.requests[-1].headers
        assert "x-api-key" not in headers and "authorization" not in headers
        assert KEYS["env"] not in json.dumps(headers)


def test_the_profiles_secret_headers_do_not_follow_a_base_url_from_dotenv(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ollama plugin's own hint puts a key in headers; OLLAMA_HOST in a .env must not collect it."""
    pytest.importorskip("llmswitch_ollama")
    token = "proxy-token-0123456789abcdefTOKN"
    write_config(config_file, '[profiles.o]\nbackend = "ollama"\nmodel = "llama3.2"\n'
                              f'headers = {{ Authorization = "Bearer {token}", X-Title = "llmswitch" }}\n')
    with LocalServer(OllamaHandler) as server:
        Path(".env").write_text(f"OLLAMA_HOST={server.url}\n")
        result = run_cli("chat", "-p", "o", "--no-history", "hi")
        assert result.exit_code == 0, result.output
        headers = server.state.requests[-1].headers
        assert "authorization" not in headers and headers["x-title"] == "llmswitch"
        shown = run_cli("profiles", "show", "o")
        assert "Authorization header is not sent" in shown.stdout and token not in shown.output
        assert "Bearer pr…TOKN" in shown.stdout

        # Written in the profile next to its base_url, the header goes.
        write_config(config_file, '[profiles.o]\nbackend = "ollama"\nmodel = "llama3.2"\n'
                                  f'base_url = "{server.url}"\nheaders = {{ Authorization = "Bearer {token}" }}\n')
        assert run_cli("chat", "-p", "o", "--no-history", "hi").exit_code == 0
        assert server.state.requests[-1].headers["authorization"] == f"Bearer {token}"


@pytest.mark.parametrize(("key_source", "url_source", "names_variable", "allowed"), [
    ("env:OPENAI_API_KEY", None, False, True),          # the provider's own URL takes any key
    (".env:OPENAI_API_KEY", None, False, True),
    ("flag", None, False, True),
    ("env:OPENAI_API_KEY", "profile", True, True),
    ("env:OPENAI_API_KEY", "profile", False, False),
    ("env:OPENAI_API_KEY", ".env:OPENAI_BASE_URL", True, False),
    (".env:MY_KEY", ".env:OPENAI_BASE_URL", True, True),
    ("profile", "env:OPENAI_BASE_URL", False, False),
])
def test_the_rule_itself(key_source: str, url_source: str | None, names_variable: bool, allowed: bool) -> None:
    assert key_may_go_to(key_source, url_source, names_variable=names_variable) is allowed
