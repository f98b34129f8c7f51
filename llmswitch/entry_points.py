"""The installed entry points of one group, read straight from each distribution's ``entry_points.txt``.

``importlib.metadata.entry_points()`` gives the same answer, but importing it pulls in ``email``, ``zipfile``,
``csv`` and ``shutil`` and it parses every installed distribution's files: about a fifth of what ``llmswitch
chat`` spends before it sends anything. This reads the same files the same way (distributions in ``sys.path``
order, the first of a project name wins, ``[group]`` sections of ``entry_points.txt``, the name and version
from ``METADATA`` or ``PKG-INFO``), for the one group llmswitch needs. Distributions inside zip files are not
searched: a plugin is installed by pip, into a folder.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable
from typing import NamedTuple

_METADATA_SUFFIXES = {"dist-info": "METADATA", "egg-info": "PKG-INFO"}


class EntryPoint(NamedTuple):
    """One entry point: ``name = value`` where value is ``module`` or ``module:attribute``."""

    name: str
    value: str
    distribution: str | None = None
    version: str | None = None

    def load(self) -> object:
        """Import the module (and look up the attribute) the entry point names."""
        module, _, attribute = self.value.partition(":")
        loaded: object = importlib.import_module(module.strip())
        for part in filter(None, attribute.strip().split(".")):
            loaded = getattr(loaded, part)
        return loaded


def entry_points(group: str, path: Iterable[str] | None = None) -> list[EntryPoint]:
    """Every entry point of ``group`` that the distributions found on ``path`` (default ``sys.path``) declare."""
    found: list[EntryPoint] = []
    seen: set[str] = set()
    for folder in sys.path if path is None else path:
        folder = folder or "."
        try:
            names = sorted(os.listdir(folder))
        except OSError:  # missing, a file, a zip
            continue
        for name in names:
            stem, _, suffix = name.rpartition(".")
            metadata_file = _METADATA_SUFFIXES.get(suffix)
            if metadata_file is None:
                continue
            project = _normalize(stem.partition("-")[0])
            if project in seen:
                continue
            seen.add(project)  # like importlib.metadata: a shadowed copy later on the path is ignored
            directory = os.path.join(folder, name)
            declared = _section(_read(os.path.join(directory, "entry_points.txt")), group)
            if declared:
                distribution, version = _name_and_version(_read(os.path.join(directory, metadata_file)))
                found += [EntryPoint(key, value, distribution, version) for key, value in declared]
    return found


def _normalize(project: str) -> str:
    """A project name as folder names spell it (``llmswitch.openai``, ``LLMSwitch_OpenAI``: one project); the
    name never holds a ``-``, which separates it from the version."""
    return project.replace(".", "_").lower()


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except (OSError, UnicodeDecodeError):
        return ""


def _section(text: str, group: str) -> list[tuple[str, str]]:
    """``name = value`` lines of the ``[group]`` section of an INI-style file."""
    entries: list[tuple[str, str]] = []
    inside = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line[0] == "[" and line[-1] == "]":
            inside = line[1:-1].strip() == group
        elif inside:
            name, equals, value = line.partition("=")
            if equals:
                entries.append((name.strip(), value.strip()))
    return entries


def _name_and_version(metadata: str) -> tuple[str | None, str | None]:
    """``Name`` and ``Version`` from the headers of a METADATA / PKG-INFO file (they end at a blank line)."""
    fields: dict[str, str] = {}
    for line in metadata.splitlines():
        if not line.strip():
            break
        key, colon, value = line.partition(":")
        if colon and key in ("Name", "Version"):
            fields.setdefault(key, value.strip())
    return fields.get("Name"), fields.get("Version")
