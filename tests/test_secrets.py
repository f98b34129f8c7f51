"""Keys: resolution order, masking, and never appearing in full in any output."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmswitch.client import Client
from llmswitch.plugins import register_plugin, unregister_plugin
from llmswitch.secrets import Secret, mask, read_dotenv, redact
from tests.fake_plugins import KeyedPlugin
from tests.helpers import llmswitch_subprocess, run_cli, write_config

FAKE_KEY = "sk-test-SECRET-0123456789-abcdWXYZ"


@pytest.fixture(autouse=True)
def keyed_backend():  # type: ignore[no-untyped-def]
    register_plugin(KeyedPlugin(), "keyed")
    yield
    unregister_plugin("keyed")


def test_mask() -> None:
    assert mask(FAKE_KEY) == "sk-…WXYZ"
    assert mask("short") == "………"
    Secret(FAKE_KEY, "flag")  # a resolved key is one redact() knows
    assert redact(f"bad key {FAKE_KEY}") == "bad key sk-…WXYZ"
    assert redact("nothing secret here") == "nothing secret here"


def test_resolution_order(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(config_file, '[profiles.k]\nbackend = "keyed"\n')
    Path(".env").write_text(f"KEYED_API_KEY='{FAKE_KEY}-dotenv'\n")
    target = Client().resolve("k").target
    assert target.api_key is not None and target.api_key.source == ".env:KEYED_API_KEY"
    assert target.base_url == "https://keyed.example/v1"

    monkeypatch.setenv("KEYED_API_KEY", FAKE_KEY + "-env")
    target = Client().resolve("k").target
    assert target.api_key is not None and target.api_key.source == "env:KEYED_API_KEY"
    assert target.api_key.value.endswith("-env")

    target = Client().resolve("k", api_key=FAKE_KEY + "-flag").target
    assert target.api_key is not None and target.api_key.source == "flag"

    write_config(config_file, '[profiles.k]\nbackend = "keyed"\napi_key_env = "MY_OWN_VAR"\n')
    monkeypatch.setenv("MY_OWN_VAR", FAKE_KEY + "-own")
    target = Client().resolve("k").target
    assert target.api_key is not None and target.api_key.source == "env:MY_OWN_VAR"


def test_default_key_is_not_sent_to_a_custom_base_url(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYED_API_KEY", FAKE_KEY)
    write_config(config_file, '[profiles.local]\nbackend = "keyed"\nbase_url = "http://127.0.0.1:8000/v1"\n'
                 '[profiles.says_so]\nbackend = "keyed"\nbase_url = "http://127.0.0.1:8000/v1"\n'
                 'api_key_env = "KEYED_API_KEY"\n')
    resolved = Client().resolve("local")
    assert resolved.target.api_key is None
    assert any("not sent to the custom base_url" in note for note in resolved.target.notes)
    assert resolved.complete(resolved.request("hi")).text == "key from nowhere; url http://127.0.0.1:8000/v1"
    said_so = Client().resolve("says_so").target
    assert said_so.api_key is not None and said_so.api_key.value == FAKE_KEY


def test_dotenv_parsing(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text('# comment\nA=1\nexport B="two words"\nC=three # trailing\n\nbad line\nD=\'q\'\n')
    assert read_dotenv(env) == {"A": "1", "B": "two words", "C": "three", "D": "q"}


def test_fake_key_never_appears_in_any_output(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYED_API_KEY", FAKE_KEY)
    write_config(config_file, f'[profiles.k]\nbackend = "keyed"\n[profiles.lit]\nbackend = "keyed"\n'
                              f'api_key = "{FAKE_KEY}"\n')
    outputs = [
        run_cli("profiles", "show", "k"),
        run_cli("profiles", "show", "lit"),
        run_cli("profiles", "list", "--json"),
        run_cli("chat", "-p", "k", "--json", "hi"),
        run_cli("chat", "-p", "lit", "--usage", "hi"),
        run_cli("plugins"),
    ]
    for result in outputs:
        assert FAKE_KEY not in result.output
    shown = outputs[0].stdout
    assert "sk-…WXYZ (from env:KEYED_API_KEY)" in shown


def test_key_in_an_exception_message_is_redacted(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmswitch import hookimpl
    from llmswitch.types import BackendInfo

    class LeakyPlugin:
        @hookimpl
        def llmswitch_backends(self):  # type: ignore[no-untyped-def]
            return [BackendInfo(name="leaky", summary="x", key_env="KEYED_API_KEY")]

        @hookimpl
        def complete(self, target, request):  # type: ignore[no-untyped-def]
            raise ValueError(f"server said: invalid key {target.api_key.value}")

    register_plugin(LeakyPlugin(), "leaky")
    try:
        monkeypatch.setenv("KEYED_API_KEY", FAKE_KEY)
        write_config(config_file, '[profiles.l]\nbackend = "leaky"\n')
        result = run_cli("chat", "-p", "l", "hi")
        assert result.exit_code == 1
        assert FAKE_KEY not in result.output
        assert "sk-…WXYZ" in result.stderr
    finally:
        unregister_plugin("leaky")


def test_subprocess_never_prints_the_key(config_file: Path) -> None:
    write_config(config_file, '[profiles.lit]\nbackend = "echo"\nprefix = "x"\n')
    proc = llmswitch_subprocess("chat", "-p", "lit", "--api-key", FAKE_KEY, "--usage", "hi")
    assert FAKE_KEY not in proc.stdout + proc.stderr
