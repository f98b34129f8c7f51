"""Profiles from the environment: LLMSWITCH_PROFILE, LLMSWITCH_PROFILES and LLMSWITCH_PROFILE_<NAME>_<KEY>."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmswitch.client import Client
from llmswitch.errors import LLMSwitchError
from llmswitch.profiles import ProfileStore
from tests.helpers import run_cli, write_config


def test_llmswitch_profile_picks_the_default_and_the_flag_still_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMSWITCH_PROFILE", "echo")
    assert ProfileStore.load().default_name == "echo"
    assert run_cli("chat", "--no-history", "hello").stdout == "hello\n"
    assert ProfileStore.load().get("local").backend == "llamacpp"
    listed = run_cli("profiles", "list")
    assert "* echo" in listed.stdout and "LLMSWITCH_PROFILE" in listed.stderr


def test_llmswitch_profile_naming_nothing_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMSWITCH_PROFILE", "ecko")
    result = run_cli("chat", "--no-history", "hello")
    assert result.exit_code == 2
    assert "no profile named 'ecko' (the default, from LLMSWITCH_PROFILE)" in result.stderr
    assert "did you mean 'echo'" in result.stderr


def test_a_whole_profile_from_variables_is_typed_like_the_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMSWITCH_PROFILE_CI_BOT_BACKEND", "echo")
    monkeypatch.setenv("LLMSWITCH_PROFILE_CI_BOT_PREFIX", ">> ")
    monkeypatch.setenv("LLMSWITCH_PROFILE_CI_BOT_CHUNK_SIZE", "2")
    monkeypatch.setenv("LLMSWITCH_PROFILE_CI_BOT_STOP", '["END"]')
    resolved = Client().resolve("ci_bot")
    assert resolved.settings["chunk_size"] == 2 and resolved.settings["stop"] == ["END"]
    assert resolved.profile.origin("prefix") == "LLMSWITCH_PROFILE_CI_BOT_PREFIX"
    assert run_cli("chat", "-p", "ci_bot", "--no-history", "hi").stdout == ">> hi\n"


@pytest.mark.parametrize(("variable", "value", "expected"), [
    ("LLMSWITCH_PROFILE_CI_CHUNK_SIZE", "lots", "'chunk_size' must be an integer, not 'lots'"),
    ("LLMSWITCH_PROFILE_CI_CHUNK_SISE", "2", "did you mean 'chunk_size'"),
    ("LLMSWITCH_PROFILE_CI_TEMPERATURE", "hot", "'temperature' must be a number"),
])
def test_a_bad_variable_is_named(monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str) -> None:
    monkeypatch.setenv("LLMSWITCH_PROFILE_CI_BACKEND", "echo")
    monkeypatch.setenv(variable, value)
    result = run_cli("chat", "-p", "ci", "--no-history", "hi")
    assert result.exit_code == 2
    assert variable in result.stderr and expected in result.stderr
    assert "Traceback" not in result.stderr


def test_a_variable_for_no_profile_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMSWITCH_PROFILE_NOPE_MODEL", "m")
    result = run_cli("profiles", "list")
    assert result.exit_code == 2
    assert "LLMSWITCH_PROFILE_NOPE_MODEL names no profile" in result.stderr
    assert "LLMSWITCH_PROFILE_<NAME>_BACKEND" in result.stderr


def test_a_snippet_adds_profiles_and_its_errors_name_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMSWITCH_PROFILES", 'profiles.snip = { backend = "echo", prefix = "S:" }')
    assert run_cli("chat", "-p", "snip", "--no-history", "hi").stdout == "S:hi\n"
    monkeypatch.setenv("LLMSWITCH_PROFILES", '[profiles.snip]\nbackend = "echo"\nprefix = = 1\n')
    broken = run_cli("profiles", "list")
    assert broken.exit_code == 2 and "LLMSWITCH_PROFILES" in broken.stderr and "line 3" in broken.stderr
    monkeypatch.setenv("LLMSWITCH_PROFILES", '[snip]\nbackend = "echo"\n')
    stray = run_cli("profiles", "list")
    assert stray.exit_code == 2 and "LLMSWITCH_PROFILES may hold only profiles" in stray.stderr


def test_precedence_variable_over_snippet_over_file_over_built_in(config_file: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(config_file, '[profiles.echo]\nprefix = "file:"\nchunk_size = 3\n')
    assert ProfileStore.load().get("echo").settings["prefix"] == "file:"
    monkeypatch.setenv("LLMSWITCH_PROFILES", '[profiles.echo]\nprefix = "snippet:"\n')
    assert ProfileStore.load().get("echo").settings["prefix"] == "snippet:"
    monkeypatch.setenv("LLMSWITCH_PROFILE_ECHO_PREFIX", "variable:")
    profile = ProfileStore.load().get("echo")
    assert profile.settings == {**profile.settings, "prefix": "variable:", "chunk_size": 3, "model": "echo"}
    assert profile.origin("prefix") == "LLMSWITCH_PROFILE_ECHO_PREFIX"
    assert profile.origin("chunk_size") == str(config_file)
    assert profile.origin("model") == "built-in"
    # Another backend replaces the profile rather than mixing two backends' keys.
    monkeypatch.setenv("LLMSWITCH_PROFILE_OPENAI_BACKEND", "echo")
    assert ProfileStore.load().get("openai").settings == {"backend": "echo"}


def test_a_base_url_from_the_environment_gets_no_provider_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-provider-key-0123456789")
    monkeypatch.setenv("LLMSWITCH_PROFILE_OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    target = Client().resolve("openai").target
    assert target.base_url == "http://127.0.0.1:9/v1"
    assert target.api_key is None  # the key is for api.openai.com, not for a URL set somewhere else
    monkeypatch.setenv("LLMSWITCH_PROFILE_OPENAI_API_KEY_ENV", "OPENAI_API_KEY")  # said in the same place
    target = Client().resolve("openai").target
    assert target.api_key is not None and target.api_key.value == "sk-provider-key-0123456789"


def test_environment_profiles_are_not_in_the_file(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMSWITCH_PROFILE_CI_BACKEND", "echo")
    removed = run_cli("profiles", "remove", "ci")
    assert removed.exit_code == 2 and "comes from the environment" in removed.stderr
    default = run_cli("profiles", "default", "ci")
    assert default.exit_code == 2 and "LLMSWITCH_PROFILE=ci" in default.stderr
    assert not config_file.exists()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["MODEL", "CHUNK_SIZE", "DELAY", "STOP", "TEMPERATURE", "SEED", "PRESET", "JUNK",
                            "PREFIX", "TOP_K", "MAX_TOKENS"]),
       text=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1,
                    max_size=12))
def test_any_variable_text_validates_or_fails_naming_the_variable(monkeypatch: pytest.MonkeyPatch, key: str,
                                                                    text: str) -> None:
    variable = f"LLMSWITCH_PROFILE_P_{key}"
    with monkeypatch.context() as patch:  # one example's variable must not leak into the next
        patch.setenv("LLMSWITCH_PROFILE_P_BACKEND", "echo")
        patch.setenv(variable, text)
        try:
            Client().resolve("p").request("hi")
        except LLMSwitchError as error:
            assert variable in error.message
