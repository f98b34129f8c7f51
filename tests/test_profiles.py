"""Profiles: built-ins, the user's file, writing it back, and every validation error."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmswitch.errors import (
    BadResponseError,
    ConfigError,
    ConfigSyntaxError,
    InvalidOptionError,
    ProfileNotFoundError,
    UnsupportedOptionError,
)
from llmswitch.profiles import ProfileStore, builtin_profiles
from tests.helpers import run_cli, write_config


def test_builtins_work_with_no_file(config_file: Path) -> None:
    assert not config_file.exists()
    store = ProfileStore.load()
    assert set(builtin_profiles()) <= set(store.names())
    assert {"local", "openai", "anthropic", "ollama", "echo"} <= set(store.names())
    assert store.default_name == "local"
    assert store.get(None).backend == "llamacpp"


def test_file_overrides_and_extends_builtins(config_file: Path) -> None:
    write_config(config_file, """
default_profile = "fast"
[profiles.openai]
model = "gpt-4.1"
[profiles.fast]
backend = "echo"
model = "quick"
""")
    store = ProfileStore.load()
    builtin = {key: value for key, value in builtin_profiles()["openai"].items() if key != "description"}
    assert store.get("openai").settings == {**builtin, "model": "gpt-4.1"}  # the built-in's note no longer applies
    assert store.get("fast").model == "quick"
    assert store.get(None).name == "fast"


def test_file_replacing_backend_drops_builtin_keys(config_file: Path) -> None:
    write_config(config_file, '[profiles.anthropic]\nbackend = "echo"\n')
    profile = ProfileStore.load().get("anthropic")
    assert profile.settings == {"backend": "echo"}


def test_unknown_profile_lists_close_names() -> None:
    with pytest.raises(ProfileNotFoundError) as info:
        ProfileStore.load().get("antropic")
    assert info.value.suggestions[0] == "anthropic"
    assert info.value.exit_code == 2


def test_prefix_is_suggested() -> None:
    with pytest.raises(ProfileNotFoundError) as info:
        ProfileStore.load().get("open")
    assert "openai" in info.value.suggestions


def test_syntax_error_names_file_line_column(config_file: Path) -> None:
    write_config(config_file, '[profiles.a]\nbackend = "echo"\ntemperature = = 1\n')
    with pytest.raises(ConfigSyntaxError) as info:
        ProfileStore.load()
    assert info.value.line == 3
    assert info.value.column is not None
    assert str(config_file) in str(info.value)


def test_not_utf8_is_a_clear_error(config_file: Path) -> None:
    config_file.write_bytes(b'[profiles.a]\nbackend = "\xff"\n')
    with pytest.raises(ConfigSyntaxError) as info:
        ProfileStore.load()
    assert info.value.line == 2


def test_wrong_shapes_are_config_errors(config_file: Path) -> None:
    write_config(config_file, 'profiles = 3\n')
    with pytest.raises(ConfigError, match="table of tables"):
        ProfileStore.load()
    write_config(config_file, '[profiles]\na = 1\n')
    with pytest.raises(ConfigError, match="profile 'a' must be a table"):
        ProfileStore.load()


def test_unknown_option_names_valid_ones(config_file: Path) -> None:
    write_config(config_file, '[profiles.e]\nbackend = "echo"\nchunk_sise = 3\n')
    result = run_cli("chat", "-p", "e", "hi")
    assert result.exit_code == 2
    assert "unknown option 'chunk_sise'" in result.stderr
    assert "did you mean 'chunk_size'" in result.stderr
    assert "valid options:" in result.stderr


def test_wrong_type_says_expected_type(config_file: Path) -> None:
    write_config(config_file, '[profiles.e]\nbackend = "echo"\ntemperature = "hot"\n')
    result = run_cli("chat", "-p", "e", "hi")
    assert result.exit_code == 2
    assert "'temperature' must be a number, not the string 'hot'" in result.stderr


OPENAI_AT_NOTHING = '[profiles.up]\nbackend = "openai"\nmodel = "m"\napi_key = "sk-test"\nbase_url = "http://127.0.0.1:9/v1"\n'


@pytest.mark.parametrize(("line", "says"), [
    ("temperature = inf", "'temperature' must be a finite number, not inf"),
    ("temperature = -inf", "'temperature' must be a finite number, not -inf"),
    ("top_p = nan", "'top_p' must be a finite number, not nan"),
    ("extra_body = { repetition_penalty = nan }", "'extra_body' holds repetition_penalty = nan, which no server can "
                                                  "read in JSON"),
    ("extra_body = { a = { b = [1.0, inf] } }", "'extra_body' holds a.b.1 = inf"),
])
def test_a_number_that_is_not_finite_is_refused_before_anything_is_sent(config_file: Path, line: str,
                                                                        says: str) -> None:
    # inf and nan are valid TOML; sent on, they came back as "a bug in llmswitch-openai" (exit 1)
    write_config(config_file, OPENAI_AT_NOTHING + line + "\n")
    result = run_cli("chat", "-p", "up", "hi")
    assert result.exit_code == 2, result
    assert f"profile 'up' ({config_file}): {says}" in result.stderr
    assert "bug" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity", "1e999"])
@pytest.mark.parametrize("profile", ["up", "route"])
def test_o_with_a_number_that_is_not_finite_exits_2(config_file: Path, value: str, profile: str) -> None:
    write_config(config_file, OPENAI_AT_NOTHING + '[profiles.route]\nroute = "fallback"\nmembers = ["up"]\n')
    result = run_cli("chat", "-p", profile, "-o", "temperature", value, "hi")
    assert result.exit_code == 2, result
    assert "'temperature' must be a finite number, not " in result.stderr
    assert "hint: temperature: " in result.stderr and "write an ordinary number" in result.stderr
    assert "bug" not in result.stderr


def test_unknown_backend_lists_installed_and_what_to_install(config_file: Path) -> None:
    write_config(config_file, '[profiles.x]\nbackend = "mistery"\n')
    result = run_cli("chat", "-p", "x", "hi")
    assert result.exit_code == 2
    assert "no installed plugin provides the backend 'mistery'" in result.stderr
    assert "installed backends:" in result.stderr and "echo" in result.stderr
    assert "pip install llmswitch-mistery" in result.stderr


def test_add_show_default_remove_round_trip(config_file: Path) -> None:
    write_config(config_file, '# my precious comment\n[profiles.keep]\nbackend = "echo"\nprefix = "k"\n')
    added = run_cli("profiles", "add", "fast", "--backend", "echo", "--model", "m1",
                    "--set", "chunk_size=2", "--set", "temperature=0.5", "--set", "stop=END")
    assert added.exit_code == 0, added
    text = config_file.read_text()
    assert "# my precious comment" in text  # appending keeps what the user wrote
    store = ProfileStore.load()
    assert store.get("fast").settings == {"backend": "echo", "model": "m1", "chunk_size": 2, "temperature": 0.5,
                                        "stop": ["END"]}
    assert store.get("keep").settings == {"backend": "echo", "prefix": "k"}

    shown = run_cli("profiles", "show", "fast")
    assert "chunk_size = 2" in shown.stdout

    assert run_cli("profiles", "default", "fast").exit_code == 0
    assert ProfileStore.load().default_name == "fast"
    listed = run_cli("profiles", "list")
    assert "* fast" in listed.stdout

    again = run_cli("profiles", "add", "fast", "--backend", "echo")
    assert again.exit_code == 2 and "already exists" in again.stderr
    replaced = run_cli("profiles", "add", "fast", "--backend", "echo", "--set", "prefix=new", "--replace")
    assert replaced.exit_code == 0
    assert ProfileStore.load().get("fast").settings == {"backend": "echo", "prefix": "new"}

    assert run_cli("profiles", "remove", "fast").exit_code == 0
    store = ProfileStore.load()
    assert "fast" not in store.user_profiles
    assert store.default_name == "local"  # the default went with the profile
    assert store.get("keep").settings == {"backend": "echo", "prefix": "k"}


def test_list_says_the_builtin_local_is_a_tiny_demo_until_the_file_changes_it(config_file: Path) -> None:
    listed = run_cli("profiles", "list").stdout
    local = next(line for line in listed.splitlines() if line.startswith("* local"))
    assert "smollm2-135m-instruct" in local and "a tiny demo model" in local
    assert "--set model_path=/path/to/model.gguf --replace" in local  # how to point it at a real GGUF
    write_config(config_file, '[profiles.local]\nmodel = "qwen"\nmodel_path = "/models/qwen.gguf"\n')
    listed = run_cli("profiles", "list").stdout
    local = next(line for line in listed.splitlines() if line.startswith("* local"))
    assert "tiny demo" not in local and "[your file]" in local
    assert "tiny demo" not in run_cli("profiles", "show", "local").stdout


def test_add_rejects_bad_options_before_writing(config_file: Path) -> None:
    result = run_cli("profiles", "add", "bad", "--backend", "echo", "--set", "chunk_size=lots")
    assert result.exit_code == 2
    assert "must be an integer" in result.stderr
    bad_key = run_cli("profiles", "add", "bad", "--backend", "echo", "--set", "delai=1")
    assert bad_key.exit_code == 2 and "did you mean 'delay'" in bad_key.stderr
    unknown_backend = run_cli("profiles", "add", "bad", "--backend", "nope")
    assert unknown_backend.exit_code == 2
    assert not config_file.exists()


def test_remove_builtin_and_unknown(config_file: Path) -> None:
    assert "built-in" in run_cli("profiles", "remove", "openai").stderr
    assert "did you mean" in run_cli("profiles", "remove", "ech").stderr


def test_new_file_is_private_and_literal_key_warns(config_file: Path) -> None:
    from llmswitch.plugins import register_plugin, unregister_plugin
    from tests.fake_plugins import KeyedPlugin

    register_plugin(KeyedPlugin(), "keyed")
    try:
        secret = "sk-literal-0123456789abcdef"
        result = run_cli("profiles", "add", "k", "--backend", "keyed", "--set", f"api_key={secret}")
        assert result.exit_code == 0
        assert stat.S_IMODE(os.stat(config_file).st_mode) == 0o600
        os.chmod(config_file, 0o644)
        shown = run_cli("profiles", "show", "k")
        assert secret not in shown.output
        assert "sk-…cdef" in shown.stdout
        assert "other users can read it" in shown.stderr
    finally:
        unregister_plugin("keyed")


# ---- property: no TOML input produces a traceback -------------------------------------------------------

toml_scalars = st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(), st.text(max_size=20))
toml_values = st.recursive(toml_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=3), max_leaves=8)


def _shape_is_valid(document: dict) -> bool:  # type: ignore[type-arg]
    """What ProfileStore promises to accept: profiles a table of tables named without control characters,
    default_profile a string."""
    import unicodedata

    profiles = document.get("profiles", {})
    default = document.get("default_profile")
    return (isinstance(profiles, dict) and all(isinstance(values, dict) for values in profiles.values())
            and not any(unicodedata.category(c) == "Cc" for name in profiles for c in name)
            and (default is None or isinstance(default, str)))


top_level_keys = st.one_of(st.sampled_from(["profiles", "default_profile"]), st.text(min_size=1, max_size=10))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=st.dictionaries(top_level_keys, toml_values, max_size=4))
def test_any_valid_toml_loads_or_fails_cleanly(config_file: Path, document: dict) -> None:  # type: ignore[type-arg]
    import tomli_w

    config_file.write_text(tomli_w.dumps(document))
    _load_and_use_every_profile(config_file, expect_loaded=_shape_is_valid(document))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_any_text_loads_or_fails_cleanly(config_file: Path, text: str) -> None:
    import tomllib

    config_file.write_text(text, encoding="utf-8")
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        with pytest.raises(ConfigSyntaxError) as caught:
            ProfileStore.load()
        lines = max(1, len(text.splitlines()))
        assert caught.value.line is not None and 1 <= caught.value.line <= lines + 1
        assert str(config_file) in caught.value.message and caught.value.remedy
        return
    _load_and_use_every_profile(config_file, expect_loaded=_shape_is_valid(document))


ECHO_VALUES = {  # every key an echo profile may set, with values of the right type
    "model": st.text(min_size=1, max_size=8),
    "temperature": st.floats(min_value=0, max_value=2) | st.integers(0, 2),
    "chunk_size": st.integers(1, 64),
    "stop": st.lists(st.text(min_size=1, max_size=4), max_size=2) | st.text(min_size=1, max_size=4),
    "seed": st.integers(0, 2**31),
    "prefix": st.text(max_size=8),
    "delay": st.floats(min_value=0, max_value=0.001),
    "top_k": st.integers(1, 100),
    "max_tokens": st.integers(1, 4096),
}
WRONG_VALUES = {  # a value each key refuses, and the type its message asks for
    "temperature": ("hot", "a number"), "chunk_size": (1.5, "an integer"), "seed": (True, "an integer"),
    "prefix": (3, "a string"), "delay": ([1], "a number"), "top_k": ("k", "an integer"),
    "max_tokens": ({"a": 1}, "an integer"), "stop": ([1, 2], "a list"),
}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.fixed_dictionaries({}, optional=ECHO_VALUES))
def test_any_valid_echo_profile_loads_and_answers(config_file: Path, values: dict) -> None:  # type: ignore[type-arg]
    import tomli_w

    from llmswitch.client import Client

    config_file.write_text(tomli_w.dumps({"profiles": {"p": {"backend": "echo", **values}}}))
    resolved = Client().resolve("p")
    request = resolved.request("hi there")
    assert request.max_tokens == values.get("max_tokens")
    assert resolved.target.model == values.get("model", "echo")
    echoed = values.get("prefix", "") + "hi there"
    sampling = [name for name in ("temperature", "top_k", "seed") if name in values]
    if sampling:  # settings an echo cannot honour are refused, by name
        with pytest.raises(UnsupportedOptionError) as refused:
            resolved.complete(request)
        assert refused.value.message == f"the echo backend does not support {', '.join(sampling)}"
        return
    try:
        answer = resolved.complete(request).text  # the echo, cut by stop sequences and max_tokens
    except BadResponseError as error:  # a stop sequence at the very start leaves nothing: an error, not ""
        stops = values.get("stop", [])
        assert "without any text" in error.message
        assert any(echoed.startswith(stop) for stop in ([stops] if isinstance(stops, str) else stops))
        return
    assert answer and echoed.startswith(answer)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.fixed_dictionaries({}, optional=ECHO_VALUES), wrong=st.sampled_from(sorted(WRONG_VALUES)))
def test_an_echo_profile_with_one_wrong_value_names_it(config_file: Path, values: dict,  # type: ignore[type-arg]
                                                       wrong: str) -> None:
    import tomli_w

    from llmswitch.client import Client

    value, expected = WRONG_VALUES[wrong]
    config_file.write_text(tomli_w.dumps({"profiles": {"p": {"backend": "echo", **values, wrong: value}}}))
    with pytest.raises(InvalidOptionError) as caught:
        Client().resolve("p")
    assert "profile 'p'" in caught.value.message and f"'{wrong}' must be {expected}" in caught.value.message


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.fixed_dictionaries({}, optional=ECHO_VALUES), unknown=st.sampled_from(["junk", "temprature", "seeds"]))
def test_an_unknown_key_is_refused_with_the_valid_ones(config_file: Path, values: dict,  # type: ignore[type-arg]
                                                       unknown: str) -> None:
    import tomli_w

    from llmswitch.client import Client

    config_file.write_text(tomli_w.dumps({"profiles": {"p": {"backend": "echo", **values, unknown: 1}}}))
    with pytest.raises(InvalidOptionError) as caught:
        Client().resolve("p")
    assert f"unknown option '{unknown}'" in caught.value.message and "chunk_size" in (caught.value.remedy or "")


def _load_and_use_every_profile(config_file: Path, *, expect_loaded: bool) -> None:
    """Loading succeeds exactly when the shape is valid; a refusal names the file; every profile then
    resolves or fails with a sentence, never an unexpected exception."""
    from llmswitch.client import Client
    from llmswitch.errors import LLMSwitchError

    if not expect_loaded:
        with pytest.raises(ConfigError) as caught:
            Client()
        assert str(config_file) in caught.value.message
        return
    client = Client()
    for name in client.store.user_profiles:
        try:
            resolved = client.resolve(name)
            resolved.request("hi")
        except LLMSwitchError as error:
            assert error.message and "Traceback" not in error.message


@pytest.mark.parametrize("name", ["bad\x1b[31mname", "two\nlines", "tab\there", "bell\x07"])
def test_a_profile_name_with_a_control_character_is_refused_where_it_enters(config_file: Path, name: str) -> None:
    added = run_cli("profiles", "add", name, "--backend", "echo")
    assert added.exit_code == 2 and "control character" in added.stderr and "letters, digits, - and _" in added.stderr
    assert "\x1b" not in added.stderr and not config_file.exists()
    import json

    write_config(config_file, f'[profiles.{json.dumps(name)}]\nbackend = "echo"\n')  # a TOML basic string
    listed = run_cli("profiles", "list")
    assert listed.exit_code == 2 and "control character" in listed.stderr, listed.stderr
    assert "\x1b" not in listed.stderr + listed.stdout and "letters, digits, - and _" in listed.stderr


def test_only_plausible_names_are_suggested() -> None:
    with pytest.raises(ProfileNotFoundError) as info:
        ProfileStore.load().get("nope")
    assert info.value.suggestions == []
    with pytest.raises(ProfileNotFoundError) as typo:
        ProfileStore.load().get("opnai")
    assert typo.value.suggestions[0] == "openai"


NO_BACKEND = """
[profiles.q]
model = "x"
[profiles.typed]
type = "fallback"
members = ["echo"]
[profiles.misspelt]
backnd = "echo"
"""


@pytest.mark.parametrize(("name", "hint"), [
    ("q", 'add backend = "NAME" to [profiles.q] (installed: '),
    ("typed", """'type' is not a profile key: did you mean route = "fallback"? Otherwise, add backend = "NAME" """),
    ("misspelt", """'backnd' is not a profile key: did you mean backend = "echo"? Otherwise, add backend"""),
])
def test_a_profile_with_no_backend_and_no_route_is_named_with_what_to_write_everywhere(
        config_file: Path, name: str, hint: str) -> None:
    write_config(config_file, NO_BACKEND)
    says = f"profile '{name}' ({config_file}) names no backend and is not a route"
    chat = run_cli("chat", "-p", name, "hi")
    assert chat.exit_code == 2
    assert says in chat.stderr and hint in chat.stderr and "echo, " in chat.stderr
    assert "backend ''" not in chat.stderr and "pip install" not in chat.stderr
    shown = run_cli("profiles", "show", name)
    assert f"# warning: {says}" in shown.stderr and hint in shown.stderr and "backend ''" not in shown.stderr
    doctor = run_cli("doctor", name, "--offline")
    assert doctor.exit_code == 1
    assert says in doctor.stdout and hint in doctor.stdout and "not installed" not in doctor.stdout
    assert "no backend" in doctor.stdout and "backend ''" not in doctor.stdout


def test_serve_answers_a_profile_with_no_backend_with_a_400_saying_what_to_write(config_file: Path) -> None:
    import anthropic
    import openai

    from tests.servers.gateway import RunningGateway

    write_config(config_file, NO_BACKEND)
    with RunningGateway() as gateway:
        with pytest.raises(openai.BadRequestError) as refused:
            openai.OpenAI(base_url=gateway.base_url, api_key="x", max_retries=0).chat.completions.create(
                model="typed", messages=[{"role": "user", "content": "hi"}])
        assert "profile 'typed' (" in refused.value.message and "names no backend" in refused.value.message
        assert 'did you mean route = "fallback"?' in refused.value.message
        with pytest.raises(anthropic.BadRequestError) as also:
            anthropic.Anthropic(base_url=gateway.url, api_key="x", max_retries=0).messages.create(
                model="q", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
        told = also.value.body["error"]["message"]  # type: ignore[index]
        assert told.startswith("profile 'q' (") and "names no backend" in told and "backend ''" not in told
