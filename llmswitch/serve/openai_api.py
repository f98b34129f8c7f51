"""OpenAI's chat-completions protocol: ``POST /v1/chat/completions``, ``GET /v1/models``, errors.

The request's ``model`` names a profile; system and developer messages become the request's system prompt.
Streams carry ``chat.completion.chunk`` events, a usage chunk when ``stream_options.include_usage`` is set,
then ``[DONE]``; a failure after text ends the stream with ``{"error": {...}}``, which the openai SDK raises.
"""

from __future__ import annotations

import time
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
from llmswitch.serve.gateway import Call, openai_finish
from llmswitch.types import Message, Request, Usage

ERROR_TYPES = {
    failures.INVALID_REQUEST: ("invalid_request_error", None),
    failures.CONTEXT_TOO_LONG: ("invalid_request_error", "context_length_exceeded"),
    failures.UNAUTHENTICATED: ("invalid_request_error", "invalid_api_key"),
    failures.NOT_FOUND: ("invalid_request_error", "model_not_found"),
    failures.UNKNOWN_PATH: ("invalid_request_error", None),
    failures.RATE_LIMITED: ("requests", "rate_limit_exceeded"),
    failures.UPSTREAM: ("api_error", None),
    failures.OVERLOADED: ("server_error", None),
    failures.INTERNAL: ("server_error", None),
}
# Fields with an effect llmswitch cannot produce, and the value that has none.
UNSUPPORTED = {"n": 1, "tools": [], "functions": [], "tool_choice": "none", "logprobs": False, "top_logprobs": 0,
               "logit_bias": {}, "presence_penalty": 0, "frequency_penalty": 0, "audio": {}, "modalities": (["text"],),
               "response_format": ({"type": "text"},), "prediction": {}}


@record(slots=False)
class ChatRequest:
    model: str
    stream: bool
    include_usage: bool
    build: Callable[[ResolvedProfile], Request]


def parse_chat(body: dict[str, Any]) -> ChatRequest:
    """The body of ``POST /v1/chat/completions`` as a request for the gateway."""
    model = required_str(body, "model")
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise GatewayRequestError("'messages' is required and must be a non-empty list", param="messages")
    refuse_unsupported(body, UNSUPPORTED)
    system_parts: list[str] = []
    messages: list[Message] = []
    for index, message in enumerate(raw_messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise GatewayRequestError(f"{where} must be an object", param="messages")
        role = message.get("role")
        if role in ("system", "developer"):
            system_parts.append(text_of(message.get("content"), where))
        elif role in ("user", "assistant"):
            if message.get("tool_calls"):
                raise GatewayRequestError(f"{where}: tool calls are not supported by llmswitch serve")
            messages.append(Message(role, text_of(message.get("content"), where)))
        else:
            raise GatewayRequestError(f"{where}: role '{role}' is not supported by llmswitch serve "
                                      "(system, developer, user, assistant)", param="messages")
    if not messages:
        raise GatewayRequestError("'messages' needs at least one user message", param="messages")
    # max_completion_tokens replaced max_tokens; a client may send either (0 is refused, never read as absent).
    completion_limit = optional_number(body, "max_completion_tokens", int, minimum=1)
    legacy_limit = optional_number(body, "max_tokens", int, minimum=1)
    max_tokens = completion_limit if completion_limit is not None else legacy_limit
    settings = {
        "temperature": optional_number(body, "temperature"),
        "top_p": optional_number(body, "top_p"),
        "max_tokens": max_tokens,
        "stop": stop_sequences(body.get("stop"), "stop"),
        "seed": optional_number(body, "seed", int),
    }
    system = "\n\n".join(system_parts) if system_parts else None
    stream = optional_bool(body, "stream")
    options = body.get("stream_options") or {}
    include_usage = bool(isinstance(options, dict) and options.get("include_usage"))

    def build(resolved: ResolvedProfile) -> Request:
        return resolved.request(messages, system=system, **settings)

    return ChatRequest(model, stream, include_usage, build)


def models_list(names: list[str]) -> dict[str, Any]:
    return {"object": "list",
            "data": [{"id": name, "object": "model", "created": 0, "owned_by": "llmswitch"} for name in names]}


class OpenAIProtocol:
    """The chat-completions framing for one call (see :class:`llmswitch.serve.answer.WireFormat`)."""

    def __init__(self, model: str, include_usage: bool = False) -> None:
        self.model = model
        self.include_usage = include_usage
        self.id = "chatcmpl-" + uuid.uuid4().hex[:24]
        self.created = int(time.time())
        # Every text chunk is this prefix, the JSON string, this suffix.
        head = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": model}
        self.stream_texts = TextEvents("data: " + json_bytes(head)[:-1].decode() + ',"choices":[{"index":0,'
                                       '"delta":{"content":', '},"logprobs":null,"finish_reason":null}]}\n\n')

    def _chunk(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        chunk = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                 "choices": choices, **extra}
        return b"data: " + json_bytes(chunk) + b"\n\n"

    def stream_head(self, call: Call) -> bytes:
        return self._chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                             "finish_reason": None}])

    def stream_tail(self, call: Call, usage: Usage) -> bytes:
        tail = self._chunk([{"index": 0, "delta": {}, "logprobs": None,
                             "finish_reason": openai_finish(call.result.finish_reason)}])
        if self.include_usage:
            tail += self._chunk([], usage=usage_body(usage))
        return tail + b"data: [DONE]\n\n"

    def stream_error(self, failure: Failure) -> bytes:
        return b"data: " + json_bytes(self.error_body(failure)) + b"\n\n"

    def whole(self, call: Call, usage: Usage) -> dict[str, Any]:
        return {
            "id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": call.result.text, "refusal": None},
                         "logprobs": None, "finish_reason": openai_finish(call.result.finish_reason)}],
            "usage": usage_body(usage),
        }

    def error_body(self, failure: Failure) -> dict[str, Any]:
        return error_body(failure)


def error_body(failure: Failure) -> dict[str, Any]:
    kind, code = ERROR_TYPES[failure.kind]
    return {"error": {"message": failure.message, "type": kind, "param": failure.param,
                      "code": code or failure.code}}


def usage_body(usage: Usage) -> dict[str, int]:
    prompt, completion = usage.input_tokens or 0, usage.output_tokens or 0
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
