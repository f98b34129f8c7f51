"""Anthropic's Messages protocol: ``POST /v1/messages`` (whole and streamed), ``/v1/messages/count_tokens``.

The request's ``model`` names a profile. A stream is Anthropic's event sequence (``message_start``, one text
block's ``content_block_*`` events, ``message_delta`` with the stop reason and usage, ``message_stop``); a
failure after text ends it with an ``error`` event, which the anthropic SDK raises.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from llmswitch.client import ResolvedProfile
from llmswitch.record import record
from llmswitch.serve import failures
from llmswitch.serve.answer import TextEvents, json_bytes
from llmswitch.serve.failures import Failure, GatewayRequestError
from llmswitch.serve.fields import (
    optional_bool,
    optional_number,
    refuse_unsupported,
    required_str,
    stop_sequences,
    text_of,
)
from llmswitch.serve.gateway import Call, anthropic_finish
from llmswitch.types import Message, Request, Usage

ERROR_TYPES = {
    failures.INVALID_REQUEST: "invalid_request_error",
    failures.CONTEXT_TOO_LONG: "invalid_request_error",
    failures.UNAUTHENTICATED: "authentication_error",
    failures.NOT_FOUND: "not_found_error",
    failures.UNKNOWN_PATH: "not_found_error",
    failures.RATE_LIMITED: "rate_limit_error",
    failures.UPSTREAM: "api_error",
    failures.OVERLOADED: "overloaded_error",
    failures.INTERNAL: "api_error",
}
UNSUPPORTED = {"tools": [], "tool_choice": ({"type": "none"}, {"type": "auto"}), "mcp_servers": [],
               "thinking": ({"type": "disabled"},), "container": ""}


@record(slots=False)
class MessagesRequest:
    model: str
    stream: bool
    build: Callable[[ResolvedProfile], Request]


def parse_messages(body: dict[str, Any], *, counting: bool = False) -> MessagesRequest:
    """The body of ``POST /v1/messages`` (or, ``counting``, of ``count_tokens``, where max_tokens is absent)."""
    model = required_str(body, "model")
    max_tokens = optional_number(body, "max_tokens", int, minimum=1)
    if max_tokens is None and not counting:
        raise GatewayRequestError("'max_tokens' is required", param="max_tokens")
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise GatewayRequestError("'messages' is required and must be a non-empty list", param="messages")
    refuse_unsupported(body, UNSUPPORTED)
    messages: list[Message] = []
    for index, message in enumerate(raw_messages):
        where = f"messages.{index}"
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise GatewayRequestError(f"{where}: each message needs a role of 'user' or 'assistant'")
        messages.append(Message(message["role"], text_of(message.get("content"), f"{where}.content")))
    raw_system = body.get("system")
    system = text_of(raw_system, "system") if raw_system is not None else None
    settings = {
        "temperature": optional_number(body, "temperature"),
        "top_p": optional_number(body, "top_p"),
        "top_k": optional_number(body, "top_k", int),
        "max_tokens": max_tokens,
        "stop": stop_sequences(body.get("stop_sequences"), "stop_sequences"),
    }
    stream = optional_bool(body, "stream")

    def build(resolved: ResolvedProfile) -> Request:
        return resolved.request(messages, system=system, **settings)

    return MessagesRequest(model, stream, build)


def models_list(names: list[str]) -> dict[str, Any]:
    data = [{"type": "model", "id": name, "display_name": name, "created_at": "1970-01-01T00:00:00Z"}
            for name in names]
    return {"data": data, "has_more": False, "first_id": names[0] if names else None,
            "last_id": names[-1] if names else None}


def _event(name: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + json_bytes(payload) + b"\n\n"


class AnthropicProtocol:
    """The Messages framing for one call (see :class:`llmswitch.serve.answer.WireFormat`)."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.id = "msg_" + uuid.uuid4().hex[:24]
        self.stream_texts = TextEvents('event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
                                       '"delta":{"type":"text_delta","text":', "}}\n\n")

    def _message(self, text: str, stop_reason: str | None, usage: Usage) -> dict[str, Any]:
        return {"id": self.id, "type": "message", "role": "assistant", "model": self.model,
                "content": [{"type": "text", "text": text}] if text or stop_reason is not None else [],
                "stop_reason": stop_reason, "stop_sequence": None,
                "usage": {"input_tokens": usage.input_tokens or 0, "output_tokens": usage.output_tokens or 0}}

    def stream_head(self, call: Call) -> bytes:
        start = self._message("", None, Usage(0, 0))
        return (_event("message_start", {"type": "message_start", "message": start})
                + _event("content_block_start", {"type": "content_block_start", "index": 0,
                                                 "content_block": {"type": "text", "text": ""}})
                + _event("ping", {"type": "ping"}))

    def stream_tail(self, call: Call, usage: Usage) -> bytes:
        delta = {"type": "message_delta",
                 "delta": {"stop_reason": anthropic_finish(call.result.finish_reason), "stop_sequence": None},
                 "usage": {"input_tokens": usage.input_tokens or 0, "output_tokens": usage.output_tokens or 0}}
        return (_event("content_block_stop", {"type": "content_block_stop", "index": 0})
                + _event("message_delta", delta) + _event("message_stop", {"type": "message_stop"}))

    def stream_error(self, failure: Failure) -> bytes:
        return _event("error", self.error_body(failure))

    def whole(self, call: Call, usage: Usage) -> dict[str, Any]:
        return self._message(call.result.text, anthropic_finish(call.result.finish_reason), usage)

    def error_body(self, failure: Failure) -> dict[str, Any]:
        return error_body(failure)


def error_body(failure: Failure) -> dict[str, Any]:
    return {"type": "error", "error": {"type": ERROR_TYPES[failure.kind], "message": failure.message}}
