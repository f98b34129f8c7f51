"""Credentials outside ``api_key`` are secrets too: secret headers, credentials inside ``base_url``, and
``api_key_env`` set to the key itself. None of them is ever shown, printed as JSON, stored or rendered in full,
even when a server echoes them back in an error body."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from llmswitch import secrets
from llmswitch.config import data_dir
from llmswitch.secrets import (
    excerpt,
    is_secret_header,
    looks_like_a_key,
    redact,
    remember_profile_secrets,
    shown_setting,
    url_credentials,
)
from tests.helpers import run_cli, write_config
from tests.servers.echoing_server import echoing_server
from tests.servers.http import refused_port

API_KEY = "sk-api-0123456789abcdefAPIK"
HEADER_TOKEN = "hdr-token-0123456789abcdefHTOK"
HEADER_KEY = "hdr-key-0123456789abcdefHKEY"
URL_PASSWORD = "urlpass0123456789abcdefUPAS"
QUERY_KEY = "qkey0123456789abcdefQKEY"
BASIC = base64.b64encode(f"me:{URL_PASSWORD}".encode()).decode()
SECRETS = (API_KEY, HEADER_TOKEN, HEADER_KEY, URL_PASSWORD, QUERY_KEY, BASIC)


@pytest.fixture(autouse=True)
def forget_remembered_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no remembered credential, so one test's loading cannot hide another's leak."""
    monkeypatch.setattr(secrets, "_KNOWN_SECRETS", set())


def assert_no_secret(text: str | bytes) -> None:
    data = text.encode() if isinstance(text, str) else text
    for secret in SECRETS:
        assert secret.encode() not in data, f"{secret} leaked"


def stored_bytes() -> bytes:
    """Every byte llmswitch keeps on disk: the history and the ledger, WAL files included."""
    return b"".join(path.read_bytes() for path in data_dir().rglob("*") if path.is_file())


# ---- recognising credentials ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "secret"), [
    ("Authorization", True), ("proxy-authorization", True), ("X-Api-Key", True), ("api-key", True),
    ("X-Auth-Token", True), ("x-goog-api-key", True), ("Cookie", True), ("X-Client-Secret", True),
    ("X-Title", False), ("HTTP-Referer", False), ("anthropic-version", False), ("X-Keyboard", False),
])
def test_secret_header_names(name: str, secret: bool) -> None:
    assert is_secret_header(name) is secret


@pytest.mark.parametrize(("value", "is_key"), [
    ("OPENAI_API_KEY", False), ("MY_GATEWAY_KEY", False), ("openai_api_key_prod2", False), ("GROQ_API_KEY", False),
    ("sk-proj-abc123DEF456ghi789", True), ("gsk_8fJ2kd9Lq0Zx7Vb3Nm4Pq1Rt", True), ("AIzaSyA1b2C3d4E5f6G7h8", True),
    ("abc123def456ghi789jkl0", True), ("my key", True),
])
def test_api_key_env_holding_a_key_is_recognised(value: str, is_key: bool) -> None:
    assert looks_like_a_key(value) is is_key


def test_credentials_inside_urls_are_found_and_scrubbed_by_shape() -> None:
    url = f"https://me:{URL_PASSWORD}@gw.example/v1?api_key={QUERY_KEY}&region=eu"
    assert {URL_PASSWORD, QUERY_KEY} <= set(url_credentials(url))
    shown = redact(f"cannot reach {url} (refused); also http://tok{HEADER_TOKEN}@h/ and ?key=short1")
    assert_no_secret(shown)
    assert "region=eu" in shown and "gw.example/v1" in shown and "short1" not in shown


def test_settings_are_shown_with_every_credential_masked() -> None:
    headers = {"Authorization": f"Bearer {HEADER_TOKEN}", "X-Api-Key": HEADER_KEY, "X-Title": "mine"}
    shown = shown_setting("headers", headers)
    assert shown == {"Authorization": "Bearer hd…HTOK", "X-Api-Key": "hd…HKEY", "X-Title": "mine"}
    assert shown_setting("api_key_env", API_KEY) == "sk-…APIK"
    assert shown_setting("api_key_env", "OPENAI_API_KEY") == "OPENAI_API_KEY"
    assert_no_secret(str(shown_setting("base_url", f"http://me:{URL_PASSWORD}@h/v1?key={QUERY_KEY}")))
    remember_profile_secrets({"headers": headers})
    assert_no_secret(redact(f"the proxy said: token {HEADER_TOKEN} and key {HEADER_KEY} are wrong"))


# ---- api_key_env set to the key itself --------------------------------------------------------------------------


def test_api_key_env_set_to_the_key_is_named_as_a_mix_up(config_file: Path) -> None:
    pytest.importorskip("llmswitch_openai")
    write_config(config_file, f'[profiles.p]\nbackend = "openai"\napi_key_env = "{API_KEY}"\n')
    result = run_cli("chat", "-p", "p", "--no-history", "hi")
    assert result.exit_code == 2
    assert "api_key_env holds what looks like an API key (sk-…APIK)" in result.stderr
    assert "export MY_KEY_VARIABLE" in result.stderr
    shown = run_cli("profiles", "show", "p")
    assert 'api_key_env = "sk-…APIK"' in shown.stdout and "looks like an API key" in shown.stderr
    doctor = run_cli("doctor", "--json", "--offline", "p")
    config_check = next(c for c in json.loads(doctor.stdout)["profiles"][0]["checks"] if c["name"] == "config")
    assert config_check["status"] == "fail" and "looks like an API key" in config_check["detail"]
    for output in (result.output, shown.output, doctor.output, run_cli("doctor", "--offline", "p").output):
        assert_no_secret(output)


# ---- everywhere they could show -------------------------------------------------------------------------------


def profile_for(backend: str, url: str) -> str:
    headers = f'headers = {{ X-Api-Key = "{HEADER_KEY}", X-Auth-Token = "{HEADER_TOKEN}", X-Title = "visible-title" }}'
    if backend == "ollama":  # Ollama's host syntax has no user-info; its credentials go in headers
        return (f'[profiles.p]\nbackend = "ollama"\nmodel = "llama3.2"\nbase_url = "{url}"\n'
                f'headers = {{ Authorization = "Bearer {HEADER_TOKEN}", X-Api-Key = "{HEADER_KEY}", '
                f'X-Title = "visible-title" }}\n')
    with_userinfo = url.replace("http://", f"http://me:{URL_PASSWORD}@")
    suffix = "/v1" if backend == "openai" else ""
    return (f'[profiles.p]\nbackend = "{backend}"\nmodel = "test-model"\nbase_url = "{with_userinfo}{suffix}"\n'
            f'api_key = "{API_KEY}"\n{headers}\n')


@pytest.mark.parametrize("backend", ["openai", "anthropic", "ollama"])
def test_a_server_echoing_credentials_back_is_redacted_everywhere(backend: str, config_file: Path) -> None:
    pytest.importorskip(f"llmswitch_{backend}")
    with echoing_server() as server:
        write_config(config_file, profile_for(backend, server.url))
        text = run_cli("chat", "-p", "p", "hi")
        as_json = run_cli("chat", "-p", "p", "--json", "hi")
        doctor_json = run_cli("doctor", "--json", "--timeout", "5", "p")
        doctor_text = run_cli("doctor", "--timeout", "5", "p")
        shown = run_cli("profiles", "show", "p")
        received = [json.dumps(request.headers) for request in server.state.requests]
    # The server did receive the credentials (they were the profile's own, for its own base_url) ...
    assert any(HEADER_KEY in headers for headers in received)
    # ... and echoed them: the error shows the echo, with every credential masked.
    assert text.exit_code == 1 and "invalid credentials" in text.stderr and "visible-title" in text.stderr
    assert "hd…HKEY" in text.stderr
    error = json.loads(as_json.stdout)["error"]
    assert "invalid credentials" in error["message"]
    for output in (text.output, as_json.output, doctor_json.output, doctor_text.output, shown.output):
        assert_no_secret(output)
    stored = stored_bytes()
    assert b"invalid credentials" in stored  # the failed answer was recorded in the history ...
    assert_no_secret(stored)                 # ... without the credentials


def test_credentials_in_base_url_are_masked_in_listings_and_errors(config_file: Path) -> None:
    pytest.importorskip("llmswitch_openai")
    url = f"http://me:{URL_PASSWORD}@127.0.0.1:{refused_port()}/v1?api_key={QUERY_KEY}"
    write_config(config_file, f'[profiles.p]\nbackend = "openai"\nmodel = "m"\nbase_url = "{url}"\n')
    shown = run_cli("profiles", "show", "p")
    assert "127.0.0.1" in shown.stdout and "…@" in shown.stdout
    failed = run_cli("chat", "-p", "p", "--json", "hi")
    assert failed.exit_code == 1
    doctor = run_cli("doctor", "--json", "p")
    assert json.loads(doctor.stdout)["profiles"][0]["base_url"].startswith("http://…@127.0.0.1:")
    for output in (shown.output, failed.output, doctor.output):
        assert_no_secret(output)
    assert_no_secret(stored_bytes())


def test_a_readable_file_holding_a_secret_header_gets_the_chmod_warning(config_file: Path) -> None:
    write_config(config_file, f'[profiles.p]\nbackend = "echo"\nheaders = {{ Authorization = "Bearer {HEADER_TOKEN}" }}\n')
    config_file.chmod(0o644)
    shown = run_cli("profiles", "show", "p")
    assert "other users can read it" in shown.stderr and f"chmod 600 {config_file}" in shown.stderr
    config_file.chmod(0o600)
    assert "other users can read it" not in run_cli("profiles", "show", "p").stderr


@given(
    secret=st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=12,
                   max_size=60),
    before=st.text(max_size=200), after=st.text(max_size=200), limit=st.integers(min_value=1, max_value=400),
)
@settings(max_examples=300, deadline=None)
def test_no_text_shows_a_remembered_secret_whatever_surrounds_it_or_where_it_is_cut(
    secret: str, before: str, after: str, limit: int
) -> None:
    text = f"{before}{secret}{after}"
    # One occurrence, where it was put: a secret of one repeated character overlapping the same characters
    # around it ("0000" + "000000000000") is found at another place, and what stays visible is the user's text.
    assume(text.find(secret) == len(before) and text.find(secret, len(before) + 1) == -1)
    secrets.remember_secret(secret)
    assert secret not in redact(text)
    cut = excerpt(text, limit)
    # A cut never leaves the first half of the secret on show either.
    assert secret[: len(secret) // 2 + 1] not in cut or secret[: len(secret) // 2 + 1] in f"{before}{after}"


@given(st.text(max_size=300).filter(lambda text: "://" not in text and "=" not in text))
def test_text_without_credentials_is_left_alone(text: str) -> None:
    assert redact(text) == text
