"""API keys and base URLs: where they come from, and how they are shown (never in full).

Resolution order, the same for every backend: explicit (``--api-key`` or the profile's ``api_key``) >
the environment variable (the profile's ``api_key_env``, else the backend's) > a ``.env`` file in the
current directory. Base URLs follow the same order.

Every key that is resolved is remembered so :func:`redact` can scrub it from any text before it is shown,
even text that came back from a server or a plugin's exception.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_KNOWN_SECRETS: set[str] = set()


def mask(value: str | None) -> str:
    """``sk-proj-abcdef...wxyz`` becomes ``sk-…wxyz``; short values are hidden entirely."""
    if not value:
        return "(empty)"
    if len(value) < 12:
        return "…" * 3
    prefix = value[:3] if value[:3].endswith("-") else value[:2]
    return f"{prefix}…{value[-4:]}"


def redact(text: str) -> str:
    """Replace every key this process has resolved with its masked form."""
    for secret in tuple(_KNOWN_SECRETS):  # a copy: doctor's threads resolve keys while others redact
        if secret and secret in text:
            text = text.replace(secret, mask(secret))
    return text


def remember_secret(value: str) -> None:
    if len(value) >= 6:
        _KNOWN_SECRETS.add(value)


@dataclass(frozen=True, slots=True)
class Secret:
    """A resolved key. ``str()`` and ``repr()`` are masked so it cannot leak through formatting."""

    value: str
    source: str  # "flag", "profile", "env:NAME", ".env:NAME"

    def __post_init__(self) -> None:
        remember_secret(self.value)

    def __str__(self) -> str:
        return mask(self.value)

    def __repr__(self) -> str:
        return f"Secret({mask(self.value)!r}, source={self.source!r})"

    @property
    def masked(self) -> str:
        return mask(self.value)


def read_dotenv(path: Path | None = None) -> dict[str, str]:
    """Parse a ``.env`` file (``KEY=VALUE``, optional ``export``, quotes, ``#`` comments). Missing: empty."""
    path = path or Path.cwd() / ".env"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key.strip()] = value
    return values


@dataclass(frozen=True, slots=True)
class Resolved:
    value: str
    source: str


def resolve_setting(
    explicit: str | None,
    explicit_source: str,
    variable: str | None,
    environ: Mapping[str, str] | None = None,
    dotenv: Mapping[str, str] | None = None,
) -> Resolved | None:
    """The first of: an explicit value, the environment variable, the variable in ``.env``."""
    if explicit:
        return Resolved(explicit, explicit_source)
    if not variable:
        return None
    environ = os.environ if environ is None else environ
    if environ.get(variable):
        return Resolved(environ[variable], f"env:{variable}")
    dotenv = read_dotenv() if dotenv is None else dotenv
    if dotenv.get(variable):
        return Resolved(dotenv[variable], f".env:{variable}")
    return None
