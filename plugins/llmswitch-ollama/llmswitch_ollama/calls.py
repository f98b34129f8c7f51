"""The calls that talk to ``/api/chat``: a whole answer and a stream; and the (offline) token estimate."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NoReturn

from llmswitch.encoding import server_json
from llmswitch.errors import LLMSwitchError
from llmswitch.kit.silence import AnswerWatch
from llmswitch.types import Request, Response, StreamEvent, Target, TokenCount
from llmswitch_ollama.errors import base_url, check_response, from_exception, from_status, not_json
from llmswitch_ollama.events import translate
from llmswitch_ollama.info import NAME
from llmswitch_ollama.ndjson import iter_lines
from llmswitch_ollama.transport import http_client, timeout_of
from llmswitch_ollama.wire import build_body, parse_chat

if TYPE_CHECKING:
    import httpx

CHAT_PATH = "/api/chat"


def complete(target: Target, request: Request) -> Response:
    body = build_body(target, request, stream=False)
    client = http_client(target)
    started = time.perf_counter()
    try:
        response = client.post(CHAT_PATH, json=body)
    except Exception as exc:
        _raise_translated(exc, target, during_answer=False)
    check_response(target, response)
    try:
        payload = server_json(response.content)
    except ValueError:
        raise not_json(target, response.content) from None
    if isinstance(payload, dict) and payload.get("error") and "message" not in payload:
        raise from_status(target, None, payload)
    return parse_chat(payload, target, time.perf_counter() - started)


def stream(target: Target, request: Request) -> Iterator[StreamEvent]:
    """Check the settings now (a bad one fails before anything is sent); the request starts on iteration."""
    body = build_body(target, request, stream=True)
    return _stream(target, http_client(target), body)


def _stream(target: Target, client: httpx.Client, body: dict[str, Any]) -> Iterator[StreamEvent]:
    answering = False
    try:
        with client.stream("POST", CHAT_PATH, json=body) as response:
            if response.status_code >= 300:
                response.read()
                check_response(target, response)
            answering = True
            # Time without an answer line (blank keep-alive lines do not count) is bounded by timeout too.
            watch = AnswerWatch(timeout_of(target), f"the Ollama server at {base_url(target)}",
                                profile=target.profile, backend=NAME)
            yield from watch.events(translate(iter_lines(watch.chunks(response.iter_bytes())), target))
    except LLMSwitchError:
        raise
    except Exception as exc:  # GeneratorExit (the caller stopped early) is not an Exception: it passes
        _raise_translated(exc, target, during_answer=answering)


def count_tokens(target: Target, request: Request) -> TokenCount:
    """An estimate: Ollama has no endpoint that counts without generating."""
    from llmswitch.client import estimate_tokens

    estimate = estimate_tokens(request)
    return TokenCount(estimate.n, exact=False, method=f"{estimate.method} (Ollama cannot count without running)")


def _raise_translated(exc: Exception, target: Target, *, during_answer: bool) -> NoReturn:
    error = from_exception(exc, target, during_answer=during_answer)
    if error is None:
        raise exc
    raise error from exc
