"""Finding, loading and isolating plugins; the table from backend name to implementation.

Plugins are entry points in the ``llmswitch`` group. Each is loaded in its own ``try``: one that fails to
import, implements a hook that does not exist, or raises from its discovery hook is recorded with the error
and skipped, and every other plugin keeps working. ``LLMSWITCH_PLUGINS=a,b`` restricts loading to those
entry-point or distribution names (set and empty: none).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llmswitch.errors import PluginError, UnknownBackendError, close_matches
from llmswitch.hookspecs import BATCH_HOOK_NAMES, HOOK_NAMES, PROJECT
from llmswitch.types import BackendInfo

if TYPE_CHECKING:
    from llmswitch.profiles import Profile

ENTRY_POINT_GROUP = "llmswitch"

def distribution_for(backend: str) -> str:
    """The distribution that provides a backend, by the naming convention every llmswitch plugin follows
    (the core keeps no list of backends: one that is not installed cannot tell us its name)."""
    return f"llmswitch-{backend}"


def install_hint(backend: str) -> str:
    from llmswitch.extras import extra_for_backend

    dist = distribution_for(backend)
    extra = extra_for_backend(backend)
    command = extra.command if extra else f"pip install {dist}"
    return f"{command}  (from a checkout of llmswitch: pip install ./plugins/{dist})"


@dataclass
class PluginRecord:
    """One plugin as ``llmswitch plugins`` shows it: loaded, or the error that stopped it."""

    name: str
    distribution: str | None = None
    version: str | None = None
    hooks: tuple[str, ...] = ()
    backends: tuple[str, ...] = ()
    error: str | None = None
    declared: tuple[BackendInfo, ...] = ()  # what its discovery hook returned, in order
    refused: dict[str, str] = field(default_factory=dict)  # backend name -> why no profile may use it

    @property
    def loaded(self) -> bool:
        return self.error is None

    @property
    def status(self) -> str:
        """``failed`` (did not load), ``refused`` (loaded, but every backend it declares is refused), ``loaded``."""
        if self.error is not None:
            return "failed"
        if self.backends and all(name in self.refused for name in self.backends):
            return "refused"
        return "loaded"


@dataclass
class BackendHandle:
    """A backend and the functions that implement it: calling one is a dictionary lookup away."""

    info: BackendInfo
    plugin: PluginRecord
    hooks: dict[str, Callable[..., Any]] = field(default_factory=dict)
    conflict: list[str] = field(default_factory=list)


class Registry:
    """The loaded plugins and the backend table."""

    def __init__(self) -> None:
        import pluggy

        from llmswitch import hookspecs

        self.manager = pluggy.PluginManager(PROJECT)
        self.manager.add_hookspecs(hookspecs)
        self.plugins: list[PluginRecord] = []
        self.backends: dict[str, BackendHandle] = {}

    # ---- loading ----------------------------------------------------------------------------------

    def add(self, plugin: object, record: PluginRecord) -> None:
        """Register one plugin object; on any failure record the error instead of raising."""
        self.plugins.append(record)
        try:
            self.manager.register(plugin, name=record.name)
        except Exception as exc:  # pluggy's validation errors, duplicate names, ...
            record.error = f"{type(exc).__name__}: {exc}"
            return
        try:
            implemented = self._implemented_hooks(plugin)
            unknown = [name for name, spec in implemented.items() if spec is None]
            if unknown:
                raise PluginError(f"implements hooks llmswitch does not define: {', '.join(unknown)}")
            batch_hooks = [name for name in BATCH_HOOK_NAMES if name in implemented]
            if batch_hooks and len(batch_hooks) < len(BATCH_HOOK_NAMES):
                missing = ", ".join(name for name in BATCH_HOOK_NAMES if name not in implemented)
                raise PluginError(f"implements some batch hooks but not {missing} (implement all five or none)")
            if "astream_batches" in implemented and "astream" not in implemented:
                raise PluginError("implements astream_batches without astream (it is astream's events in lists: "
                                  "implement astream too, e.g. returning kit.events_of(astream_batches(...)))")
            record.hooks = tuple(name for name in implemented if name != "llmswitch_backends")
            infos = self._call_discovery(plugin)
        except Exception as exc:
            self.manager.unregister(plugin)
            record.error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, PluginError) else str(exc)
            return
        functions = {name: self._function(plugin, name) for name in (*HOOK_NAMES, *BATCH_HOOK_NAMES)
                     if name in implemented}
        record.backends = tuple(info.name for info in infos)
        record.declared = tuple(infos)
        for info in infos:
            handle = BackendHandle(info=info, plugin=record, hooks=functions)
            existing = self.backends.get(info.name)
            if existing is None:
                self.backends[info.name] = handle
                continue
            # Never let load order decide which plugin answers: refuse every one of them until one is removed.
            existing.conflict.append(record.name)
            reason = conflict_error(info.name, [existing.plugin.name, *existing.conflict])
            for plugin in self.plugins:
                if info.name in plugin.backends and plugin.loaded:
                    plugin.refused[info.name] = f"{reason.message}; {reason.remedy}"

    def _implemented_hooks(self, plugin: object) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for caller in self.manager.get_hookcallers(plugin) or []:
            found[caller.name] = caller.spec
        return found

    def _function(self, plugin: object, hook_name: str) -> Callable[..., Any]:
        caller = getattr(self.manager.hook, hook_name)
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin:
                return impl.function  # type: ignore[no-any-return]
        raise KeyError(hook_name)

    def _call_discovery(self, plugin: object) -> list[BackendInfo]:
        if "llmswitch_backends" not in self._implemented_hooks(plugin):
            raise PluginError("does not implement llmswitch_backends(), so it declares no backend")
        result = self._function(plugin, "llmswitch_backends")()
        infos = [result] if isinstance(result, BackendInfo) else list(result or [])
        for info in infos:
            if not isinstance(info, BackendInfo):
                raise PluginError(f"llmswitch_backends() returned {type(info).__name__}, not BackendInfo")
        return infos

    # ---- lookup ----------------------------------------------------------------------------------

    def backend(self, name: str) -> BackendHandle:
        handle = self.backends.get(name)
        if handle is None:
            raise unknown_backend(name, self)
        if handle.conflict:
            raise conflict_error(name, [handle.plugin.name, *handle.conflict])
        return handle

    def backend_of(self, profile: Profile) -> BackendHandle:
        """The backend a profile that is not a route runs on; a profile that names none is a ConfigError
        saying how to write it (:func:`llmswitch.profiles.require_backend`), never "the backend ''"."""
        from llmswitch.profiles import require_backend

        return self.backend(require_backend(profile, self.backends))

    def failed(self) -> list[PluginRecord]:
        return [record for record in self.plugins if not record.loaded]


def conflict_error(backend: str, plugin_names: list[str]) -> PluginError:
    """Why a backend that several plugins declare is refused, and how to keep one."""
    names = ", ".join(plugin_names)
    return PluginError(
        f"backend '{backend}' is declared by several plugins ({names}); llmswitch will not guess",
        remedy="uninstall all but one of them, or list the plugins to load in LLMSWITCH_PLUGINS=name,... "
        "(only those are loaded) with just one of them",
    )


def unknown_backend(name: str, registry: Registry) -> UnknownBackendError:
    installed = sorted(registry.backends)
    message = f"no installed plugin provides the backend '{name}'"
    broken = [r for r in registry.failed() if name in r.name]
    if broken:
        message += f" (plugin {broken[0].name} failed to load: {broken[0].error})"
    remedy = f"installed backends: {', '.join(installed) or 'none'}. "
    from llmswitch.extras import extra_for_backend

    # A backend llmswitch offers as an extra is not a typo of another one ('llamacpp' is not 'ollama').
    suggestions = [] if extra_for_backend(name) else close_matches(name, installed)
    if suggestions:
        remedy += f"Did you mean '{suggestions[0]}'? "
    remedy += "To add it: " + install_hint(name)
    return UnknownBackendError(message, remedy=remedy)


def _allowed_names() -> set[str] | None:
    raw = os.environ.get("LLMSWITCH_PLUGINS")
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


# Plugins registered from Python (tests, embedding applications) in addition to entry points.
_extra_plugins: list[tuple[str, object]] = []
_registry: Registry | None = None
_lock = threading.Lock()


def register_plugin(plugin: object, name: str) -> None:
    """Add a plugin object by hand (tests, applications that embed llmswitch). Resets the registry."""
    _extra_plugins.append((name, plugin))
    reset_registry()


def unregister_plugin(name: str) -> None:
    _extra_plugins[:] = [(n, p) for n, p in _extra_plugins if n != name]
    reset_registry()


def reset_registry() -> None:
    global _registry
    _registry = None


def get_registry() -> Registry:
    """Load every allowed plugin once per process (thread-safe) and return the registry."""
    global _registry
    if _registry is not None:
        return _registry
    with _lock:
        if _registry is None:
            _registry = _load()
    return _registry


def _load() -> Registry:
    from llmswitch.entry_points import entry_points

    registry = Registry()
    allowed = _allowed_names()
    for entry_point in sorted(entry_points(ENTRY_POINT_GROUP), key=lambda ep: ep.name):
        dist_name = entry_point.distribution
        if allowed is not None and entry_point.name not in allowed and dist_name not in allowed:
            continue
        record = PluginRecord(name=entry_point.name, distribution=dist_name, version=entry_point.version)
        try:
            plugin = entry_point.load()
        except BaseException as exc:  # noqa: BLE001 - SystemExit from a plugin must not end llmswitch
            if isinstance(exc, KeyboardInterrupt):
                raise
            registry.plugins.append(record)
            record.error = f"failed to import {entry_point.value}: {type(exc).__name__}: {exc}"
            continue
        registry.add(plugin, record)
    for name, plugin in _extra_plugins:
        registry.add(plugin, PluginRecord(name=name, distribution="(registered in Python)"))
    return registry
