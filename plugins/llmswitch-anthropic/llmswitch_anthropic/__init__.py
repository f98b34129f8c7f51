"""The anthropic backend: Claude through Anthropic's Messages API.

Built on :mod:`llmswitch.kit`: the plugin keeps only the Messages API's wire format (the request body, the
stream's events, Anthropic's error bodies). Importing this module imports no HTTP library: each hook imports
what it needs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

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
