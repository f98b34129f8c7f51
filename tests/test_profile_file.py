"""Editing the config file keeps what the user wrote: comments, order and spacing."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmswitch.config import parse_toml
from llmswitch.profiles import ProfileStore
from tests.helpers import run_cli, write_config

COMMENTED = """\
# My llmswitch profiles.
# Keep this file private.
default_profile = "work"

# The server at the office.
[profiles.work]
backend = "echo"   # switch to openai on Monday
# a slow start helps the demo
delay = 0.0
prefix = "w"

# Everything below is for experiments.

# Home lab.
[profiles.home]
backend = "echo"
chunk_size = 4

[profiles.home.extra]
# inside the extra table
k = 1
# about the last one
[profiles.last]
backend = "echo"  # the last one
"""


def test_remove_keeps_every_other_comment(config_file: Path) -> None:
    write_config(config_file, COMMENTED)
    assert run_cli("profiles", "remove", "work").exit_code == 0
    text = config_file.read_text()
    assert "The server at the office" not in text and "switch to openai" not in text  # work's own comments
    for kept in ("# My llmswitch profiles.", "# Keep this file private.", "# Everything below is for experiments.",
                 "# Home lab.", "# inside the extra table", "# about the last one", "# the last one"):
        assert kept in text
    assert "default_profile" not in text  # it named the removed profile
    assert list(parse_toml(text, "t")["profiles"]) == ["home", "last"]


def test_remove_a_table_with_sub_tables_keeps_the_next_profiles_comment(config_file: Path) -> None:
    write_config(config_file, COMMENTED)
    assert run_cli("profiles", "remove", "home").exit_code == 0
    text = config_file.read_text()
    assert "# Home lab." not in text and "# inside the extra table" not in text
    for kept in ("# Everything below is for experiments.", "# about the last one", "# the last one"):
        assert kept in text
    assert parse_toml(text, "t")["profiles"] == {
        "work": {"backend": "echo", "delay": 0.0, "prefix": "w"}, "last": {"backend": "echo"}}


def test_default_and_replace_change_only_their_lines(config_file: Path) -> None:
    write_config(config_file, COMMENTED)
    assert run_cli("profiles", "default", "home").exit_code == 0
    assert config_file.read_text() == COMMENTED.replace('default_profile = "work"', 'default_profile = "home"')
    replaced = run_cli("profiles", "add", "work", "--backend", "echo", "--set", "prefix=W", "--set", "delay=0",
                       "--set", "chunk_size=2", "--replace")
    assert replaced.exit_code == 0, replaced
    text = config_file.read_text()
    assert 'backend = "echo"   # switch to openai on Monday\n# a slow start helps the demo\ndelay = 0.0\n' in text
    assert 'prefix = "W"\nchunk_size = 2\n\n# Everything below' in text  # the new key joins the table's keys
    assert ProfileStore.load().get("work").settings == {"backend": "echo", "delay": 0.0, "prefix": "W",
                                                      "chunk_size": 2}


def test_setting_a_default_in_a_file_without_one_goes_above_the_profiles(config_file: Path) -> None:
    write_config(config_file, "# header\n\n# first\n[profiles.a]\nbackend = \"echo\"\n")
    assert run_cli("profiles", "default", "a").exit_code == 0
    assert config_file.read_text() == '# header\n\ndefault_profile = "a"\n\n# first\n[profiles.a]\nbackend = "echo"\n'


def test_inline_and_dotted_profiles_are_removed_too(config_file: Path) -> None:
    write_config(config_file, '# keep\n[profiles]\nc = { backend = "echo" }  # c\na.backend = "echo"\n'
                              '[profiles.b]\nbackend = "echo"  # b\n')
    store = ProfileStore.load()
    store.remove("c")
    store.remove("a")
    text = config_file.read_text()
    assert "# keep" in text and "# b" in text
    assert parse_toml(text, "t") == {"profiles": {"b": {"backend": "echo"}}}


# ---- property: any sequence of edits keeps every comment not attached to a removed profile --------------

NAMES = ["alpha", "beta", "gamma", "delta"]


@st.composite
def commented_files(draw: st.DrawFn) -> tuple[str, dict[str, dict[str, object]], dict[str, str]]:
    """A config file with comments everywhere; returns its text, its profiles, and each comment's owner."""
    owners: dict[str, str] = {}
    counter = iter(range(1000))

    def comment(owner: str) -> str:
        text = f"# c{next(counter)}"
        owners[text] = owner
        return text

    lines = [comment("file"), 'default_profile = "alpha"', ""]
    profiles: dict[str, dict[str, object]] = {}
    for name in draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=4)):
        if draw(st.booleans()):
            lines.append(comment(name))  # directly above the header: it introduces this profile
        lines.append(f"[profiles.{name}]")
        if draw(st.booleans()):
            lines.append(comment(name))
        lines.append(f'backend = "echo"  {comment(name)}')
        values: dict[str, object] = {"backend": "echo"}
        if draw(st.booleans()):
            values["prefix"] = draw(st.sampled_from(["p", "q"]))
            lines.append(f'prefix = "{values["prefix"]}"')
        if draw(st.booleans()):
            lines += [f"[profiles.{name}.extra]", comment(name), "k = 1"]
            values["extra"] = {"k": 1}
        if draw(st.booleans()):
            lines += ["", comment("free")]  # after the last key, apart: it introduces what follows
        lines.append("")
        profiles[name] = values
    return "\n".join(lines) + "\n", profiles, owners


operations = st.lists(st.tuples(st.sampled_from(["add", "remove", "default"]), st.sampled_from(NAMES),
                                st.sampled_from(["p", "q", None])), max_size=8)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(file=commented_files(), steps=operations)
def test_any_edit_sequence_keeps_comments_not_attached_to_a_removed_profile(
    config_file: Path, file: tuple[str, dict[str, dict[str, object]], dict[str, str]],
    steps: list[tuple[str, str, str | None]],
) -> None:
    text, profiles, owners = file
    write_config(config_file, text)
    removed: set[str] = set()
    for operation, name, prefix in steps:
        store = ProfileStore.load()
        if operation == "add":
            values = dict(profiles.get(name, {"backend": "echo"}))  # a replacement keeps the keys, changes one
            if prefix is not None:
                values["prefix"] = prefix
            store.add(name, values, replace=name in profiles)
            profiles[name] = values
        elif operation == "remove" and name in profiles:
            store.remove(name)
            del profiles[name]
            removed.add(name)
        elif operation == "default" and name in profiles:
            store.set_default(name)
        written = config_file.read_text()
        document = parse_toml(written, "t")
        assert document.get("profiles", {}) == profiles
        assert list(document.get("profiles", {})) == list(profiles)  # order kept, new ones last
        present = set(re.findall(r"# c\d+", written))
        expected = {comment for comment, owner in owners.items() if owner not in removed}
        assert present == expected
