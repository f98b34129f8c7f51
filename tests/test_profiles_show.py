"""`profiles list` shows the model each profile runs; `profiles show` every setting, its value and its origin."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import run_cli, write_config

CONFIG = """\
[profiles.fast]
backend = "openai"
preset = "groq"

[profiles.local]
model_path = "/models/qwen2.5-7b-instruct-q4_k_m.gguf"
temperature = 0.2
"""


def _rows(stdout: str) -> dict[str, list[str]]:
    return {line[2:].split()[0]: line[2:].split() for line in stdout.splitlines()}


def test_list_shows_the_model_each_profile_runs(config_file: Path) -> None:
    write_config(config_file, CONFIG)
    result = run_cli("profiles", "list")
    assert result.exit_code == 0, result
    rows = _rows(result.stdout)
    assert rows["fast"][2] == "llama-3.3-70b-versatile"  # the preset's model, not "(backend default)"
    assert rows["local"][2] == "/models/qwen2.5-7b-instruct-q4_k_m.gguf"  # the file it runs, not gemma-3-270m
    assert rows["echo"][2] == "echo"
    assert "(backend default)" not in result.stdout
    listed = {entry["name"]: entry for entry in json.loads(run_cli("profiles", "list", "--json").stdout)}
    assert listed["fast"]["model"] == "llama-3.3-70b-versatile"
    assert listed["local"]["model"] == "/models/qwen2.5-7b-instruct-q4_k_m.gguf"


def test_list_survives_a_profile_it_cannot_resolve(config_file: Path) -> None:
    write_config(config_file, '[profiles.odd]\nbackend = "nobody"\nmodel = "m"\n[profiles.bad]\nbackend = "echo"\n'
                              'chunk_size = "x"\n')
    result = run_cli("profiles", "list")
    assert result.exit_code == 0
    rows = _rows(result.stdout)
    assert rows["odd"][2] == "m"
    assert "profiles show bad" in result.stdout


def test_show_lists_every_option_of_the_backend_with_its_origin(config_file: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMSWITCH_PROFILE_ECHO_PREFIX", "> ")
    write_config(config_file, "[profiles.echo]\nchunk_size = 3\n")
    shown = run_cli("profiles", "show", "echo")
    assert shown.exit_code == 0, shown
    lines = {line.split()[0]: line.split() for line in shown.stdout.splitlines() if line.strip()}
    assert lines["chunk_size"][:5] == ["chunk_size", "int", "8", "3", "your"]
    assert lines["delay"][:5] == ["delay", "float", "0.0", "0.0", "default"]
    assert lines["prefix"][-1] == "LLMSWITCH_PROFILE_ECHO_PREFIX"
    for generation in ("system", "temperature", "top_p", "top_k", "max_tokens", "stop", "seed"):
        assert generation in lines
    settings = {s["name"]: s for s in json.loads(run_cli("profiles", "show", "echo", "--json").stdout)["settings"]}
    assert settings["prefix"] == {"name": "prefix", "group": "backend", "type": "str", "default": "",
                                  "value": "> ", "from": "LLMSWITCH_PROFILE_ECHO_PREFIX",
                                  "description": "text put before the echo"}
    assert settings["chunk_size"]["from"] == "your file" and settings["chunk_size"]["value"] == 3
    assert settings["model"]["from"] == "built-in"
    assert settings["temperature"] == {**settings["temperature"], "group": "generation", "value": None,
                                       "from": "default"}


def test_show_says_which_values_a_preset_supplied_and_what_runs(config_file: Path) -> None:
    write_config(config_file, CONFIG)
    fast = {s["name"]: s for s in json.loads(run_cli("profiles", "show", "fast", "--json").stdout)["settings"]}
    assert fast["model"]["value"] == "llama-3.3-70b-versatile" and fast["model"]["from"] == "preset groq"
    assert fast["base_url"]["from"] == "preset groq" and fast["preset"]["from"] == "your file"
    assert fast["timeout"]["from"] == "default"
    local = run_cli("profiles", "show", "local")
    assert "# runs: /models/qwen2.5-7b-instruct-q4_k_m.gguf" in local.stdout
    local_json = json.loads(run_cli("profiles", "show", "local", "--json").stdout)
    by_name = {s["name"]: s for s in local_json["settings"]}
    assert by_name["model_path"]["from"] == "your file"
    assert by_name["n_ctx"]["from"] == "default" and by_name["n_ctx"]["type"] == "int"
    assert by_name["temperature"]["value"] == 0.2
    assert [s["name"] for s in local_json["settings"]].count("seed") == 1
