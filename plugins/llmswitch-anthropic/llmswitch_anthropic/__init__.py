"""The anthropic backend: Claude through Anthropic's Messages API.

The official SDK builds the requests (auth, headers, retries, timeouts) and reports HTTP errors; the
answers are read raw (SSE parsed here, see :mod:`llmswitch_anthropic.sse`) so streaming costs little more
than the network. Importing this module does not import the SDK: each hook imports what it needs.
"""

from __future__ import annotations

from collections.abc import Iterator

from llmswitch import hookimpl
from llmswitch.types import BackendInfo, HealthReport, Request, Response, StreamEvent, Target, TokenCount
from llmswitch_anthropic.info import INFO


@hookimpl
def llmswitch_backends() -> list[BackendInfo]:
    return [INFO]


@hookimpl
def complete(target: Target, request: Request) -> Response:
    from llmswitch_anthropic import calls

    return calls.complete(target, request)


@hookimpl
def stream(target: Target, request: Request) -> Iterator[StreamEvent]:
    from llmswitch_anthropic import calls

    return calls.stream(target, request)


@hookimpl
def count_tokens(target: Target, request: Request) -> TokenCount:
    from llmswitch_anthropic import calls

    return calls.count_tokens(target, request)


@hookimpl
def health(target: Target, timeout: float, offline: bool) -> HealthReport:
    from llmswitch_anthropic import checks

    return checks.health(target, timeout, offline)
