"""The ollama backend: a local or remote Ollama server through ``/api/chat``, with httpx and no SDK.

The NDJSON stream is split and parsed here (see :mod:`llmswitch_ollama.ndjson`). Importing this module does
not import httpx: each hook imports what it needs.
"""

from __future__ import annotations

from collections.abc import Iterator

from llmswitch import hookimpl
from llmswitch.types import BackendInfo, HealthReport, Request, Response, StreamEvent, Target, TokenCount
from llmswitch_ollama.info import INFO


@hookimpl
def llmswitch_backends() -> list[BackendInfo]:
    return [INFO]


@hookimpl
def complete(target: Target, request: Request) -> Response:
    from llmswitch_ollama import calls

    return calls.complete(target, request)


@hookimpl
def stream(target: Target, request: Request) -> Iterator[StreamEvent]:
    from llmswitch_ollama import calls

    return calls.stream(target, request)


@hookimpl
def count_tokens(target: Target, request: Request) -> TokenCount:
    from llmswitch_ollama import calls

    return calls.count_tokens(target, request)


@hookimpl
def health(target: Target, timeout: float, offline: bool) -> HealthReport:
    from llmswitch_ollama import checks

    return checks.health(target, timeout, offline)
