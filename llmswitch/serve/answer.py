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
from json.encoder import encode_basestring, encode_basestring_ascii  # type: ignore[attr-defined]  # json's C escapers
from typing import Any, Protocol

from llmswitch.errors import LLMSwitchError
from llmswitch.serve.failures import Failure, failure_of
from llmswitch.serve.gateway import Call, Gateway
from llmswitch.types import StreamError, TextDelta, Usage

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
               (b"x-accel-buffering", b"no")]
JSON_HEADERS = [(b"content-type", b"application/json")]
ANSWERING = "llmswitch.answering"  # the scope key of the protocol an answer speaks (for its end at shutdown)


class WireFormat(Protocol):
    """What a protocol supplies: its stream's framing and its bodies (see openai_api, anthropic_api)."""

    def stream_head(self, call: Call) -> bytes: ...

    def stream_texts(self, texts: list[str]) -> bytes:
        """The events of a batch of text pieces (see :class:`TextEvents`)."""
        ...

    def stream_tail(self, call: Call, usage: Usage) -> bytes: ...

    def stream_error(self, failure: Failure) -> bytes: ...

    def whole(self, call: Call, usage: Usage) -> dict[str, Any]: ...

    def error_body(self, failure: Failure) -> dict[str, Any]: ...


class TextEvents:
    """A protocol's text events from a pre-built template: only each piece is JSON-escaped (by the json module's
    C escaper), and a batch of pieces is joined and encoded once, not one event object and one ``json.dumps``
    per token."""

    __slots__ = ("prefix", "suffix", "joiner")

    def __init__(self, prefix: str, suffix: str) -> None:
        self.prefix, self.suffix, self.joiner = prefix, suffix, suffix + prefix

    def __call__(self, texts: list[str]) -> bytes:
        if not texts:
            return b""
        escaped = self.joiner.join(map(encode_basestring, texts))
        try:
            return (self.prefix + escaped + self.suffix).encode()
        except UnicodeEncodeError:  # a lone surrogate (which a server may send, escaped): escaped again, as JSON can
            escaped = self.joiner.join(map(encode_basestring_ascii, texts))
            return (self.prefix + escaped + self.suffix).encode()


def json_bytes(payload: Any) -> bytes:
    try:
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:  # a lone surrogate in a text: \u-escaped, the one way UTF-8 JSON can carry it
        return json.dumps(payload, separators=(",", ":")).encode()


async def send_json(send: Send, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
    body = json_bytes(payload)
    raw_headers = [*JSON_HEADERS, (b"content-length", str(len(body)).encode()),
                   *((key.lower().encode(), value.encode()) for key, value in (headers or {}).items())]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


def call_failure(call: Call, error: LLMSwitchError) -> Failure:
    """How a call's failure is answered: once the router has tried more than once, the client is asked not to
    retry on top (each of its retries would be the router's whole round again)."""
    return failure_of(error, call.profile, retried=len(call.result.attempts) > 1,
                      upstream_url=call.result.resolved.target.base_url)


async def send_failure(send: Send, protocol: WireFormat, failure: Failure) -> None:
    await send_json(send, failure.status, protocol.error_body(failure), failure.headers)


class AnswerResponse:
    """An ASGI response that runs one call; starlette awaits it like any response.

    The ledger row is written before the answer's last bytes go out, so a client that checks `llmswitch usage`
    (or /metrics) after its answer finds it there, and the usage it is told is the ledger's.
    """

    def __init__(self, gateway: Gateway, call: Call, protocol: WireFormat) -> None:
        self.gateway, self.call, self.protocol = gateway, call, protocol

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        scope[ANSWERING] = self.protocol
        answer = asyncio.ensure_future(self._answer(send))
        watcher = asyncio.ensure_future(_wait_for_disconnect(receive))
        try:
            await asyncio.wait((answer, watcher), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (answer, watcher):
                if not task.done():
                    task.cancel()
            await asyncio.gather(answer, watcher, return_exceptions=True)
            await self.gateway.finish(self.call)  # a cancelled answer gets its row too: what was used is charged
        if answer.done() and not answer.cancelled() and answer.exception() is not None:
            raise answer.exception()  # type: ignore[misc]

    async def _answer(self, send: Send) -> None:
        if self.call.stream:
            await self._stream(send)
        else:
            await self._whole(send)

    async def _usage(self) -> Usage:
        """Record the call; the tokens to report: the backend's, and the ledger's count where it said none."""
        await self.gateway.finish(self.call)
        usage = self.call.result.usage
        cost = self.call.cost
        if cost is None:
            return usage
        return Usage(usage.input_tokens if usage.input_tokens is not None else cost.input_tokens,
                     usage.output_tokens if usage.output_tokens is not None else cost.output_tokens)

    async def _whole(self, send: Send) -> None:
        call, protocol = self.call, self.protocol
        async for event in call.result:
            if type(event) is StreamError:
                await self.gateway.finish(call)
                await send_failure(send, protocol, call_failure(call, event.error))
                return
        await send_json(send, 200, protocol.whole(call, await self._usage()))

    async def _stream(self, send: Send) -> None:
        """One write per list of events the upstream delivered together (a network read often carries dozens
        of tokens; the first text comes alone, at once), instead of one write per token: nothing is held back
        waiting for more. The texts of the list that ends the answer go out at once too, before the call's
        ledger row is written (the client reads them meanwhile; the answer's end waits for the row)."""
        call, protocol = self.call, self.protocol
        started = False
        failure = None
        body = b""
        batches = call.result.batches()
        try:
            async for batch in batches:
                texts = [event.text for event in batch if type(event) is TextDelta]  # type: ignore[union-attr]
                if len(texts) != len(batch):
                    errors = [event.error for event in batch if type(event) is StreamError]  # type: ignore[union-attr]
                    if errors:
                        failure = call_failure(call, errors[0])
                        if not started and not texts:
                            break  # nothing sent yet: a real HTTP error, with Retry-After
                body = protocol.stream_texts(texts)
                if not started:
                    started = True
                    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
                    body = protocol.stream_head(call) + body
                if failure is not None:
                    break
                if body:
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                    body = b""
        finally:
            await batches.aclose()  # the call's bookkeeping ends before its row is written (finish)
        if failure is not None:
            await self.gateway.finish(call)
            if not started:
                await send_failure(send, protocol, failure)
            else:  # after the text already sent: the protocol's error event ends the stream
                await send({"type": "http.response.body", "body": body + protocol.stream_error(failure),
                            "more_body": False})
            return
        tail = protocol.stream_tail(call, await self._usage())  # every text went out above
        if not started:
            await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
            tail = protocol.stream_head(call) + tail
        await send({"type": "http.response.body", "body": tail, "more_body": False})


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
