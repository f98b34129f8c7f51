"""The hooks' bodies: ``/api/chat`` whole or streamed, sync or async, on the toolkit; and the token estimate.

Each hook builds a :class:`~llmswitch.kit.Call` and hands it to the toolkit's driver of its form, so the two
forms share the request, the NDJSON translator and every error.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from llmswitch import kit
from llmswitch.kit import Request, Response, StreamEvent, Target, TokenCount
from llmswitch_ollama.errors import START_REMEDY, base_url, from_status, status_error
from llmswitch_ollama.info import DEFAULT_TIMEOUT_S, NAME
from llmswitch_ollama.wire import LineTranslator, build_body, parse_chat

CHAT_PATH = "api/chat"
CONNECT_TIMEOUT_S = 5.0  # Ollama runs on this machine or the local network: it answers a connect at once


def endpoint(target: Target, timeout: float | None = None) -> kit.Endpoint:
    url = base_url(target)
    return kit.Endpoint(
        url,
        profile=target.profile,
        backend=NAME,
        server=f"Ollama at {url}",
        headers=kit.header_table(target),
        timeout=float(target.option("timeout", DEFAULT_TIMEOUT_S)),
        connect_timeout=CONNECT_TIMEOUT_S,
        unreachable_remedy=f"{START_REMEDY}, or point base_url in profile '{target.profile}' (or OLLAMA_HOST) at "
        "the machine that runs it",
        status_error=lambda answer: status_error(target, answer),
    )


def chat_call(target: Target, request: Request, *, stream: bool) -> kit.Call:
    """The request; a setting that cannot be honoured is refused here, before anything is sent."""
    body = build_body(target, request, stream=stream)
    return kit.Call(endpoint(target), "POST", CHAT_PATH, body, content="an Ollama answer")


def _answer(target: Target, payload: dict[str, Any], started: float) -> Response:
    if payload.get("error") and "message" not in payload:
        raise from_status(target, None, payload)
    return parse_chat(payload, target, time.perf_counter() - started)


def complete(target: Target, request: Request) -> Response:
    call = chat_call(target, request, stream=False)
    started = time.perf_counter()
    return _answer(target, kit.request_json(call), started)


async def acomplete(target: Target, request: Request) -> Response:
    call = chat_call(target, request, stream=False)
    started = time.perf_counter()
    return _answer(target, await kit.arequest_json(call), started)


def stream(target: Target, request: Request) -> Iterator[StreamEvent]:
    """Check the settings now (a bad one fails before anything is sent); the request starts on iteration."""
    call = chat_call(target, request, stream=True)
    return kit.stream(call, kit.NDJSONDecoder(call.endpoint.server), LineTranslator(target))


def astream(target: Target, request: Request) -> AsyncIterator[StreamEvent]:
    return kit.events_of(astream_batches(target, request))


def astream_batches(target: Target, request: Request) -> AsyncIterator[Sequence[StreamEvent]]:
    call = chat_call(target, request, stream=True)
    return kit.astream_batches(call, kit.NDJSONDecoder(call.endpoint.server), LineTranslator(target))


def count_tokens(target: Target, request: Request) -> TokenCount:
    """An estimate: Ollama has no endpoint that counts without generating."""
    from llmswitch.kit import estimate_tokens

    estimate = estimate_tokens(request)
    return TokenCount(estimate.n, exact=False, method=f"{estimate.method} (Ollama cannot count without running)")
