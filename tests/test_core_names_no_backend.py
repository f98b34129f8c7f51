"""The core names no backend: what a backend needs, how it fails and what to do about it are data its plugin
declares (``BackendInfo``), so the core's sources (``llmswitch/**/*.py``) hold no backend's name.

Every string literal and every identifier is read with ``ast``. Docstrings are left out: they are prose for the
reader, where a real backend as an example makes the contract concrete; they decide nothing. Each other exemption
below names where, what and why; anything new must earn its place there.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import llmswitch

ROOT = Path(llmswitch.__file__).parent

# Backends, the servers and libraries behind them, and their model families (case does not matter).
BACKEND_NAMES = re.compile(
    r"openai|anthropic|claude|ollama|llama|gguf|ggml|vllm|google|gemini|transformers|torch|hugging ?face"
    r"|mistral|groq|openrouter|lm ?studio|gpt-|smollm|qwen|gemma",
    re.IGNORECASE,
)
# ``echo`` is also a plain English word and click's function: only a string literal that says it counts.
ECHO = re.compile(r"\becho\b", re.IGNORECASE)

# (path or folder under llmswitch/, the names allowed there, why).
EXEMPTIONS: tuple[tuple[str, frozenset[str], str], ...] = (
    ("serve/", frozenset({"openai", "anthropic"}),
     "the gateway speaks the OpenAI and Anthropic protocols to its clients: protocols, not backends"),
    ("cli/__init__.py", frozenset({"openai", "anthropic"}), "the gateway command's one-line help names those protocols"),
    ("testing/openai_server.py", frozenset({"openai", "gpt-"}),
     "the kit's OpenAI-protocol test server for plugin authors; its default model is the protocol's example"),
    ("scaffold.py", frozenset({"openai"}), "`plugins new` writes an OpenAI-style HTTP backend: the protocol"),
    ("cli/plugins.py", frozenset({"openai"}), "the `plugins new --http` help: the protocol of that template"),
)


def docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def words(tree: ast.AST) -> Iterator[tuple[int, str, bool]]:
    """(line, text, is a string literal) for every string literal but docstrings, and every identifier."""
    skipped = docstrings(tree)
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skipped:
            yield line, node.value, True
        elif isinstance(node, ast.Name):
            yield line, node.id, False
        elif isinstance(node, ast.Attribute):
            yield line, node.attr, False
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield line, node.name, False
        elif isinstance(node, ast.arg):
            yield line, node.arg, False
        elif isinstance(node, ast.alias):
            yield line, node.name, False
            if node.asname:
                yield line, node.asname, False
        elif isinstance(node, ast.keyword) and node.arg:
            yield line, node.arg, False


def allowed(relative: str, name: str) -> bool:
    return any((relative == where or (where.endswith("/") and relative.startswith(where))) and name in names
               for where, names, _why in EXEMPTIONS)


def backend_names_in_the_core() -> list[str]:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        for line, text, literal in words(ast.parse(path.read_text(encoding="utf-8"))):
            names = [match.group(0).lower() for match in BACKEND_NAMES.finditer(text)]
            if literal:
                names += [match.group(0).lower() for match in ECHO.finditer(text)]
            for name in names:
                if not allowed(relative, name):
                    found.append(f"llmswitch/{relative}:{line}: {name!r} in {text[:90]!r}")
    return found


def test_the_core_names_no_backend() -> None:
    found = backend_names_in_the_core()
    assert not found, "backend names in the core (declare them in the plugin's BackendInfo):\n" + "\n".join(found)


def test_the_scan_sees_literals_and_identifiers_but_not_docstrings() -> None:
    source = ('"""Docstring: Ollama is fine here."""\n'
              'TABLE = {"llama_cpp": "llama-cpp-python"}\n'
              "def vllm_hint(x): return 'echo' if x else ''\n")
    seen = [(line, text) for line, text, _ in words(ast.parse(source))]
    assert (2, "llama_cpp") in seen and (3, "vllm_hint") in seen and (3, "echo") in seen
    assert not any("Ollama" in text for _, text in seen)


def test_every_exemption_is_still_needed() -> None:
    """An exemption nothing uses any more is removed, so the list stays the exact set of reasons."""
    for where, names, why in EXEMPTIONS:
        assert why
        paths = [p for p in ROOT.rglob("*.py")
                 if p.relative_to(ROOT).as_posix() == where
                 or (where.endswith("/") and p.relative_to(ROOT).as_posix().startswith(where))]
        assert paths, f"the exemption for {where} names no file"
        for name in names:
            hits = [text for path in paths for _, text, _ in words(ast.parse(path.read_text(encoding="utf-8")))
                    if name in text.lower()]
            assert hits, f"the exemption of {name!r} in {where} is no longer used"
