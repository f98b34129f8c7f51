"""Where llmswitch keeps its files, and reading and writing the one TOML config file.

- config: ``--config PATH`` > ``LLMSWITCH_CONFIG`` > ``platformdirs.user_config_dir("llmswitch")/config.toml``
- data (ledger, history): ``LLMSWITCH_DATA_DIR`` > ``platformdirs.user_data_dir("llmswitch")``
- exports: the user's documents folder, else ``data_dir()/exports``
- cache (the assembled embedded model, ...): ``LLMSWITCH_CACHE_DIR`` > ``platformdirs.user_cache_dir``
"""

from __future__ import annotations

import functools
import os
import re
import sys
from pathlib import Path
from typing import Any

from llmswitch.errors import ConfigError, ConfigSyntaxError

APP_NAME = "llmswitch"


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    from_env = os.environ.get("LLMSWITCH_CONFIG")
    if from_env:
        return Path(from_env).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def data_dir() -> Path:
    from_env = os.environ.get("LLMSWITCH_DATA_DIR")
    if from_env:
        return _expanded(from_env, os.environ.get("HOME"))
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME))


@functools.lru_cache(maxsize=8)
def _expanded(path: str, home: str | None) -> Path:
    """``path`` with ``~`` expanded for ``home``: the same Path object for the same strings, since every call
    reads the data dir (its ledger row, its price catalogue) and building a Path costs more than the lookup."""
    return Path(path).expanduser()


def exports_dir() -> Path:
    """Where exported conversations are offered to go: the user's documents folder when there is one (a
    desktop), else ``exports/`` in the data dir (a server)."""
    import platformdirs

    documents = Path(platformdirs.user_documents_dir())
    return documents if documents.is_dir() else data_dir() / "exports"


PRICE_CATALOG_FILE = "prices.json"


def price_catalog_path(data: Path | None = None) -> Path:
    """Where ``llmswitch prices update`` keeps the prices it fetched (in the data dir)."""
    return in_dir(data or data_dir(), PRICE_CATALOG_FILE)


@functools.lru_cache(maxsize=16)
def in_dir(directory: Path, name: str) -> Path:
    """``directory / name``, kept: for the files every call looks at (the ledger, the price catalogue)."""
    return directory / name


def cache_dir() -> Path:
    from_env = os.environ.get("LLMSWITCH_CACHE_DIR")
    if from_env:
        return Path(from_env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME))


_LOCATION = re.compile(r"\(at line (\d+), column (\d+)\)")


def _toml_loads(text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    return tomllib.loads(text)


def parse_toml(text: str, path: str) -> dict[str, Any]:
    """Parse TOML; a syntax error becomes a ConfigSyntaxError naming the file, line and column."""
    try:
        return _toml_loads(text)
    except ValueError as exc:  # tomllib.TOMLDecodeError is a ValueError
        detail = str(exc)
        match = _LOCATION.search(detail)
        line = int(match.group(1)) if match else getattr(exc, "lineno", None)
        column = int(match.group(2)) if match else getattr(exc, "colno", None)
        if line is None and "end of document" in detail:
            lines = text.splitlines() or [""]
            line, column = len(lines), len(lines[-1]) + 1
        detail = _LOCATION.sub("", detail).replace("(at end of document)", "").strip() or "invalid TOML"
        if "end of document" in str(exc):
            detail += " (the file ends too early: an unclosed bracket or quote?)"
        raise ConfigSyntaxError(path, line, column, detail) from None


def read_config(path: Path) -> dict[str, Any]:
    """The parsed file, or an empty document when there is no file yet."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except IsADirectoryError:
        raise ConfigError(f"{path} is a directory, not a config file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", remedy="check the file's permissions") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigSyntaxError(str(path), line, None, "the file is not UTF-8 text") from None
    return parse_toml(text, str(path))


def read_config_text(path: Path) -> str:
    """The file's text for an edit ("" when there is none yet); it was parsed by read_config already."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


def write_config_text(path: Path, text: str) -> None:
    """Replace the file with ``text`` atomically (a crash never leaves half a file), keeping its mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    if path.exists():
        os.chmod(tmp, path.stat().st_mode & 0o777)
    else:
        os.chmod(tmp, 0o600)  # the file may come to hold a key: private by default
    os.replace(tmp, path)
