"""The entry-point reader the registry uses instead of ``importlib.metadata`` (too slow to import on every
command): same answer for this environment, and the same rules for the cases that matter."""

from __future__ import annotations

import sys
from pathlib import Path

from llmswitch.entry_points import EntryPoint, entry_points


def distribution(site: Path, folder: str, metadata: str, entry_points_text: str | None,
                 metadata_file: str = "METADATA") -> None:
    info = site / folder
    info.mkdir(parents=True)
    (info / metadata_file).write_text(metadata, encoding="utf-8")
    if entry_points_text is not None:
        (info / "entry_points.txt").write_text(entry_points_text, encoding="utf-8")


def test_the_same_entry_points_as_importlib_metadata_for_this_environment() -> None:
    from importlib.metadata import entry_points as reference

    for group in ("llmswitch", "console_scripts", "pytest11"):
        expected = sorted((ep.name, ep.value, ep.dist.metadata["Name"] if ep.dist else None,
                           ep.dist.version if ep.dist else None) for ep in reference(group=group))
        assert sorted((ep.name, ep.value, ep.distribution, ep.version) for ep in entry_points(group)) == expected
    assert {ep.name for ep in entry_points("llmswitch")} >= {"echo", "openai", "anthropic", "ollama"}


def test_sections_names_comments_and_the_distribution_headers(tmp_path: Path) -> None:
    distribution(tmp_path, "llmswitch_mine-1.2.dist-info",
                 "Metadata-Version: 2.1\nName: llmswitch-mine\nVersion: 1.2.post1\nSummary: Name: not this\n\n"
                 "Name: nor this body line\n",
                 "stray = before_any_section\n# a comment\n[console_scripts]\nmine = mine.cli:main\n\n"
                 "[ llmswitch ]\n; another comment\n#old = commented_out\n"
                 "mine = llmswitch_mine\nother=llmswitch_mine.sub:plugin.attr\nbroken line\nXtra = x_module]\n"
                 "[later]\nx = y\n")
    assert entry_points("llmswitch", [str(tmp_path)]) == [
        EntryPoint("mine", "llmswitch_mine", "llmswitch-mine", "1.2.post1"),
        EntryPoint("other", "llmswitch_mine.sub:plugin.attr", "llmswitch-mine", "1.2.post1"),
        EntryPoint("Xtra", "x_module]", "llmswitch-mine", "1.2.post1"),
    ]
    assert entry_points("console_scripts", [str(tmp_path)]) == [
        EntryPoint("mine", "mine.cli:main", "llmswitch-mine", "1.2.post1")]
    assert entry_points("nothing", [str(tmp_path)]) == []


def test_the_first_copy_of_a_project_on_the_path_wins_and_egg_info_counts(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    distribution(first, "llmswitch.mine-2.0-py3.11.egg-info", "Name\nName: llmswitch-mine\nVersion: 2.0\n",
                 "[llmswitch]\nmine = new_module\n", metadata_file="PKG-INFO")
    distribution(second, "llmswitch_mine-1.0.dist-info", "Name: llmswitch-mine\nVersion: 1.0\n",
                 "[llmswitch]\nmine = old_module\n")
    distribution(second, "without_entry_points-1.0.dist-info", "Name: without-entry-points\n", None)
    distribution(second, "no_metadata-1.0.dist-info", "", "[llmswitch]\nbare = bare_module\n")
    (second / "not-a-distribution.txt").write_text("")
    found = entry_points("llmswitch", [str(first), str(tmp_path / "missing"), str(second), str(first / "x.zip")])
    assert found == [EntryPoint("mine", "new_module", "llmswitch-mine", "2.0"),
                     EntryPoint("bare", "bare_module", None, None)]


def test_load_imports_the_module_and_follows_the_attribute_path(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "ep_target_module.py").write_text("class Plugin:\n    class Inner:\n        name = 'inner'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = EntryPoint("m", "ep_target_module").load()
    assert module is sys.modules["ep_target_module"]
    assert EntryPoint("m", "ep_target_module : Plugin.Inner").load() is module.Plugin.Inner


def test_an_empty_path_entry_means_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    distribution(tmp_path, "here-1.0.dist-info", "Name: here\nVersion: 1.0\n", "[llmswitch]\nhere = here_module\n")
    monkeypatch.chdir(tmp_path)
    assert entry_points("llmswitch", [""]) == [EntryPoint("here", "here_module", "here", "1.0")]
