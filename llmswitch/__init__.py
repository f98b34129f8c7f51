"""llmswitch: talk to any large language model, switch between them by naming a profile.

The public API is re-exported here lazily, so ``import llmswitch`` (and ``llmswitch --help``) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmswitch.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "llmswitch.client": ("Client", "AsyncClient", "AsyncStreamResult", "ResolvedProfile", "StreamResult"),
    "llmswitch.hookspecs": ("hookimpl",),
    "llmswitch.types": ("Message", "Request", "Response", "Usage", "TextDelta", "UsageEvent", "StreamEnd",
                        "StreamError", "TokenCount", "HealthReport", "Check", "CheckStatus", "Status", "OptionSpec",
                        "BackendInfo", "Target"),
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

_names, __getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = ["__version__", *_names]
