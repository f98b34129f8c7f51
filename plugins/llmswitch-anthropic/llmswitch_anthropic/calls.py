"""The calls that talk to the Messages API, on the toolkit: a whole answer, a stream, a token count.

Each hook builds a :class:`~llmswitch.kit.Call` and hands it to the toolkit's driver of its form, so the sync
and async forms share the request, the event translator and every error. The requests are the ones
Anthropic's SDK sends (``x-api-key``, ``anthropic-version``, JSON bodies) without importing it (its import
alone costs more than a streamed answer's whole overhead) and without its retries: retries belong to the
router, and a transport that retries on its own multiplies them.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from llmswitch import kit
from llmswitch.kit import LLMSwitchError, Request, Response, StreamEvent, Target, TokenCount
from llmswitch_anthropic.errors import is_anthropic, server_name, status_error, unreachable_remedy
from llmswitch_anthropic.info import API_VERSION, DEFAULT_BASE_URL, DEFAULT_TIMEOUT_S, NAME
from llmswitch_anthropic.wire import EventTranslator, build_body, count_body, parse_message

COUNT_TIMEOUT_S = 10.0
MESSAGES_PATH = "v1/messages"


def timeout_of(target: Target) -> float:
    return float(target.option("timeout", DEFAULT_TIMEOUT_S))


def endpoint(target: Target) -> kit.Endpoint:
    headers = {"anthropic-version": str(target.option("anthropic_version") or API_VERSION),
               "accept": "application/json"}
    if target.api_key is not None:
        headers["x-api-key"] = target.api_key.value
    headers = kit.with_profile_headers(target, headers)
    url = kit.check_base_url(target, target.base_url or DEFAULT_BASE_URL, DEFAULT_BASE_URL)
    return kit.Endpoint(
        url,
        profile=target.profile,
        backend=NAME,
        server=server_name(target),
        headers=headers,
        timeout=timeout_of(target),
        unreachable_remedy=unreachable_remedy(target),
        status_error=lambda answer: status_error(target, answer),
    )


def messages_call(target: Target, request: Request, *, stream: bool) -> kit.Call:
    """The request; a setting the API cannot honour is refused here, before anything is sent."""
    return kit.Call(endpoint(target), "POST", MESSAGES_PATH, build_body(target, request, stream=stream),
                    content="a Messages API answer")


def complete(target: Target, request: Request) -> Response:
    call = messages_call(target, request, stream=False)
    started = time.perf_counter()
    return parse_message(kit.request_json(call), target, time.perf_counter() - started)


async def acomplete(target: Target, request: Request) -> Response:
    call = messages_call(target, request, stream=False)
    started = time.perf_counter()
    return parse_message(await kit.arequest_json(call), target, time.perf_counter() - started)


def stream(target: Target, request: Request) -> Iterator[StreamEvent]:
    call = messages_call(target, request, stream=True)
    return kit.stream(call, kit.SSEDecoder(call.endpoint.server), EventTranslator(target))


def astream(target: Target, request: Request) -> AsyncIterator[StreamEvent]:
    return kit.events_of(astream_batches(target, request))


def astream_batches(target: Target, request: Request) -> AsyncIterator[Sequence[StreamEvent]]:
    call = messages_call(target, request, stream=True)
    return kit.astream_batches(call, kit.SSEDecoder(call.endpoint.server), EventTranslator(target))


def count_tokens(target: Target, request: Request) -> TokenCount:
    """Exact from ``/v1/messages/count_tokens`` when it answers; otherwise an estimate, marked as one."""
    from llmswitch.kit import estimate_tokens

    estimate = estimate_tokens(request)
    if not target.option("count_with_api", True):
        return estimate
    if target.api_key is None and is_anthropic(target):
        return TokenCount(estimate.n, exact=False, method=f"{estimate.method} (no API key to ask Anthropic)")
    try:
        call = kit.Call(endpoint(target), "POST", f"{MESSAGES_PATH}/count_tokens", count_body(target, request),
                        timeout=min(timeout_of(target), COUNT_TIMEOUT_S))
        payload: Any = kit.request_json(call)
        n = payload.get("input_tokens")
        if isinstance(n, int) and not isinstance(n, bool):
            return TokenCount(n, exact=True, method="anthropic count_tokens endpoint")
        reason = "count_tokens answered without a number"
    except LLMSwitchError as error:  # a count is advisory: any failure falls back to the estimate, with the reason
        reason = f"count_tokens failed: {error.message}"
    return TokenCount(estimate.n, exact=False, method=f"{estimate.method} ({reason})")
