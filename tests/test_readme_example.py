"""The README's example config, pasted as is, adds profiles and breaks nothing that worked without it."""

from __future__ import annotations

import re
from pathlib import Path

from llmswitch.client import Client
from llmswitch.profiles import builtin_profiles
from tests.helpers import write_config

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_profiles_example() -> str:
    """The first TOML block of the README's Profiles section."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("\n## Profiles"):]
    match = re.search(r"```toml\n(.*?)```", section, re.S)
    assert match, "the README's Profiles section has no TOML example"
    return match.group(1)


def test_the_readme_example_pasted_as_is_keeps_the_default_working(config_file: Path) -> None:
    write_config(config_file, readme_profiles_example())
    client = Client()
    assert client.store.default_name == "local"
    default = client.resolve(None)
    assert dict(default.profile.settings) == builtin_profiles()["local"]  # no model path that does not exist
    assert default.target.api_key is None and not default.target.key_is_required
    for name in client.store.user_profiles:  # every profile it adds is valid for its backend
        client.resolve(name)
    assert set(client.store.user_profiles) == {"claude", "vllm", "fast"}


def test_the_readme_examples_commented_lines_work_once_uncommented(config_file: Path) -> None:
    uncommented = re.sub(r"^# ?(default_profile|\[profiles\.local\]|model_path|model =)", r"\1", readme_profiles_example(),
                         flags=re.M)
    write_config(config_file, uncommented)
    client = Client()
    assert client.store.default_name == "claude"
    assert client.resolve("local").settings["model_path"].endswith(".gguf")
    assert client.resolve("claude").target.key_is_required
