"""Messages API stream events to llmswitch stream events.

A stream is ``message_start`` (model, input usage), then per content block ``content_block_start``,
``content_block_delta``... ``content_block_stop``, then ``message_delta`` (stop reason, output usage) and
``message_stop``; ``ping`` may come at any time, and ``error`` (``overloaded_error``...) ends it early.
Only text deltas reach the user; thinking and tool-input deltas are not part of the answer's text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from llmswitch.encoding import server_json
from llmswitch.types import StreamEnd, StreamEvent, Target, TextDelta, Usage, UsageEvent
from llmswitch_anthropic.errors import cut_off, from_error_body, not_json, not_message_events
from llmswitch_anthropic.wire import finish_reason, usage_from

_decode = json.JSONDecoder().raw_decode


def parse_data(data: bytes, target: Target) -> dict[str, Any]:
    """One event's JSON object. ``raw_decode`` on text is about three times as fast as ``json.loads`` on
    bytes (no encoding sniffing, no whitespace regexes); the slow, lenient path runs only on odd input."""
    try:
        text = data.decode("utf-8")
        payload, end = _decode(text)
        if end != len(text) and text[end:].strip():
            raise ValueError("extra data")
    except ValueError:  # also UnicodeDecodeError; and raw_decode refuses leading whitespace
        try:
            payload = server_json(data)  # invalid UTF-8 becomes U+FFFD: the policy of every backend
        except ValueError:
            raise not_json(target, data) from None
    if type(payload) is not dict:
        raise not_json(target, data)
    return payload  # type: ignore[no-any-return]


def translate(events: Iterable[tuple[str, bytes]], target: Target) -> Iterator[StreamEvent]:
    """Yield text as it arrives, then usage and the end; raise a BackendError on an error or a cut-off."""
    model: str | None = None
    usage: Usage | None = None
    stop_reason: str | None = None
    decode = _decode
    started = answered = False
    others = 0  # events of no type this backend knows
    first_other = b""
    for name, data in events:
        if name == "ping":
            continue
        # parse_data inlined for the common case (a function call per token is measurable here).
        try:
            text = data.decode("utf-8")
            payload, end = decode(text)
        except ValueError:
            payload = parse_data(data, target)
        else:
            if end != len(text) or type(payload) is not dict:
                payload = parse_data(data, target)
        kind = payload.get("type") or name
        # The hot path: one of these per token.
        if kind == "content_block_delta":
            delta = payload.get("delta")
            if type(delta) is dict and delta.get("type") == "text_delta":
                piece = delta.get("text")
                if piece and type(piece) is str:
                    answered = True
                    yield TextDelta(piece)
            continue
        if kind == "message_start":
            started = True
            message = payload.get("message")
            if type(message) is dict:
                model = message.get("model") or model
                usage = usage_from(message.get("usage"), usage)
        elif kind == "message_delta":
            delta = payload.get("delta")
            if type(delta) is dict and delta.get("stop_reason"):
                stop_reason = delta["stop_reason"]
            usage = usage_from(payload.get("usage"), usage)
        elif kind == "message_stop":
            if others and not (started or answered):
                raise not_message_events(target, others, first_other)
            if usage is not None:
                yield UsageEvent(usage)
            yield StreamEnd(finish_reason(stop_reason), model or target.model)
            return
        elif kind == "error":
            raise from_error_body(target, None, payload, in_stream=True)
        elif kind not in ("content_block_start", "content_block_stop"):
            others += 1  # a type added later carries no text; a stream of nothing else is another API
            first_other = first_other or data
    if others and not (started or answered):
        raise not_message_events(target, others, first_other)
    raise cut_off(target)
