"""llmswitch: talk to any large language model, switch between them by naming a profile.

The public API is re-exported here lazily, so ``import llmswitch`` (and ``llmswitch --help``) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Client": "llmswitch.client",
    "AsyncClient": "llmswitch.client",
    "AsyncStreamResult": "llmswitch.client",
    "ResolvedProfile": "llmswitch.client",
    "StreamResult": "llmswitch.client",
    "hookimpl": "llmswitch.hookspecs",
    "Message": "llmswitch.types",
    "Request": "llmswitch.types",
    "Response": "llmswitch.types",
    "Usage": "llmswitch.types",
    "TextDelta": "llmswitch.types",
    "UsageEvent": "llmswitch.types",
    "StreamEnd": "llmswitch.types",
    "StreamError": "llmswitch.types",
    "TokenCount": "llmswitch.types",
    "HealthReport": "llmswitch.types",
    "Check": "llmswitch.types",
    "CheckStatus": "llmswitch.types",
    "Status": "llmswitch.types",
    "OptionSpec": "llmswitch.types",
    "BackendInfo": "llmswitch.types",
    "Target": "llmswitch.types",
}

if TYPE_CHECKING:
    from llmswitch.client import AsyncClient, AsyncStreamResult, Client, ResolvedProfile, StreamResult
    from llmswitch.hookspecs import hookimpl
    from llmswitch.types import (
        BackendInfo,
        Check,
        CheckStatus,
        HealthReport,
        Message,
        OptionSpec,
        Request,
        Response,
        Status,
        StreamEnd,
        StreamError,
        Target,
        TextDelta,
        TokenCount,
        Usage,
        UsageEvent,
    )

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'llmswitch' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value
