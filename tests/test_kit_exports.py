"""``llmswitch.kit`` is the one place a plugin imports from: every name it promises resolves, the names type
checkers see are the names it serves, and importing it (or a type from it) loads no toolkit module or HTTP stack."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import llmswitch
from llmswitch import kit


def test_every_exported_name_resolves_to_its_source() -> None:
    import importlib

    for module, names in kit._EXPORTS.items():
        for name in names:
            assert getattr(kit, name) is getattr(importlib.import_module(module), name), name
    assert sorted(kit.__all__) == sorted(name for names in kit._EXPORTS.values() for name in names)


def test_an_unknown_name_is_an_attribute_error_naming_it() -> None:
    try:
        kit.no_such_helper  # noqa: B018
    except AttributeError as error:
        assert "no_such_helper" in str(error) and "llmswitch.kit" in str(error)
    else:
        raise AssertionError("an unknown name resolved")


def test_type_checkers_see_exactly_the_exported_names() -> None:
    for package in (kit, llmswitch):
        tree = ast.parse(Path(package.__file__ or "").read_text(encoding="utf-8"))
        guarded = next(node for node in tree.body if isinstance(node, ast.If)
                       and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        seen = {(node.module, alias.name) for node in guarded.body if isinstance(node, ast.ImportFrom)
                for alias in node.names}
        served = {(module, name) for module, names in package._EXPORTS.items() for name in names}
        assert seen == served, package.__name__


def test_importing_the_kit_and_the_contract_from_it_loads_no_toolkit_module() -> None:
    code = ("import sys\nfrom llmswitch.kit import BackendInfo, Target, hookimpl, LLMSwitchError\n"
            "print(sorted(m for m in sys.modules if m.startswith(('llmswitch.kit.', 'httpx', 'llmswitch.client'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]", loaded
