"""Ollama's NDJSON chat stream to llmswitch stream events.

Each line is ``{"model", "message": {"role", "content"}, "done": false}``; the last has ``"done": true``,
``done_reason`` and the counts (``prompt_eval_count``, ``eval_count``). A line ``{"error": "..."}`` ends the
stream with a failure. Thinking text (``message.thinking``) is not part of the answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from llmswitch.encoding import server_json
from llmswitch.types import StreamEnd, StreamEvent, Target, TextDelta, UsageEvent
from llmswitch_ollama.errors import cut_off, from_status, not_chat_lines, not_json
from llmswitch_ollama.wire import usage_from

_decode = json.JSONDecoder().raw_decode


def parse_line(line: bytes, target: Target) -> dict[str, Any]:
    """One line's JSON object, strictly (the careful path, for lines the fast path in :func:`translate`
    did not take: leading whitespace, text after the object, bad UTF-8, not an object)."""
    try:
        payload = server_json(line)  # invalid UTF-8 becomes U+FFFD: the policy of every backend
    except ValueError:
        raise not_json(target, line) from None
    if type(payload) is not dict:
        raise not_json(target, line)
    return payload  # type: ignore[no-any-return]


def translate(lines: Iterable[bytes], target: Target) -> Iterator[StreamEvent]:
    """Yield text as it arrives, then usage and the end; raise a BackendError on an error or a cut-off."""
    decode = _decode
    answered = False
    others = 0  # lines without a message, a done flag or an error: not /api/chat's
    first_other = b""
    for line in lines:
        # ``raw_decode`` on text is about three times as fast as ``json.loads`` on bytes (no encoding
        # sniffing, no whitespace regexes), and this runs once per token.
        try:
            text = line.decode("utf-8")
            payload, end = decode(text)
        except ValueError:
            payload = parse_line(line, target)
        else:
            if end != len(text) or type(payload) is not dict:
                payload = parse_line(line, target)
        message = payload.get("message")
        if type(message) is dict:
            content = message.get("content")
            if content and type(content) is str:
                answered = True
                yield TextDelta(content)
        elif not payload.get("done") and "error" not in payload:
            others += 1
            first_other = first_other or line
        if payload.get("done"):
            if others and not answered:
                raise not_chat_lines(target, others, first_other)
            yield UsageEvent(usage_from(payload))
            yield StreamEnd(str(payload.get("done_reason") or "stop"), payload.get("model") or target.model)
            return
        if "error" in payload:
            raise from_status(target, None, payload)
    if others and not answered:
        raise not_chat_lines(target, others, first_other)
    raise cut_off(target)
