"""Names a package re-exports without importing their modules until first use (``import llmswitch`` and
``import llmswitch.kit`` stay cheap: ``--help`` and the plugins' discovery hooks load almost nothing)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import logging


def lazy_exports(package: str, sources: Mapping[str, tuple[str, ...]]) -> tuple[list[str], Callable[[str], Any]]:
    """``__all__`` and a module ``__getattr__`` for ``package``: each name in ``sources[module]`` is read
    from ``module`` the first time it is asked for, then kept in the package's namespace."""
    where = {name: module for module, names in sources.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    return list(where), __getattr__


def logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)``, importing ``logging`` only now: modules on every call's path log only on
    failures and rare decisions, and importing logging (with traceback, string, textwrap) costs every
    ``llmswitch chat`` a couple of milliseconds."""
    import logging

    return logging.getLogger(name)
