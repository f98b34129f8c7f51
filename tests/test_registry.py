"""``llmswitch.plugins``, rule by rule: what each failure of a plugin is recorded as, how a backend two plugins
claim is refused, what an unknown backend's message offers, and which plugins ``LLMSWITCH_PLUGINS`` admits.
Plugins here are objects registered from Python or distributions written into a temporary site folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llmswitch import hookimpl
from llmswitch.errors import PluginError, UnknownBackendError
from llmswitch.plugins import (
    PluginRecord,
    Registry,
    conflict_error,
    distribution_for,
    get_registry,
    install_hint,
    register_plugin,
    reset_registry,
    unknown_backend,
    unregister_plugin,
)
from llmswitch.types import BackendInfo, Request, Response, Target


def info(name: str, summary: str = "s") -> BackendInfo:
    return BackendInfo(name=name, summary=summary, key_env=None, default_model="m")


class Declares:
    """A plugin declaring the given backends, with a ``complete`` hook."""

    def __init__(self, *names: str) -> None:
        self.names = names

    @hookimpl
    def llmswitch_backends(self) -> list[BackendInfo]:
        return [info(name) for name in self.names]

    @hookimpl
    def complete(self, target: Target, request: Request) -> Response:
        return Response("ok")


class DeclaresOne:
    @hookimpl
    def llmswitch_backends(self) -> BackendInfo:  # one BackendInfo, not a list: accepted as a list of one
        return info("single")

    @hookimpl
    def stream(self, target: Target, request: Request) -> Any:
        return iter(())


class DeclaresNothing:
    @hookimpl
    def llmswitch_backends(self) -> None:
        return None


class DeclaresGarbage:
    @hookimpl
    def llmswitch_backends(self) -> list[Any]:
        return [info("fine"), {"name": "dict"}]


class NoDiscovery:
    @hookimpl
    def complete(self, target: Target, request: Request) -> Response:
        return Response("x")


class Misspelt:
    @hookimpl
    def llmswitch_backends(self) -> list[BackendInfo]:
        return [info("misspelt")]

    @hookimpl
    def compleet(self, target: Target, request: Request) -> Response:
        return Response("x")

    @hookimpl
    def strem(self, target: Target, request: Request) -> Any:
        return iter(())


class DiscoveryRaises:
    @hookimpl
    def llmswitch_backends(self) -> list[BackendInfo]:
        raise PluginError("no table for you")


def fresh() -> Registry:
    return Registry()


def test_a_good_plugin_is_loaded_with_its_hooks_and_backends() -> None:
    registry = fresh()
    record = PluginRecord(name="good")
    plugin = Declares("a", "b")
    registry.add(plugin, record)
    assert record.error is None and record.loaded and record.status == "loaded"
    assert record.hooks == ("complete",)  # the discovery hook is not a call hook
    assert record.backends == ("a", "b") and [i.name for i in record.declared] == ["a", "b"]
    handle = registry.backend("a")
    assert handle.plugin is record and handle.info.name == "a" and handle.conflict == []
    assert handle.hooks["complete"].__self__ is plugin  # the plugin's own function, found directly
    assert set(handle.hooks) == {"complete"}
    assert registry.plugins == [record] and registry.failed() == []


def test_a_single_backend_info_counts_as_a_list_of_one_and_none_as_none() -> None:
    registry = fresh()
    one, none = PluginRecord(name="one"), PluginRecord(name="none")
    registry.add(DeclaresOne(), one)
    registry.add(DeclaresNothing(), none)
    assert one.backends == ("single",) and set(registry.backend("single").hooks) == {"stream"}
    assert none.error is None and none.backends == () and none.status == "loaded"


def test_each_way_a_plugin_fails_is_recorded_by_name_and_the_others_load() -> None:
    registry = fresh()
    garbage, missing, misspelt, raises = (PluginRecord(name=n) for n in ("garbage", "missing", "misspelt",
                                                                          "raises"))
    registry.add(DeclaresGarbage(), garbage)
    registry.add(NoDiscovery(), missing)
    registry.add(Misspelt(), misspelt)
    registry.add(DiscoveryRaises(), raises)
    registry.add(Declares("ok"), PluginRecord(name="ok"))
    assert garbage.error == "llmswitch_backends() returned dict, not BackendInfo"
    assert missing.error == "does not implement llmswitch_backends(), so it declares no backend"
    assert misspelt.error == "implements hooks llmswitch does not define: compleet, strem"
    assert raises.error == "no table for you"  # a PluginError reads as its message alone
    assert [r.name for r in registry.failed()] == ["garbage", "missing", "misspelt", "raises"]
    assert all(r.status == "failed" and not r.loaded for r in registry.failed())
    assert set(registry.backends) == {"ok"}  # nothing of a failed plugin is half-registered
    for record in (garbage, missing, misspelt, raises):
        assert record.backends == () and record.hooks in ((), ("complete",), ("compleet", "strem"))
    assert registry.manager.list_name_plugin() == [("ok", registry.manager.get_plugin("ok"))]


def test_an_exception_in_discovery_that_is_not_ours_is_named_with_its_type() -> None:
    class Raises:
        @hookimpl
        def llmswitch_backends(self) -> list[BackendInfo]:
            raise KeyError("boom")

    registry = fresh()
    record = PluginRecord(name="raises")
    registry.add(Raises(), record)
    assert record.error == "KeyError: 'boom'"


def test_registering_the_same_name_twice_records_pluggys_refusal() -> None:
    registry = fresh()
    registry.add(Declares("x"), PluginRecord(name="same"))
    second = PluginRecord(name="same")
    registry.add(Declares("y"), second)
    assert second.error is not None and second.error.startswith("ValueError: ")
    assert "y" not in registry.backends


def test_a_backend_declared_twice_is_refused_for_both_and_named_in_each_record() -> None:
    registry = fresh()
    first, second, other = PluginRecord(name="p1"), PluginRecord(name="p2"), PluginRecord(name="p3")
    registry.add(Declares("shared", "own1"), first)
    registry.add(Declares("shared"), second)
    registry.add(Declares("own3"), other)
    reason = ("backend 'shared' is declared by several plugins (p1, p2); llmswitch will not guess; uninstall "
              "all but one of them, or list the plugins to load in LLMSWITCH_PLUGINS=name,... (only those are "
              "loaded) with just one of them")
    assert first.refused == {"shared": reason} and second.refused == {"shared": reason}
    assert other.refused == {}
    assert first.status == "loaded" and second.status == "refused"  # p1 still has a backend of its own
    with pytest.raises(PluginError) as caught:
        registry.backend("shared")
    assert caught.value.message == "backend 'shared' is declared by several plugins (p1, p2); llmswitch will not guess"
    assert registry.backend("own1").plugin is first and registry.backend("own3").plugin is other


def test_a_failed_plugin_is_never_marked_refused() -> None:
    registry = fresh()
    broken = PluginRecord(name="broken", error="failed to import", backends=("dup",))
    registry.plugins.append(broken)
    registry.add(Declares("dup"), PluginRecord(name="a"))
    registry.add(Declares("dup"), PluginRecord(name="b"))
    assert broken.refused == {} and broken.status == "failed"


def test_conflict_error_names_every_plugin_in_order_and_how_to_keep_one() -> None:
    error = conflict_error("x", ["one", "two", "three"])
    assert error.message == "backend 'x' is declared by several plugins (one, two, three); llmswitch will not guess"
    assert "LLMSWITCH_PLUGINS" in (error.remedy or "") and "uninstall all but one" in (error.remedy or "")


def test_the_message_for_an_unknown_backend() -> None:
    registry = fresh()
    registry.add(Declares("openai", "ollama"), PluginRecord(name="p"))
    error = unknown_backend("olama", registry)
    assert isinstance(error, UnknownBackendError)
    assert error.message == "no installed plugin provides the backend 'olama'"
    assert error.remedy == ("installed backends: ollama, openai. Did you mean 'ollama'? To add it: "
                            "pip install llmswitch-olama  (from a checkout of llmswitch: pip install "
                            "./plugins/llmswitch-olama)")
    assert unknown_backend("zzz", fresh()).remedy == (
        "installed backends: none. To add it: pip install llmswitch-zzz  (from a checkout of llmswitch: pip install "
        "./plugins/llmswitch-zzz)")
    registry.plugins.append(PluginRecord(name="mine-broken", error="ImportError: no sdk"))
    assert unknown_backend("mine", registry).message == (
        "no installed plugin provides the backend 'mine' (plugin mine-broken failed to load: ImportError: no sdk)")
    with pytest.raises(UnknownBackendError):
        registry.backend("mine")


def test_the_install_hint_follows_the_naming_convention() -> None:
    assert distribution_for("vllm") == "llmswitch-vllm"
    assert install_hint("vllm") == "pip install llmswitch-vllm  (from a checkout of llmswitch: pip install ./plugins/llmswitch-vllm)"


def test_plugins_registered_from_python_come_after_entry_points_and_can_be_removed() -> None:
    register_plugin(Declares("from-python"), "mine")
    try:
        registry = get_registry()
        assert get_registry() is registry  # loaded once
        record = registry.backend("from-python").plugin
        assert (record.name, record.distribution) == ("mine", "(registered in Python)")
        assert registry.plugins[-1] is record and "echo" in registry.backends
    finally:
        unregister_plugin("mine")
    assert "from-python" not in get_registry().backends


def test_llmswitch_plugins_admits_entry_point_names_and_distribution_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMSWITCH_PLUGINS", " echo , llmswitch-ollama,, ")
    reset_registry()
    loaded = get_registry().plugins
    assert [(r.name, r.distribution) for r in loaded] == [("echo", "llmswitch-echo"), ("ollama", "llmswitch-ollama")]
    assert all(r.version for r in loaded)
    monkeypatch.delenv("LLMSWITCH_PLUGINS")
    reset_registry()
    names = [r.name for r in get_registry().plugins]
    assert names == sorted(names) and {"echo", "openai", "anthropic", "ollama"} <= set(names)


def test_a_plugin_that_raises_keyboard_interrupt_on_import_is_not_swallowed(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    (site / "llmswitch_ctrlc-0.1.dist-info").mkdir(parents=True)
    (site / "llmswitch_ctrlc-0.1.dist-info" / "METADATA").write_text("Name: llmswitch-ctrlc\nVersion: 0.1\n")
    (site / "llmswitch_ctrlc-0.1.dist-info" / "entry_points.txt").write_text("[llmswitch]\nctrlc = ctrlc_mod\n")
    (site / "ctrlc_mod.py").write_text("raise KeyboardInterrupt\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("LLMSWITCH_PLUGINS", "ctrlc")
    reset_registry()
    with pytest.raises(KeyboardInterrupt):
        get_registry()
    reset_registry()
    (site / "ctrlc_mod.py").write_text("raise RuntimeError('bad import')\n")
    import sys

    sys.modules.pop("ctrlc_mod", None)
    [record] = get_registry().plugins
    assert record.error == "failed to import ctrlc_mod: RuntimeError: bad import"
    assert (record.distribution, record.version) == ("llmswitch-ctrlc", "0.1")
