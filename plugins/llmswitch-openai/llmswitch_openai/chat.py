"""``complete`` and ``stream``: one chat-completions call, whole or as server-sent events.

The stream is read as raw bytes and each ``data:`` line parsed with ``json.loads``: building the SDK's
typed chunk objects costs about ten times as much per token. Usage is asked for with
``stream_options.include_usage``; a server that refuses that field (HTTP 400/422) is asked again without
it, and remembered for the rest of the process so later calls do not pay for the refusal again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx

from llmswitch.errors import BadResponseError
from llmswitch.types import (
    Request,
    Response,
    StreamEnd,
    StreamEvent,
    Target,
    TextDelta,
    Usage,
    UsageEvent,
)
from llmswitch_openai.failures import (
    BACKEND,
    bad_stream_data,
    error_for_transport,
    server_name,
    short,
    stream_error_event,
)
from llmswitch_openai.payload import build_body
from llmswitch_openai.sse import iter_events
from llmswitch_openai.transport import check_status, request_json, send, timeout_seconds

CHAT_PATH = "chat/completions"

# Base URLs that refused stream_options in this process: asked without it from then on.
_refuses_stream_options: set[str] = set()


def complete(target: Target, request: Request) -> Response:
    """One whole answer (``"stream": false``)."""
    body = build_body(target, request, stream=False, include_usage=False)
    started = time.perf_counter()
    document = request_json(target, "POST", CHAT_PATH, json_body=body, seconds=timeout_seconds(target))
    latency = time.perf_counter() - started
    try:
        choice = document["choices"][0]
        message = choice.get("message") or {}
        text = message.get("content")
        if text is None:
            text = message.get("refusal") or ""  # a refusal is the model's answer, not an error
        if not isinstance(text, str):
            raise TypeError("content is not a string")
        return Response(
            text=text,
            finish_reason=choice.get("finish_reason"),
            usage=parse_usage(document.get("usage")),
            model=document.get("model") or target.model,
            latency_s=latency,
        )
    except (KeyError, IndexError, TypeError, AttributeError):
        raise BadResponseError(
            f"{server_name(target)} answered with JSON that is not a chat completion: "
            f"{short(json.dumps(document), 120)}",
            remedy="check base_url: it should be an OpenAI-compatible endpoint (usually ending in /v1)",
            backend=BACKEND,
        ) from None


def stream(target: Target, request: Request) -> Iterator[StreamEvent]:
    """Start a streamed answer. The settings are checked now, so a refused one is raised at once; the
    request itself is sent when the caller first asks for an event."""
    asks_usage = bool(target.option("include_usage", True)) and target.base_url not in _refuses_stream_options
    body = build_body(target, request, stream=True, include_usage=asks_usage)
    return _events(target, body)


def _events(target: Target, body: dict[str, Any]) -> Iterator[StreamEvent]:
    seconds = timeout_seconds(target)
    response = _open_stream(target, body, seconds)
    try:
        yield from _read_stream(target, response, seconds)
    finally:
        response.close()  # also when the caller stops early: the server sees the disconnect and stops


def _open_stream(target: Target, body: dict[str, Any], seconds: float) -> httpx.Response:
    response = send(target, "POST", CHAT_PATH, json_body=body, seconds=seconds)
    if response.status_code in (400, 422) and "stream_options" in body:
        # Older vLLM, some proxies and strict servers reject the field: ask once more without it.
        response.close()
        without = {key: value for key, value in body.items() if key != "stream_options"}
        response = send(target, "POST", CHAT_PATH, json_body=without, seconds=seconds)
        if response.status_code < 300 and target.base_url:
            _refuses_stream_options.add(target.base_url)
    check_status(target, response, seconds=seconds)
    return response


_decode_json = json.JSONDecoder().raw_decode


def parse_chunk(data: str) -> Any:
    """One event's JSON. ``raw_decode`` skips ``json.loads``' wrappers (half the cost per token); the
    rare event with surrounding whitespace goes through ``json.loads``. Raises ValueError if not JSON."""
    try:
        value, end = _decode_json(data)
    except ValueError:
        return json.loads(data)
    if end != len(data) and data[end:].strip():
        raise ValueError("extra data after the JSON value")
    return value


def _read_stream(target: Target, response: httpx.Response, seconds: float) -> Iterator[StreamEvent]:
    """The hot loop: one JSON parse and a few dictionary lookups per token."""
    loads = parse_chunk
    received = 0
    finish_reason: str | None = None
    model: str | None = None
    usage: Any = None
    done = False
    try:
        for event, data in iter_events(response.iter_bytes()):
            if data == "[DONE]":
                done = True
                break
            try:
                chunk = loads(data)
            except ValueError:
                raise bad_stream_data(target, data, received) from None
            try:
                choices = chunk.get("choices")
                if choices:
                    choice = choices[0]
                    delta = choice.get("delta")
                    if delta:
                        content = delta.get("content")
                        if content:
                            received += len(content)
                            yield TextDelta(content)
                    reason = choice.get("finish_reason")
                    if reason:
                        finish_reason = reason
                elif "error" in chunk or event == "error":
                    raise stream_error_event(target, chunk, received)
                if chunk.get("usage"):
                    usage = chunk["usage"]  # some servers repeat it on every chunk: the last one counts
                if model is None:
                    model = chunk.get("model")
            except (AttributeError, TypeError, IndexError, KeyError):
                raise bad_stream_data(target, data, received) from None
    except httpx.HTTPError as exc:
        raise error_for_transport(target, exc, timeout=seconds, received_chars=received) from None
    if not done and finish_reason is None:
        raise BadResponseError(
            f"the answer from {server_name(target)} ended early, after {received} characters, without "
            "finishing (no finish_reason, no [DONE])",
            remedy="try again; if it keeps happening, look at the server's log or a proxy between you",
            backend=BACKEND,
        )
    if usage is not None:
        yield UsageEvent(parse_usage(usage))
    yield StreamEnd(finish_reason, model or target.model)


def parse_usage(usage: Any) -> Usage:
    """OpenAI's ``prompt_tokens`` / ``completion_tokens``; anything missing stays None."""
    if not isinstance(usage, dict):
        return Usage()
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return Usage(
        input_tokens=prompt if isinstance(prompt, int) else None,
        output_tokens=completion if isinstance(completion, int) else None,
    )
