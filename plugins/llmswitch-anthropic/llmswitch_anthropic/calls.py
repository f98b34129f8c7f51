"""The three calls that talk to the Messages API: a whole answer, a stream, a token count."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NoReturn

from llmswitch.encoding import server_json
from llmswitch.errors import LLMSwitchError
from llmswitch.kit.silence import AnswerWatch
from llmswitch.types import Request, Response, StreamEvent, Target, TokenCount
from llmswitch_anthropic.errors import from_exception, is_anthropic, not_json_answer, server_name
from llmswitch_anthropic.events import translate
from llmswitch_anthropic.info import NAME
from llmswitch_anthropic.sse import iter_events
from llmswitch_anthropic.transport import sdk_arguments, sdk_client, timeout_of
from llmswitch_anthropic.wire import build_body, count_body, parse_message

if TYPE_CHECKING:
    import anthropic

COUNT_TIMEOUT_S = 10.0


def complete(target: Target, request: Request) -> Response:
    arguments = sdk_arguments(build_body(target, request, stream=False))
    started = time.perf_counter()
    client = sdk_client(target)
    try:
        raw = client.messages.with_raw_response.create(**arguments)
        content = raw.read()
    except Exception as exc:
        _raise_translated(exc, target)
    try:
        payload = server_json(content)
    except ValueError:
        raise not_json_answer(target, content) from None
    return parse_message(payload, target, time.perf_counter() - started)


def stream(target: Target, request: Request) -> Iterator[StreamEvent]:
    """Check the settings and build the client now (a bad setting fails before anything is sent)."""
    arguments = sdk_arguments(build_body(target, request, stream=True))
    return _stream(target, sdk_client(target), arguments)


def _stream(target: Target, client: anthropic.Anthropic, arguments: dict[str, Any]) -> Iterator[StreamEvent]:
    try:
        with client.messages.with_streaming_response.create(**arguments) as response:
            content_type = response.headers.get("content-type", "")
            if content_type and "event-stream" not in content_type:  # a proxy's page, not an answer
                raise not_json_answer(target, response.read(), content_type)
            # Time without an event (pings and comments do not count) is bounded by timeout, like silence.
            watch = AnswerWatch(timeout_of(target), server_name(target), profile=target.profile, backend=NAME)
            yield from watch.events(translate(iter_events(watch.chunks(response.http_response.iter_bytes())), target))
    except LLMSwitchError:
        raise
    except Exception as exc:  # GeneratorExit (the caller stopped early) is not an Exception: it passes
        _raise_translated(exc, target)


def count_tokens(target: Target, request: Request) -> TokenCount:
    """Exact from ``/v1/messages/count_tokens`` when it answers; otherwise an estimate, marked as one."""
    from llmswitch.client import estimate_tokens

    estimate = estimate_tokens(request)
    if not target.option("count_with_api", True):
        return estimate
    if target.api_key is None and is_anthropic(target):
        return TokenCount(estimate.n, exact=False, method=f"{estimate.method} (no API key to ask Anthropic)")
    try:
        raw = sdk_client(target).messages.with_raw_response.count_tokens(
            **sdk_arguments(count_body(target, request)), timeout=min(timeout_of(target), COUNT_TIMEOUT_S)
        )
        payload = raw.json()
        n = payload.get("input_tokens") if isinstance(payload, dict) else None
        if isinstance(n, int) and not isinstance(n, bool):
            return TokenCount(n, exact=True, method="anthropic count_tokens endpoint")
        reason = "count_tokens answered without a number"
    except Exception as exc:  # a count is advisory: any failure falls back to the estimate, with the reason
        error = exc if isinstance(exc, LLMSwitchError) else from_exception(exc, target)
        reason = f"count_tokens failed: {error.message if error else type(exc).__name__}"
    return TokenCount(estimate.n, exact=False, method=f"{estimate.method} ({reason})")


def _raise_translated(exc: Exception, target: Target) -> NoReturn:
    """Raise the llmswitch error for a failure; anything unrecognised is a bug, re-raised for the core."""
    error = from_exception(exc, target)
    if error is None:
        raise exc
    raise error from exc
