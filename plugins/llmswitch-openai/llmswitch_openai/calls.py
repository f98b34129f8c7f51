"""The hooks' bodies: one chat-completions call, whole or streamed, sync or async, built on the toolkit.

Each hook builds a :class:`~llmswitch.kit.Call` here and hands it to the toolkit's driver of its form
(``kit.request_json`` / ``kit.arequest_json``, ``kit.stream`` / ``kit.astream``): the two forms share the
request, the translator and every error. Usage is asked for with ``stream_options.include_usage``; a server
that refuses that field (HTTP 400/422) is asked again without it, and remembered for the rest of the process
so later calls do not pay for the refusal again.

The requests are the ones the official ``openai`` SDK sends (``Authorization: Bearer``,
``OpenAI-Organization``, ``OpenAI-Project``, JSON bodies), made with the toolkit directly: importing the SDK
costs 0.35-0.5 s, more than a whole plain chat process, and it reads ``OPENAI_API_KEY`` and friends from the
environment on its own, which would undo the rule that a custom base_url never receives that key.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from llmswitch import kit
from llmswitch.kit import Request, Response, StreamEvent, Target
from llmswitch_openai import __version__
from llmswitch_openai.errors import (
    BACKEND,
    explain_missing_model,
    server_name,
    status_error,
    unreachable_remedy,
)
from llmswitch_openai.info import DEFAULT_TIMEOUT_S, OPENAI_BASE_URL
from llmswitch_openai.wire import ChunkTranslator, build_body, parse_completion

CHAT_PATH = "chat/completions"
MODELS_PATH = "models"
LIST_MODELS_TIMEOUT_S = 5.0

# Base URLs that refused stream_options in this process: asked without it from then on.
_refuses_stream_options: set[str] = set()


def timeout_seconds(target: Target) -> float:
    return float(target.option("timeout", DEFAULT_TIMEOUT_S))


def headers_for(target: Target) -> dict[str, str]:
    headers = {"Accept": "application/json", "User-Agent": f"llmswitch-openai/{__version__}"}
    if target.api_key is not None:
        headers["Authorization"] = f"Bearer {target.api_key.value}"
    organization = target.option("organization")
    if organization:
        headers["OpenAI-Organization"] = str(organization)
    project = target.option("project")
    if project:
        headers["OpenAI-Project"] = str(project)
    return kit.with_profile_headers(target, headers)  # the profile's win: a proxy's own auth header replaces ours


def endpoint(target: Target) -> kit.Endpoint:
    base_url = kit.check_base_url(target, target.base_url or OPENAI_BASE_URL, "http://127.0.0.1:PORT/v1")
    return kit.Endpoint(
        base_url,
        profile=target.profile,
        backend=BACKEND,
        server=server_name(target),
        headers=headers_for(target),
        timeout=timeout_seconds(target),
        unreachable_remedy=unreachable_remedy(target),
        status_error=lambda answer: status_error(target, answer),
    )


def models_call(target: Target, timeout: float | None = None) -> kit.Call:
    return kit.Call(endpoint(target), "GET", MODELS_PATH, timeout=timeout)


def chat_call(target: Target, request: Request, *, stream: bool) -> kit.Call:
    """The request; a setting that cannot be honoured is refused here, before anything is sent."""
    asks_usage = stream and bool(target.option("include_usage", True)) and target.base_url not in _refuses_stream_options
    body = build_body(target, request, stream=stream, include_usage=asks_usage)
    where = endpoint(target)

    def explain(error: Any) -> tuple[kit.Call, Any] | None:
        rewrite = explain_missing_model(target, error)
        return (models_call(target, min(where.timeout, LIST_MODELS_TIMEOUT_S)), rewrite) if rewrite else None

    fallback = None
    if "stream_options" in body:
        # Older vLLM, some proxies and strict servers reject the field: ask once more without it.
        without = {key: value for key, value in body.items() if key != "stream_options"}
        fallback = kit.Call(where, "POST", CHAT_PATH, without, explain=explain)
    return kit.Call(where, "POST", CHAT_PATH, body, fallback=fallback, fallback_statuses=(400, 422),
                    on_fallback=lambda: _refuses_stream_options.add(target.base_url or ""), explain=explain,
                    content="a chat-completions answer")


def complete(target: Target, request: Request) -> Response:
    call = chat_call(target, request, stream=False)
    started = time.perf_counter()
    document = kit.request_json(call)
    return parse_completion(target, document, time.perf_counter() - started)


async def acomplete(target: Target, request: Request) -> Response:
    call = chat_call(target, request, stream=False)
    started = time.perf_counter()
    document = await kit.arequest_json(call)
    return parse_completion(target, document, time.perf_counter() - started)


def stream(target: Target, request: Request) -> Iterator[StreamEvent]:
    """The settings are checked now, so a refused one is raised at once; the request itself is sent when the
    caller first asks for an event."""
    call = chat_call(target, request, stream=True)
    return kit.stream(call, kit.SSEDecoder(call.endpoint.server), ChunkTranslator(target))


def astream(target: Target, request: Request) -> AsyncIterator[StreamEvent]:
    return kit.events_of(astream_batches(target, request))


def astream_batches(target: Target, request: Request) -> AsyncIterator[Sequence[StreamEvent]]:
    call = chat_call(target, request, stream=True)
    return kit.astream_batches(call, kit.SSEDecoder(call.endpoint.server), ChunkTranslator(target))


def served_models(target: Target, *, timeout: float) -> list[str] | None:
    """The model ids ``GET /models`` lists, or None when the server cannot say."""
    from llmswitch.kit import LLMSwitchError
    from llmswitch_openai.wire import model_ids

    try:
        return model_ids(kit.request_json(models_call(target, timeout)))
    except LLMSwitchError:
        return None
