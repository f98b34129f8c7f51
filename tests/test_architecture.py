"""The house as drawn in docs/architecture.md, checked over the import graph (a walk over each module's ``ast``).

Each rule names the layer, what it may import, and the reason; a failure names the file, the line and the
import that breaks it. Imports under ``if TYPE_CHECKING:`` count for the rules about layers (a store that
names ``ResolvedProfile`` in a hint still knows about the client) but not for start-up cost.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "llmswitch"

# The faces: they may import anything. A new face (a gateway, a batch runner's command line) goes here.
FACES = ("llmswitch.cli", "llmswitch.tui", "llmswitch.serve", "llmswitch.__main__", "llmswitch.testing")
# The contract every plugin is written against, and what it may import: only itself (and the decorator its
# records are made with, which imports nothing of llmswitch).
CONTRACT = ("llmswitch.types", "llmswitch.errors", "llmswitch.secrets", "llmswitch.hookspecs", "llmswitch.record")
# The stores take and return plain values: below them only the contract and where files live (config).
STORES = ("llmswitch.store", "llmswitch.ledger")
STORES_MAY_IMPORT = (*STORES, *CONTRACT, "llmswitch.config")
# The plugin toolkit: the contract, the two HTTP rules every backend shares, and its lazy re-exporting.
KIT = ("llmswitch.kit",)
KIT_MAY_IMPORT = (*KIT, *CONTRACT, "llmswitch.redirects", "llmswitch.http_headers", "llmswitch.lazy")
# Helpers the kit hands on from the core to plugins, each by name (a plugin never imports the core itself).
KIT_HANDS_ON = {("llmswitch.config", "cache_dir"), ("llmswitch.pricing", "load_table")}
# Libraries that cost start-up time or belong to one face: the library imports them inside the function
# that needs them, never at module level (`llmswitch --help` must load none of them)...
HEAVY = ("click", "textual", "rich", "starlette", "uvicorn", "prometheus_client", "redis", "torch",
         "transformers", "llama_cpp", "huggingface_hub", "anthropic", "openai")
# ...except in an adapter: a module whose one job is to wrap that library, itself imported only inside the
# function that chooses it (``router.state.open_state`` for a redis:// URL).
ADAPTERS = {"llmswitch.router.redis_state": ("redis",)}
# What a plugin may import: the contract and the kit (`from llmswitch import hookimpl, kit` too).
PLUGIN_NAMES_FROM_PACKAGE = ("hookimpl", "kit")
PLUGINS_MAY_IMPORT = (*CONTRACT, *KIT)


@dataclass(frozen=True)
class Import:
    """One imported name: ``module`` (absolute), ``name`` (None for ``import module``), where, and how."""

    module: str
    name: str | None
    path: Path
    line: int
    top_level: bool  # run when the module is imported (not inside a function)
    type_checking: bool  # only under `if TYPE_CHECKING:`

    def __str__(self) -> str:
        what = self.module if self.name is None else f"{self.module}.{self.name}"
        return f"{self.path.relative_to(ROOT)}:{self.line} imports {what}"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, module: str, source: str | None = None) -> Iterator[Import]:
    """Every import in the file at ``path`` (``module`` is its dotted name, to resolve relative imports)."""
    tree = ast.parse(source if source is not None else path.read_text(encoding="utf-8"))
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]

    def walk(nodes: list[ast.stmt], top_level: bool, type_checking: bool) -> Iterator[Import]:
        for node in nodes:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield Import(alias.name, None, path, node.lineno, top_level, type_checking)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package[: len(package) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    yield Import(base, alias.name, path, node.lineno, top_level, type_checking)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield from walk(node.body, False, type_checking)
            elif isinstance(node, ast.If):
                guarded = type_checking or "TYPE_CHECKING" in ast.unparse(node.test)
                yield from walk(node.body, top_level, guarded)
                yield from walk(node.orelse, top_level, type_checking)
            else:
                for field in ("body", "orelse", "finalbody"):
                    yield from walk(getattr(node, field, []), top_level, type_checking)
                for handler in getattr(node, "handlers", []):
                    yield from walk(handler.body, top_level, type_checking)

    yield from walk(tree.body, True, False)


def within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def targets(found: Import) -> str:
    """The module an import brings in: ``from llmswitch.store import schema`` brings llmswitch.store.schema."""
    if found.name is not None:
        place = ROOT.joinpath(*found.module.split("."), found.name)
        if place.with_suffix(".py").exists() or (place / "__init__.py").exists():
            return f"{found.module}.{found.name}"
    return found.module


def library_modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield module_name(path, ROOT), path


def library_imports(prefixes: tuple[str, ...] | None = None) -> Iterator[Import]:
    """The imports of the modules under ``prefixes``; None: of the library (everything but the faces)."""
    for module, path in library_modules():
        if within(module, prefixes) if prefixes is not None else not within(module, FACES):
            yield from imports_of(path, module)


def own(found: Import) -> bool:
    return within(found.module, ("llmswitch",))


def test_the_contract_imports_only_the_contract() -> None:
    broken = [str(found) for found in library_imports(CONTRACT)
              if own(found) and not within(targets(found), CONTRACT)]
    assert broken == [], "the contract (types, errors, secrets, hookspecs) is the bottom of the house"


def test_stores_import_nothing_above_them() -> None:
    broken = [str(found) for found in library_imports(STORES)
              if own(found) and not within(targets(found), STORES_MAY_IMPORT)]
    assert broken == [], "a store takes and returns plain values; converting is the caller's job"


def test_the_kit_imports_only_the_contract() -> None:
    broken = [str(found) for found in library_imports(KIT) if own(found)
              and not within(targets(found), KIT_MAY_IMPORT) and (found.module, found.name) not in KIT_HANDS_ON]
    assert broken == [], "plugins build on the kit, so the kit may reach no further than they may"


def test_the_library_knows_no_face() -> None:
    broken = [str(found) for found in library_imports() if own(found) and within(targets(found), FACES)]
    assert broken == [], "the library is usable from Python without the CLI or the TUI"


def test_the_library_imports_no_heavy_library_at_module_level() -> None:
    broken = [str(found) for found in library_imports()
              if found.top_level and not found.type_checking and within(found.module, HEAVY)
              and not within(found.module, ADAPTERS.get(module_name(found.path, ROOT), ()))]
    assert broken == [], "import it inside the function that needs it: `llmswitch --help` must not load it"
    adapters_loaded = [str(found) for found in library_imports()
                       if found.top_level and not found.type_checking and targets(found) in ADAPTERS]
    assert adapters_loaded == [], "an adapter is imported inside the function that chooses it"


def plugin_imports() -> Iterator[Import]:
    for path in sorted((ROOT / "plugins").glob("llmswitch-*/llmswitch_*/**/*.py")):
        distribution = ROOT / "plugins" / path.relative_to(ROOT / "plugins").parts[0]
        yield from imports_of(path, module_name(path, distribution))


def test_plugins_import_only_the_contract_and_the_kit() -> None:
    broken = []
    for found in plugin_imports():
        if not own(found):
            continue
        if found.module == "llmswitch":
            allowed = found.name in PLUGIN_NAMES_FROM_PACKAGE
        else:
            allowed = within(targets(found), PLUGINS_MAY_IMPORT)
        if not allowed:
            broken.append(str(found))
    assert broken == [], "a plugin keeps its wire format and builds on the contract and the kit (llmswitch.kit)"


SAMPLE = '''
from __future__ import annotations
import click
from typing import TYPE_CHECKING
from llmswitch.errors import ConfigError
from . import schema
if TYPE_CHECKING:
    from llmswitch.client import ResolvedProfile
try:
    import textual
except ImportError:
    textual = None
def later():
    import torch
    from ..conversation import Conversation
'''


def test_the_walk_sees_every_kind_of_import() -> None:
    path = PACKAGE / "store" / "history.py"
    found = {(i.module, i.name, i.top_level, i.type_checking)
             for i in imports_of(path, "llmswitch.store.history", SAMPLE)}
    assert found == {
        ("__future__", "annotations", True, False),
        ("click", None, True, False),
        ("typing", "TYPE_CHECKING", True, False),
        ("llmswitch.errors", "ConfigError", True, False),
        ("llmswitch.store", "schema", True, False),
        ("llmswitch.client", "ResolvedProfile", True, True),
        ("textual", None, True, False),
        ("torch", None, False, False),
        ("llmswitch.conversation", "Conversation", False, False),
    }
    store_schema = Import("llmswitch.store", "schema", path, 1, True, False)
    assert targets(store_schema) == "llmswitch.store.schema"
    assert targets(Import("llmswitch.errors", "ConfigError", path, 1, True, False)) == "llmswitch.errors"


@pytest.mark.parametrize("module", [*CONTRACT, *STORES, *KIT, *ADAPTERS, "llmswitch.cli", "llmswitch.tui"])
def test_each_layer_named_here_exists(module: str) -> None:
    """A rule over a layer that was renamed away would pass for ever."""
    names = {name for name, _ in library_modules()}
    assert any(within(name, (module,)) for name in names)
