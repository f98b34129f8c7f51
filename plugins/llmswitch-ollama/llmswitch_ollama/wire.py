"""llmswitch requests to ``/api/chat`` bodies, and Ollama's answers back (whole or NDJSON lines): no network.

Mapping (every setting is sent, or refused with a reason, never dropped):

=======================  =========================================================================
llmswitch                Ollama ``/api/chat``
=======================  =========================================================================
system                   a first message with role ``system``
temperature, top_p       ``options.temperature``, ``options.top_p``
top_k, seed, stop        ``options.top_k``, ``options.seed``, ``options.stop``
max_tokens               ``options.num_predict``
num_ctx, repeat_penalty  ``options.<same name>`` (and the other extras in ``info.OPTION_EXTRAS``)
keep_alive, think        top-level ``keep_alive`` (numbers as numbers: ``"-1"`` is -1), ``think``
anything else            refused with the list of what is accepted
=======================  =========================================================================
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from llmswitch.kit import (
    BadResponseError,
    Request,
    Response,
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
from llmswitch_ollama.info import NAME, OPTION_EXTRAS, TOP_LEVEL_EXTRAS

OPTION_EXTRA_NAMES = frozenset(spec.name for spec in OPTION_EXTRAS)
TOP_LEVEL_EXTRA_NAMES = frozenset(spec.name for spec in TOP_LEVEL_EXTRAS)
_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def keep_alive_value(value: Any) -> Any:
    """Ollama reads a JSON number as seconds and a string as a Go duration (``"5m"``): ``"-1"`` would fail."""
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        number = float(value)
        return int(number) if number.is_integer() else number
    return value


def build_body(target: Target, request: Request, *, stream: bool) -> dict[str, Any]:
    """The JSON body of ``POST /api/chat``."""
    unknown = sorted(set(request.extras) - OPTION_EXTRA_NAMES - TOP_LEVEL_EXTRA_NAMES)
    if unknown:
        accepted = ", ".join(sorted(OPTION_EXTRA_NAMES | TOP_LEVEL_EXTRA_NAMES))
        raise UnsupportedOptionError(
            f"the ollama backend has no generation setting named {', '.join(unknown)}",
            remedy=f"remove it from profile '{target.profile}' (or the command line); ollama takes {accepted}",
        )
    messages: list[dict[str, str]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    messages.extend({"role": message.role, "content": message.content} for message in request.messages)

    options: dict[str, Any] = {}
    for name, value in (
        ("temperature", request.temperature),
        ("top_p", request.top_p),
        ("top_k", request.top_k),
        ("seed", request.seed),
        ("num_predict", request.max_tokens),
    ):
        if value is not None:
            options[name] = value
    if request.stop:
        options["stop"] = list(request.stop)
    body: dict[str, Any] = {"model": target.model, "messages": messages, "stream": stream}
    for name, value in request.extras.items():
        if value is None:
            continue
        if name in OPTION_EXTRA_NAMES:
            options[name] = value
        elif name == "keep_alive":
            body["keep_alive"] = keep_alive_value(value)
        else:
            body[name] = value
    if options:
        body["options"] = options
    return body


def usage_from(payload: Mapping[str, Any]) -> Usage:
    """Ollama reports the prompt's tokens as ``prompt_eval_count`` and the answer's as ``eval_count``."""
    prompt = payload.get("prompt_eval_count")
    answer = payload.get("eval_count")
    return Usage(
        input_tokens=prompt if isinstance(prompt, int) else None,
        output_tokens=answer if isinstance(answer, int) else None,
    )


def message_text(payload: Mapping[str, Any]) -> str:
    message = payload.get("message")
    if isinstance(message, Mapping):
        content = message.get("content")
        return content if isinstance(content, str) else ""
    return ""


def parse_chat(payload: Any, target: Target, latency_s: float) -> Response:
    """A whole (non-streamed) ``/api/chat`` answer."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("message"), Mapping):
        import json

        sample = json.dumps(payload)[:100]
        raise BadResponseError(
            f"the answer does not look like Ollama's /api/chat (no message): {sample!r}",
            remedy=f"check base_url in profile '{target.profile}': it must point at an Ollama server",
            backend=NAME,
        )
    return Response(
        text=message_text(payload),
        finish_reason=str(payload.get("done_reason") or "stop"),
        usage=usage_from(payload),
        model=str(payload.get("model") or target.model),
        latency_s=latency_s,
    )


TEXT_PATH = ("message", "content")
VARYING = (("created_at",),)  # Ollama stamps every line with the time it was made; the answer never reads it
LESSONS = 3  # lines a stream may learn its fast path from (see kit.TextSlot)


class LineTranslator:
    """Ollama's NDJSON chat lines to stream events (the state machine the sync and async streams drive).

    Each line is ``{"model", "created_at", "message": {"role", "content"}, "done": false}``; the last has
    ``"done": true``, ``done_reason`` and the counts (``prompt_eval_count``, ``eval_count``). A line
    ``{"error": "..."}`` ends the stream with a failure. Thinking text (``message.thinking``) is not part of the
    answer. A line that is a learned one with only its text and time changed is read without parsing it.
    """

    __slots__ = ("target", "done", "answered", "others", "first_other", "slot", "lessons")

    def __init__(self, target: Target) -> None:
        self.target = target
        self.slot: TextSlot | None = None  # the fast path: lines that differ from a learned one only in text
        self.lessons = LESSONS
        self.done = False
        self.answered = False
        self.others = 0  # lines without a message, a done flag or an error: not /api/chat's
        self.first_other = ""

    def feed(self, line: str) -> tuple[StreamEvent, ...]:
        slot = self.slot
        if slot is not None:
            text = slot.text_of(line)
            if text:  # the learned line with only its text (and time) changed: parsing it would say nothing new
                self.answered = True
                return (TextDelta(text),)
        try:
            payload = json_object(line)
        except ValueError:
            from llmswitch_ollama.errors import not_json  # imported on failure only: feed runs per token

            raise not_json(self.target, line.encode()) from None
        out: tuple[StreamEvent, ...] = ()
        message = payload.get("message")
        if type(message) is dict:
            content = message.get("content")
            if content and type(content) is str:
                self.answered = True
                out = (TextDelta(content),)
                if self.lessons and not payload.get("done") and "error" not in payload:
                    self.lessons -= 1  # a server whose lines differ in more than text and time stops being taught
                    self.slot = TextSlot.learn(line, payload, TEXT_PATH, content, varying=VARYING) or self.slot
        elif not payload.get("done") and "error" not in payload:
            self.others += 1
            self.first_other = self.first_other or line
        if payload.get("done"):
            self._check_understood()
            self.done = True
            end = StreamEnd(str(payload.get("done_reason") or "stop"), payload.get("model") or self.target.model)
            return (*out, UsageEvent(usage_from(payload)), end)
        if "error" in payload:
            from llmswitch_ollama.errors import from_status

            raise from_status(self.target, None, payload)
        return out

    def _check_understood(self) -> None:
        if self.others and not self.answered:
            from llmswitch_ollama.errors import not_chat_lines

            raise not_chat_lines(self.target, self.others, self.first_other)

    def close(self) -> tuple[StreamEvent, ...]:
        if not self.done:
            self._check_understood()
            from llmswitch_ollama.errors import cut_off

            raise cut_off(self.target)
        return ()
