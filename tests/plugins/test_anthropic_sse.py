"""Properties of the anthropic plugin's SSE reader and its pure helpers (no network): whatever the chunking
and line endings, the events that come out are the events that went in."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llmswitch_anthropic.errors import from_error_body, parse_retry_after
from llmswitch_anthropic.events import translate
from llmswitch_anthropic.sse import iter_events
from llmswitch_anthropic.wire import build_body

from llmswitch.errors import BadResponseError, RateLimitError
from llmswitch.types import Message, Request, StreamEnd, Target, TextDelta, UsageEvent

# Field values: no line breaks (SSE cannot carry them inside one line) and no leading space (the one
# optional space after the colon is part of the syntax).
VALUE = st.text(st.characters(codec="utf-8", blacklist_characters="\r\n"), max_size=40).filter(
    lambda text: not text.startswith(" ")
)
EVENT_NAME = st.text(st.characters(whitelist_categories=("Ll", "Lu", "Nd"), whitelist_characters="_"),
                     min_size=1, max_size=20)
EVENTS = st.lists(st.tuples(st.one_of(st.none(), EVENT_NAME), st.lists(VALUE, min_size=1, max_size=3)),
                  max_size=12)
NEWLINE = st.sampled_from(["\n", "\r\n", "\r"])


def encode(events: list[tuple[str | None, list[str]]], newline: str, comments: bool) -> bytes:
    out: list[str] = []
    for name, data_lines in events:
        if comments:
            out.append(": keep-alive" + newline)
            out.append("id: 7" + newline)
        if name is not None:
            out.append(f"event: {name}{newline}")
        out.extend(f"data: {line}{newline}" for line in data_lines)
        out.append(newline)
    return "".join(out).encode("utf-8")


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


@settings(max_examples=300, deadline=None)
@given(EVENTS, NEWLINE, st.booleans(), st.lists(st.integers(min_value=0, max_value=2000), max_size=20))
def test_events_survive_any_chunking_and_line_ending(
    events: list[tuple[str | None, list[str]]], newline: str, comments: bool, cuts: list[int]
) -> None:
    wire = encode(events, newline, comments)
    decoded = list(iter_events(chunked(wire, cuts)))
    expected = [(name or "message", "\n".join(lines).encode("utf-8")) for name, lines in events]
    assert decoded == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=60), max_size=20))
def test_arbitrary_bytes_never_break_the_reader(chunks: list[bytes]) -> None:
    for name, data in iter_events(chunks):
        assert isinstance(name, str) and isinstance(data, bytes)


def test_an_unfinished_event_at_the_end_is_dropped() -> None:
    assert list(iter_events([b"event: a\ndata: 1\n\nevent: b\ndata: 2"])) == [("a", b"1")]


def test_field_without_space_and_without_colon() -> None:
    assert list(iter_events([b"event:x\ndata:1\ndata\n\n"])) == [("x", b"1\n")]


# ---- the event translation ---------------------------------------------------------------------------


TARGET = Target(profile="p", backend="anthropic", model="claude-haiku-4-5", base_url="https://api.anthropic.com",
                options={"timeout": 5.0})


def sse_event(kind: str, **payload: object) -> tuple[str, bytes]:
    return kind, json.dumps({"type": kind, **payload}).encode()


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
    stop = [("message_stop", b'  {"type": "message_stop"}  ')]
    assert list(translate(stop, TARGET)) == [StreamEnd(None, "claude-haiku-4-5")]
    with pytest.raises(BadResponseError, match="not JSON"):
        list(translate([("message_stop", b'{"type": "message_stop"} tail')], TARGET))
    # Bytes that are not UTF-8 become U+FFFD, as on every backend (llmswitch.encoding), not a failure.
    delta = b'{"type": "content_block_delta", "delta": {"type": "text_delta", "text": "caf\xe9"}}'
    out = list(translate([("content_block_delta", delta), ("message_stop", b'{"type": "message_stop"}')], TARGET))
    assert out[0] == TextDelta("caf\ufffd")


def test_translation_of_an_error_event_and_of_data_that_is_not_an_object() -> None:
    with pytest.raises(BadResponseError, match="overloaded"):
        list(translate([sse_event("error", error={"type": "overloaded_error", "message": "Overloaded"})], TARGET))
    with pytest.raises(RateLimitError):
        list(translate([sse_event("error", error={"type": "rate_limit_error", "message": "slow down"})], TARGET))
    with pytest.raises(BadResponseError, match="not JSON"):
        list(translate([("message_start", b"[1, 2]")], TARGET))


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
