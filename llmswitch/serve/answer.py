"""Sending one answer, streamed or whole, the same way for both protocols.

The first event is read before the status line is sent, so a call that fails at once (a refused key upstream, a
server that is down, a rate limit) gets a real HTTP error with ``Retry-After``, which every SDK understands;
a failure after text has gone out ends the stream with the protocol's error event instead.

A client that disconnects cancels the task reading the upstream (which closes that connection at once), and
the ledger is charged for what was used. Starlette's own ``StreamingResponse`` would notice only at the next
write, and would not close the upstream deterministically, hence this small ASGI response.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from llmswitch.serve.failures import Failure, failure_of
from llmswitch.serve.gateway import Call, Gateway
from llmswitch.types import StreamError, TextDelta, Usage

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
               (b"x-accel-buffering", b"no")]
JSON_HEADERS = [(b"content-type", b"application/json")]


class WireFormat(Protocol):
    """What a protocol supplies: its stream's framing and its bodies (see openai_api, anthropic_api)."""

    def stream_head(self, call: Call) -> bytes: ...

    def stream_text(self, text: str) -> bytes: ...

    def stream_tail(self, call: Call, usage: Usage) -> bytes: ...

    def stream_error(self, failure: Failure) -> bytes: ...

    def whole(self, call: Call, usage: Usage) -> dict[str, Any]: ...

    def error_body(self, failure: Failure) -> dict[str, Any]: ...


def json_bytes(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


async def send_json(send: Send, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
    body = json_bytes(payload)
    raw_headers = [*JSON_HEADERS, (b"content-length", str(len(body)).encode()),
                   *((key.lower().encode(), value.encode()) for key, value in (headers or {}).items())]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


async def send_failure(send: Send, protocol: WireFormat, failure: Failure) -> None:
    await send_json(send, failure.status, protocol.error_body(failure), failure.headers)


def usage_of(call: Call) -> Usage:
    """The tokens to report: the backend's, else the ledger's count (estimated where the backend said none)."""
    usage = call.result.usage
    cost = call.cost
    if cost is not None and (usage.input_tokens is None or usage.output_tokens is None):
        return Usage(usage.input_tokens if usage.input_tokens is not None else cost.input_tokens,
                     usage.output_tokens if usage.output_tokens is not None else cost.output_tokens)
    return usage


class AnswerResponse:
    """An ASGI response that runs one call; starlette awaits it like any response."""

    def __init__(self, gateway: Gateway, call: Call, protocol: WireFormat) -> None:
        self.gateway, self.call, self.protocol = gateway, call, protocol

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        answer = asyncio.ensure_future(self._answer(send))
        watcher = asyncio.ensure_future(_wait_for_disconnect(receive))
        try:
            await asyncio.wait((answer, watcher), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (answer, watcher):
                if not task.done():
                    task.cancel()
            await asyncio.gather(answer, watcher, return_exceptions=True)
            await self.gateway.finish(self.call)  # once more is harmless; a cancelled answer still gets its row
        if answer.done() and not answer.cancelled() and answer.exception() is not None:
            raise answer.exception()  # type: ignore[misc]

    async def _answer(self, send: Send) -> None:
        if self.call.stream:
            await self._stream(send)
        else:
            await self._whole(send)

    async def _whole(self, send: Send) -> None:
        call, protocol = self.call, self.protocol
        async for event in call.result:
            if type(event) is StreamError:
                await self.gateway.finish(call)
                await send_failure(send, protocol, failure_of(event.error, call.profile))
                return
        await self.gateway.finish(call)
        await send_json(send, 200, protocol.whole(call, usage_of(call)))

    async def _stream(self, send: Send) -> None:
        call, protocol = self.call, self.protocol
        events = call.result.__aiter__()
        started = False
        async for event in events:
            kind = type(event)
            if kind is StreamError:
                failure = failure_of(event.error, call.profile)  # type: ignore[union-attr]
                await self.gateway.finish(call)
                if not started:
                    await send_failure(send, protocol, failure)
                    return
                await send({"type": "http.response.body", "body": protocol.stream_error(failure),
                            "more_body": False})
                return
            if not started:
                started = True
                await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
                await send({"type": "http.response.body", "body": protocol.stream_head(call), "more_body": True})
            if kind is TextDelta:
                await send({"type": "http.response.body", "body": protocol.stream_text(event.text),  # type: ignore[union-attr]
                            "more_body": True})
        await self.gateway.finish(call)
        await send({"type": "http.response.body", "body": protocol.stream_tail(call, usage_of(call)),
                    "more_body": False})


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
