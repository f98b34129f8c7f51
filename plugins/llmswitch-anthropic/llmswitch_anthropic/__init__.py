"""The anthropic backend: Claude through Anthropic's Messages API.

Built on :mod:`llmswitch.kit`: the plugin keeps only the Messages API's wire format (the request body, the
stream's events, Anthropic's error bodies). Importing this module imports no HTTP library: each hook imports
what it needs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from llmswitch import kit
from llmswitch.kit import (
    BackendInfo,
    BatchAnswer,
    HealthReport,
    ProviderJob,
    Request,
    Response,
    StreamEvent,
    Target,
    TokenCount,
    hookimpl,
)
from llmswitch_anthropic.info import INFO


@hookimpl
def llmswitch_backends() -> list[BackendInfo]:
    return [INFO]


@hookimpl
def complete(target: Target, request: Request) -> Response:
    from llmswitch_anthropic import calls

    return calls.complete(target, request)


@hookimpl
async def acomplete(target: Target, request: Request) -> Response:
    from llmswitch_anthropic import calls

    return await calls.acomplete(target, request)


@hookimpl
def stream(target: Target, request: Request) -> Iterator[StreamEvent]:
    from llmswitch_anthropic import calls

    return calls.stream(target, request)


@hookimpl
def astream(target: Target, request: Request) -> AsyncIterator[StreamEvent]:
    from llmswitch_anthropic import calls

    return calls.astream(target, request)


@hookimpl
def astream_batches(target: Target, request: Request) -> AsyncIterator[Sequence[StreamEvent]]:
    from llmswitch_anthropic import calls

    return calls.astream_batches(target, request)


@hookimpl
def count_tokens(target: Target, request: Request) -> TokenCount:
    from llmswitch_anthropic import calls

    return calls.count_tokens(target, request)


@hookimpl
def health(target: Target, timeout: float, offline: bool) -> HealthReport:
    from llmswitch_anthropic import checks

    return kit.run_checks(checks.health(target, timeout, offline))


@hookimpl
async def ahealth(target: Target, timeout: float, offline: bool) -> HealthReport:
    from llmswitch_anthropic import checks

    return await kit.arun_checks(checks.health(target, timeout, offline))


# ---- the provider's batch service (``llmswitch batch --via provider``) ----------------------------------------


@hookimpl
def batch_line(target: Target, custom_id: str, request: Request) -> dict[str, Any]:
    from llmswitch_anthropic import batches

    return batches.batch_line(target, custom_id, request)


@hookimpl
def batch_submit(target: Target, lines: Sequence[dict[str, Any]]) -> ProviderJob:
    from llmswitch_anthropic import batches

    return batches.batch_submit(target, lines)


@hookimpl
def batch_retrieve(target: Target, job_id: str) -> ProviderJob:
    from llmswitch_anthropic import batches

    return batches.batch_retrieve(target, job_id)


@hookimpl
def batch_results(target: Target, job_id: str) -> Iterator[BatchAnswer]:
    from llmswitch_anthropic import batches

    return batches.batch_results(target, job_id)


@hookimpl
def batch_cancel(target: Target, job_id: str) -> ProviderJob:
    from llmswitch_anthropic import batches

    return batches.batch_cancel(target, job_id)
