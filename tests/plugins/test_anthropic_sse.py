"""The anthropic plugin's pure parts (no network): the stream event translation, error bodies, the body.

(The SSE decoding itself is the toolkit's, with its own properties in tests/test_kit_decoders.py.)"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from llmswitch_anthropic.errors import from_error_body
from llmswitch_anthropic.wire import EventTranslator, build_body

from llmswitch.errors import BadResponseError, RateLimitError
from llmswitch.http_headers import parse_retry_after
from llmswitch.kit import SSEEvent
from llmswitch.types import Message, Request, StreamEnd, Target, TextDelta, UsageEvent

# ---- the event translation ---------------------------------------------------------------------------


TARGET = Target(profile="p", backend="anthropic", model="claude-haiku-4-5", base_url="https://api.anthropic.com",
                options={"timeout": 5.0})


def sse_event(kind: str, **payload: object) -> SSEEvent:
    return SSEEvent(kind, json.dumps({"type": kind, **payload}))


def translate(events: list[SSEEvent], target: Target) -> list[object]:
    """Drive the translator the way the toolkit does: each event, then the end of the body."""
    translator = EventTranslator(target)
    out = [event for item in events for event in translator.feed(item)]
    return out + list(translator.close())


@given(st.lists(st.text(min_size=1, max_size=10), max_size=30))
def test_translation_yields_every_text_delta_in_order(pieces: list[str]) -> None:
    events = [sse_event("message_start", message={"model": "m", "usage": {"input_tokens": 3, "output_tokens": 1}})]
    events += [sse_event("content_block_delta", index=0, delta={"type": "text_delta", "text": p}) for p in pieces]
    events += [sse_event("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": len(pieces)}),
               sse_event("message_stop")]
    out = list(translate(events, TARGET))
    assert [e.text for e in out if isinstance(e, TextDelta)] == pieces
    assert isinstance(out[-2], UsageEvent) and out[-2].usage.output_tokens == len(pieces)
    assert out[-1] == StreamEnd("stop", "m")


def test_odd_but_valid_json_is_read_and_trailing_garbage_is_not() -> None:
    stop = [SSEEvent("message_stop", '  {"type": "message_stop"}  ')]
    assert list(translate(stop, TARGET)) == [StreamEnd(None, "claude-haiku-4-5")]
    with pytest.raises(BadResponseError, match="not JSON"):
        list(translate([SSEEvent("message_stop", '{"type": "message_stop"} tail')], TARGET))
    # Bytes that are not UTF-8 are a clear error, as on every backend: the toolkit's decoder raises it after
    # the events before them, so the translator never sees text the model did not write.
    from llmswitch.kit import SSEDecoder

    wire = (b'event: content_block_delta\ndata: {"type": "content_block_delta", "delta": {"type": "text_delta", '
            b'"text": "caf\xe9"}}\n\nevent: message_stop\ndata: {"type": "message_stop"}\n\n')
    decoder = SSEDecoder()
    assert decoder.feed(wire) == []
    with pytest.raises(BadResponseError, match="not UTF-8"):
        decoder.close()


def test_translation_of_an_error_event_and_of_data_that_is_not_an_object() -> None:
    with pytest.raises(BadResponseError, match="overloaded"):
        list(translate([sse_event("error", error={"type": "overloaded_error", "message": "Overloaded"})], TARGET))
    with pytest.raises(RateLimitError):
        list(translate([sse_event("error", error={"type": "rate_limit_error", "message": "slow down"})], TARGET))
    with pytest.raises(BadResponseError, match="not JSON"):
        list(translate([SSEEvent("message_start", "[1, 2]")], TARGET))


# ---- helpers -------------------------------------------------------------------------------------------


def test_retry_after_as_seconds_milliseconds_or_a_date() -> None:
    assert parse_retry_after({"retry-after": "12"}) == 12.0
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    seconds = parse_retry_after({"retry-after": later})
    assert seconds is not None and 25 <= seconds <= 31
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({"retry-after": "nan"}) is None
    assert parse_retry_after({}) is None


def test_error_bodies_that_are_not_anthropics_still_become_messages() -> None:
    error = from_error_body(TARGET, 502, "<html>" + "x" * 500 + "</html>")
    assert isinstance(error, BadResponseError) and len(error.message) < 300
    assert "HTTP 502" in error.message


def test_consecutive_system_turns_join_the_system_prompt() -> None:
    request = Request(messages=(Message("system", "A"), Message("user", "hi"), Message("system", "B")), system="S")
    body = build_body(TARGET, request, stream=False)
    assert body["system"] == "S\n\nA\n\nB" and body["messages"] == [{"role": "user", "content": "hi"}]
