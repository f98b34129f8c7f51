"""The ollama backend: a local or remote Ollama server through ``/api/chat``, on :mod:`llmswitch.kit`, no SDK.

The plugin keeps only Ollama's wire format (the body, the NDJSON answer lines, its error bodies). Importing
this module imports no HTTP library: each hook imports what it needs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence

from llmswitch import kit
from llmswitch.kit import (
    BackendInfo,
    HealthReport,
    Request,
    Response,
    StreamEvent,
    Target,
    TokenCount,
    hookimpl,
)
from llmswitch_ollama.info import INFO


@hookimpl
def llmswitch_backends() -> list[BackendInfo]:
    return [INFO]


@hookimpl
def complete(target: Target, request: Request) -> Response:
    from llmswitch_ollama import calls

    return calls.complete(target, request)


@hookimpl
async def acomplete(target: Target, request: Request) -> Response:
    from llmswitch_ollama import calls

    return await calls.acomplete(target, request)


@hookimpl
def stream(target: Target, request: Request) -> Iterator[StreamEvent]:
    from llmswitch_ollama import calls

    return calls.stream(target, request)


@hookimpl
def astream(target: Target, request: Request) -> AsyncIterator[StreamEvent]:
    from llmswitch_ollama import calls

    return calls.astream(target, request)


@hookimpl
def astream_batches(target: Target, request: Request) -> AsyncIterator[Sequence[StreamEvent]]:
    from llmswitch_ollama import calls

    return calls.astream_batches(target, request)


@hookimpl
def count_tokens(target: Target, request: Request) -> TokenCount:
    from llmswitch_ollama import calls

    return calls.count_tokens(target, request)


@hookimpl
def health(target: Target, timeout: float, offline: bool) -> HealthReport:
    from llmswitch_ollama import checks

    return kit.run_checks(checks.health(target, timeout, offline))


@hookimpl
async def ahealth(target: Target, timeout: float, offline: bool) -> HealthReport:
    from llmswitch_ollama import checks

    return await kit.arun_checks(checks.health(target, timeout, offline))
