"""Plugin loading: entry points, isolation of broken plugins, LLMSWITCH_PLUGINS, dispatch."""

from __future__ import annotations

import json
import os
import sys
import timeit
from pathlib import Path

import pytest

from llmswitch import hookimpl
from llmswitch.errors import PluginError, UnknownBackendError
from llmswitch.plugins import get_registry, register_plugin, reset_registry, unregister_plugin
from llmswitch.types import BackendInfo
from tests.helpers import llmswitch_subprocess, run_cli

BROKEN_IMPORT = "import fancy_sdk_that_is_not_installed\n"
BROKEN_HOOK = """
from llmswitch import hookimpl
from llmswitch.types import BackendInfo

@hookimpl
def llmswitch_backends():
    return [BackendInfo(name="wrongsig", summary="x", key_env=None)]

@hookimpl
def complete(target, prompt):  # 'prompt' is not an argument of the spec
    return None
"""
UNKNOWN_HOOK = """
from llmswitch import hookimpl

@hookimpl
def llmswitch_backends():
    return []

@hookimpl
def compleet(target, request):
    return None
"""
LISTS_ONLY = """
from llmswitch import hookimpl

@hookimpl
def llmswitch_backends():
    return []

@hookimpl
def astream_batches(target, request):
    return None
"""
RAISES_IN_DISCOVERY = """
from llmswitch import hookimpl

@hookimpl
def llmswitch_backends():
    raise RuntimeError("discovery exploded")
"""
EXITS_ON_IMPORT = "import sys\nsys.exit(3)\n"


def make_distribution(site: Path, name: str, module_source: str) -> None:
    """Install a one-module distribution into ``site`` the way pip would: module + dist-info."""
    module = f"llmswitch_{name}"
    (site / f"{module}.py").write_text(module_source)
    info = site / f"llmswitch_{name}-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: llmswitch-{name}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[llmswitch]\n{name} = {module}\n")


@pytest.fixture
def broken_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    make_distribution(site, "brokenimport", BROKEN_IMPORT)
    make_distribution(site, "wrongsig", BROKEN_HOOK)
    make_distribution(site, "unknownhook", UNKNOWN_HOOK)
    make_distribution(site, "listsonly", LISTS_ONLY)
    make_distribution(site, "explodes", RAISES_IN_DISCOVERY)
    make_distribution(site, "exits", EXITS_ON_IMPORT)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    import importlib

    importlib.invalidate_caches()
    reset_registry()
    return site


def test_broken_plugins_are_reported_and_echo_still_works(broken_site: Path) -> None:
    registry = get_registry()
    failed = {record.name: record.error for record in registry.failed()}
    assert "fancy_sdk_that_is_not_installed" in (failed["brokenimport"] or "")
    assert "prompt" in (failed["wrongsig"] or "")
    assert "compleet" in (failed["unknownhook"] or "")
    assert "astream_batches without astream" in (failed["listsonly"] or "")
    assert "discovery exploded" in (failed["explodes"] or "")
    assert "SystemExit" in (failed["exits"] or "")
    assert registry.backend("echo").info.name == "echo"
    with pytest.raises(UnknownBackendError):
        registry.backend("wrongsig")


def test_broken_plugins_in_a_real_process(broken_site: Path) -> None:
    listing = llmswitch_subprocess("plugins")
    assert listing.returncode == 0, listing.stderr
    assert "brokenimport  (llmswitch-brokenimport 0.1.0)  FAILED" in listing.stdout
    assert "echo  (llmswitch-echo" in listing.stdout and "loaded" in listing.stdout
    as_json = json.loads(llmswitch_subprocess("plugins", "--json").stdout)
    by_name = {entry["name"]: entry for entry in as_json}
    assert by_name["echo"]["loaded"] is True and "stream" in by_name["echo"]["hooks"]
    assert by_name["wrongsig"]["loaded"] is False
    chat = llmswitch_subprocess("chat", "-p", "echo", "still works")
    assert chat.returncode == 0 and chat.stdout == "still works\n"
    listed = llmswitch_subprocess("profiles", "list")
    assert listed.returncode == 0


def test_llmswitch_plugins_restricts_loading(broken_site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMSWITCH_PLUGINS", "echo")
    reset_registry()
    assert [record.name for record in get_registry().plugins] == ["echo"]
    monkeypatch.setenv("LLMSWITCH_PLUGINS", "")
    reset_registry()
    assert get_registry().plugins == []
    result = run_cli("chat", "-p", "echo", "hi")
    # Built-in profiles are the plugins' own data: with no plugin loaded there is no 'echo' profile either.
    assert result.exit_code == 2 and "no profile named 'echo'" in result.stderr
    listing = run_cli("plugins")  # what to install, from the extras' data (the core names no plugin itself)
    assert listing.exit_code == 0 and "no plugins installed: pip install 'llmswitch[NAME]' adds a backend" in listing.stderr
    assert "local, " in listing.stderr and "`llmswitch plugins new NAME` writes one" in listing.stderr


@pytest.mark.parametrize("order", [("first", "second"), ("second", "first")])
def test_two_plugins_claiming_one_backend_is_refused_whatever_the_order(order: tuple[str, str]) -> None:
    from tests.fake_plugins import FailingPlugin

    for name in order:
        register_plugin(FailingPlugin(), name)
    try:
        with pytest.raises(PluginError, match="declared by several plugins") as caught:
            get_registry().backend("failing")
        assert "first" in caught.value.message and "second" in caught.value.message
    finally:
        for name in order:
            unregister_plugin(name)


class _Twin:
    """Declares the backend ``twin`` with its own summary."""

    def __init__(self, summary: str) -> None:
        self.summary = summary

    @hookimpl
    def llmswitch_backends(self) -> list[BackendInfo]:
        return [BackendInfo(name="twin", summary=self.summary, key_env=None, default_model="t")]


def test_llmswitch_plugins_shows_both_claimants_of_a_backend_as_refused_with_the_reason() -> None:
    register_plugin(_Twin("the first twin"), "twin-a")
    register_plugin(_Twin("the second twin"), "twin-b")
    try:
        text = run_cli("plugins")
        assert text.exit_code == 0, text
        block_a = text.stdout[text.stdout.index("twin-a  ("):text.stdout.index("twin-b  (")]
        block_b = text.stdout[text.stdout.index("twin-b  ("):]
        assert all(block.splitlines()[0].endswith("  REFUSED") for block in (block_a, block_b))
        assert "backend twin: the first twin" in block_a and "backend twin: the second twin" in block_b
        for block in (block_a, block_b):
            assert "declared by several plugins (twin-a, twin-b)" in block and "LLMSWITCH_PLUGINS" in block
        listed = {entry["name"]: entry for entry in json.loads(run_cli("plugins", "--json").stdout)}
        for name in ("twin-a", "twin-b"):
            assert listed[name]["status"] == "refused"
            assert "declared by several plugins" in listed[name]["refused"]["twin"]
        assert listed["echo"]["status"] == "loaded" and listed["echo"]["refused"] == {}
        chat = run_cli("chat", "--profile", "echo", "-m", "x", "still fine")  # other backends are untouched
        assert chat.stdout == "still fine\n"
    finally:
        unregister_plugin("twin-a")
        unregister_plugin("twin-b")


def test_dispatch_costs_microseconds() -> None:
    from llmswitch.client import Client

    registry = get_registry()
    registry.backend("echo")
    per_lookup = min(timeit.repeat(lambda: registry.backend("echo"), number=10_000, repeat=3)) / 10_000
    assert per_lookup < 20e-6  # generous: it is a dict lookup
    resolved = Client().resolve("echo")
    request = resolved.request("x")
    per_call = min(timeit.repeat(lambda: resolved.count_tokens(request), number=2_000, repeat=3)) / 2_000
    assert per_call < 200e-6


def test_help_version_and_profiles_list_import_no_sdk_or_textual() -> None:
    import subprocess

    from tests.helpers import console_script_probe

    probe = console_script_probe(
        "heavy = [m for m in ('openai', 'anthropic', 'llama_cpp', 'textual', 'httpx', 'tiktoken', 'rich', 'torch', 'redis',"
        " 'transformers', 'starlette', 'uvicorn', 'prometheus_client')"
        " if m in sys.modules]\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy))"
    )

    for args in (["--help"], ["--version"], ["profiles", "list"], ["chat", "-p", "echo", "hi"], ["serve", "--help"]):
        proc = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True)
        heavy = proc.stderr.rsplit("HEAVY=", 1)[1].strip()
        assert heavy == "", f"{args} imported {heavy}"
