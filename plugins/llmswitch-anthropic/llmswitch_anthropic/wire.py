"""llmswitch requests to Messages API bodies, and Messages API answers back: plain data, no SDK, no network.

Mapping (every setting is sent, or refused with a reason, never dropped):

=====================  ============================================================================
llmswitch              Messages API
=====================  ============================================================================
system, system turns   ``system`` (joined with a blank line; the API has no system role in messages)
max_tokens             ``max_tokens`` (required by the API: the profile's, else 1024)
temperature, top_p     ``temperature``, ``top_p`` (0 to 1; checked here, with a clearer message)
top_k                  ``top_k``
stop                   ``stop_sequences``
seed                   refused: the API has no seed
extras                 refused: this backend declares none
=====================  ============================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmswitch.kit import (
    BadResponseError,
    Request,
    Response,
    SSEEvent,
    StreamEnd,
    StreamEvent,
    Target,
    TextDelta,
    TextSlot,
    UnsupportedOptionError,
    Usage,
    UsageEvent,
    json_object,
)
from llmswitch_anthropic.errors import server_name
from llmswitch_anthropic.info import DEFAULT_MAX_TOKENS, NAME

# Anthropic's stop reasons in the words every llmswitch backend uses ("stop", "length").
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
}


def finish_reason(stop_reason: Any) -> str | None:
    if stop_reason is None:
        return None
    return FINISH_REASONS.get(str(stop_reason), str(stop_reason))


def check_supported(target: Target, request: Request) -> None:
    """Refuse, before anything is sent, a setting the Messages API cannot honour."""
    where = f"profile '{target.profile}'"
    who = server_name(target)
    if request.seed is not None:
        raise UnsupportedOptionError(
            f"the anthropic backend cannot honour seed={request.seed}: the Messages API has no seed",
            remedy=f"remove seed from {where} (or from the command line); answers cannot be made repeatable here",
        )
    for name, value in (("temperature", request.temperature), ("top_p", request.top_p)):
        if value is not None and not 0.0 <= value <= 1.0:
            raise UnsupportedOptionError(
                f"{who} takes {name} between 0 and 1 (the Messages API's range), not {value:g}",
                remedy=f"set {name} to a value from 0 to 1 in {where} (or on the command line)",
            )
    if request.top_k is not None and request.top_k < 1:
        raise UnsupportedOptionError(
            f"{who} takes top_k of 1 or more, not {request.top_k}", remedy=f"fix top_k in {where}"
        )
    if request.extras:
        names = ", ".join(sorted(request.extras))
        raise UnsupportedOptionError(
            f"the anthropic backend has no generation setting named {names}",
            remedy="remove it; the Messages API takes temperature, top_p, top_k, max_tokens and stop",
        )


def split_system(request: Request) -> tuple[str | None, list[dict[str, str]]]:
    """The system prompt (the request's plus any system turns) and the user/assistant turns."""
    system_parts = [request.system] if request.system else []
    turns: list[dict[str, str]] = []
    for message in request.messages:
        if message.role == "system":
            if message.content:
                system_parts.append(message.content)
        else:
            turns.append({"role": message.role, "content": message.content})
    return ("\n\n".join(system_parts) if system_parts else None), turns


def build_body(target: Target, request: Request, *, stream: bool) -> dict[str, Any]:
    """The JSON body of ``POST /v1/messages``."""
    check_supported(target, request)
    system, turns = split_system(request)
    body: dict[str, Any] = {
        "model": target.model,
        "max_tokens": DEFAULT_MAX_TOKENS if request.max_tokens is None else request.max_tokens,
        "messages": turns,
    }
    if system is not None:
        body["system"] = system
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.top_k is not None:
        body["top_k"] = request.top_k
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    if stream:
        body["stream"] = True
    return body


def count_body(target: Target, request: Request) -> dict[str, Any]:
    """The JSON body of ``POST /v1/messages/count_tokens`` (generation settings play no part)."""
    system, turns = split_system(request)
    body: dict[str, Any] = {"model": target.model, "messages": turns}
    if system is not None:
        body["system"] = system
    return body


def usage_from(usage: Any, previous: Usage | None = None) -> Usage:
    """Anthropic's usage block. Cache reads and writes are input tokens too, so they are counted in."""
    if not isinstance(usage, Mapping):
        return previous or Usage()
    input_tokens: int | None = None
    parts = [usage.get(key) for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")]
    if any(isinstance(part, int) for part in parts):
        input_tokens = sum(part for part in parts if isinstance(part, int))
    output = usage.get("output_tokens")
    return Usage(
        input_tokens=input_tokens if input_tokens is not None else (previous.input_tokens if previous else None),
        output_tokens=output if isinstance(output, int) else (previous.output_tokens if previous else None),
    )


def parse_message(payload: Any, target: Target, latency_s: float) -> Response:
    """A whole (non-streamed) Messages API answer."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("content"), list):
        raise BadResponseError(
            "the answer does not look like a Messages API message (no content list)",
            remedy=f"check base_url in profile '{target.profile}': it must point at an Anthropic-compatible server",
            backend=NAME,
        )
    text = "".join(
        str(block.get("text", ""))
        for block in payload["content"]
        if isinstance(block, Mapping) and block.get("type") == "text"
    )
    return Response(
        text=text,
        finish_reason=finish_reason(payload.get("stop_reason")),
        usage=usage_from(payload.get("usage")),
        model=str(payload.get("model") or target.model),
        latency_s=latency_s,
    )



TEXT_PATH = ("delta", "text")
LESSONS = 3  # text deltas a stream may learn its fast path from (see kit.TextSlot)


class EventTranslator:
    """Messages API stream events to llmswitch stream events (driven by both the sync and the async stream).

    A stream is ``message_start`` (model, input usage), then per content block ``content_block_start``,
    ``content_block_delta``... ``content_block_stop``, then ``message_delta`` (stop reason, output usage) and
    ``message_stop``; ``ping`` may come at any time, and ``error`` (``overloaded_error``...) ends it early.
    Only text deltas reach the user; thinking and tool-input deltas are not part of the answer's text.
    """

    __slots__ = ("target", "done", "model", "usage", "stop_reason", "started", "answered", "others", "first_other",
                 "slot", "lessons")

    def __init__(self, target: Target) -> None:
        self.target = target
        self.slot: TextSlot | None = None  # the fast path: text deltas that differ from a learned one only in text
        self.lessons = LESSONS
        self.done = False
        self.model: str | None = None
        self.usage: Usage | None = None
        self.stop_reason: str | None = None
        self.started = self.answered = False
        self.others = 0  # events of no type this backend knows; a stream of nothing else is another API
        self.first_other = ""

    def read_by_slot(self, texts: list[str]) -> None:
        """Texts the kit read with :attr:`slot` (see ``kit.SlotTranslator``): nothing to note, as in ``feed``."""

    def feed(self, event: SSEEvent) -> tuple[StreamEvent, ...]:
        slot = self.slot
        if slot is not None and event.event == "content_block_delta":
            text = slot.text_of(event.data)
            if text:  # the learned text delta with only its text changed
                return (TextDelta(text),)
        if event.event == "ping":
            return ()
        try:
            payload = json_object(event.data)
        except ValueError:
            from llmswitch_anthropic.errors import not_json

            raise not_json(self.target, event.data) from None
        kind = payload.get("type") or event.event
        if kind == "content_block_delta":  # the hot path: one of these per token
            delta = payload.get("delta")
            if type(delta) is dict and delta.get("type") == "text_delta":
                piece = delta.get("text")
                if piece and type(piece) is str:
                    self.answered = True
                    if self.lessons and event.event == "content_block_delta":
                        self.lessons -= 1  # a server whose deltas differ in more than their text stops being taught
                        self.slot = TextSlot.learn(event.data, payload, TEXT_PATH, piece,
                                                   event="content_block_delta") or self.slot
                    return (TextDelta(piece),)
            return ()
        if kind == "message_start":
            self.started = True
            message = payload.get("message")
            if type(message) is dict:
                self.model = message.get("model") or self.model
                self.usage = usage_from(message.get("usage"), self.usage)
        elif kind == "message_delta":
            delta = payload.get("delta")
            if type(delta) is dict and delta.get("stop_reason"):
                self.stop_reason = delta["stop_reason"]
            self.usage = usage_from(payload.get("usage"), self.usage)
        elif kind == "message_stop":
            self._check_understood()
            self.done = True
            end = StreamEnd(finish_reason(self.stop_reason), self.model or self.target.model)
            return (UsageEvent(self.usage), end) if self.usage is not None else (end,)
        elif kind == "error":
            from llmswitch_anthropic.errors import from_error_body

            raise from_error_body(self.target, None, payload, in_stream=True)
        elif kind not in ("content_block_start", "content_block_stop"):
            self.others += 1  # a type added later carries no text
            self.first_other = self.first_other or event.data
        return ()

    def _check_understood(self) -> None:
        if self.others and not (self.started or self.answered):
            from llmswitch_anthropic.errors import not_message_events

            raise not_message_events(self.target, self.others, self.first_other)

    def close(self) -> tuple[StreamEvent, ...]:
        if not self.done:
            self._check_understood()
            from llmswitch_anthropic.errors import cut_off

            raise cut_off(self.target)
        return ()
