"""The openai plugin's SSE decoder: events survive any chunking, and no input makes it raise."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from llmswitch_openai.sse import Event, encode_event, iter_events

# SSE data cannot hold a carriage return (it is a line end); everything else, newlines included, can.
data_text = st.text(st.characters(codec="utf-8", exclude_characters="\r"), max_size=40)
event_names = st.one_of(st.none(), st.sampled_from(["message", "error", "ping", "content_block_delta"]))
events_strategy = st.lists(st.tuples(data_text, event_names), max_size=12)


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(max(cut, 0), len(data)) for cut in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


@settings(max_examples=300, deadline=None)
@given(events=events_strategy, cuts=st.lists(st.integers(0, 2000), max_size=20), crlf=st.booleans())
def test_events_survive_any_chunking(events: list[tuple[str, str | None]], cuts: list[int], crlf: bool) -> None:
    wire = b"".join(encode_event(data, name) for data, name in events)
    if crlf:
        wire = wire.replace(b"\n", b"\r\n")
    decoded = list(iter_events(split_at(wire, cuts)))
    assert decoded == [Event(name or "message", data) for data, name in events]


@settings(max_examples=300, deadline=None)
@given(noise=st.binary(max_size=300), cuts=st.lists(st.integers(0, 300), max_size=10))
def test_any_bytes_decode_without_raising_and_chunking_does_not_matter(noise: bytes, cuts: list[int]) -> None:
    whole = list(iter_events([noise]))
    assert list(iter_events(split_at(noise, cuts))) == whole
    for event in whole:
        assert isinstance(event.data, str) and isinstance(event.event, str)


@given(payloads=st.lists(st.dictionaries(st.text(max_size=5), st.integers(), max_size=3), max_size=8))
def test_openai_chunks_round_trip_through_json(payloads: list[dict[str, int]]) -> None:
    wire = b"".join(b"data: " + json.dumps(p).encode() + b"\n\n" for p in payloads) + b"data: [DONE]\n\n"
    decoded = [event.data for event in iter_events([wire])]
    assert [json.loads(d) for d in decoded[:-1]] == payloads and decoded[-1] == "[DONE]"


def test_comments_ids_and_retry_are_ignored_and_multiline_data_is_joined() -> None:
    wire = (
        b": OPENROUTER PROCESSING\n\n"
        b"id: 7\nretry: 100\nevent: error\ndata: {\"a\":\ndata: 1}\n\n"
        b"data:no-space\n\n"
        b"data\n\n"
    )
    assert list(iter_events([wire])) == [
        Event("error", '{"a":\n1}'),
        Event("message", "no-space"),
        Event("message", ""),
    ]


def test_an_event_left_open_at_the_end_is_still_delivered() -> None:
    assert list(iter_events([b"data: [DON", b"E]"])) == [Event("message", "[DONE]")]


def test_a_character_split_between_reads_survives_and_bad_utf8_is_replaced() -> None:
    wire = 'data: {"content": "caf\u00e9 \u2603"}\n\n'.encode()
    cut = wire.index(b"\xe2") + 1  # inside the snowman's three bytes
    assert list(iter_events([wire[:cut], wire[cut:]])) == [Event("message", '{"content": "caf\u00e9 \u2603"}')]
    assert list(iter_events([b"data: \xff\n\n"])) == [Event("message", "\ufffd")]
