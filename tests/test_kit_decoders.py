"""The toolkit's stream decoders: any split of the bytes gives the same items; bad bytes give a clear error."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmswitch.errors import BadResponseError
from llmswitch.kit import NDJSONDecoder, SSEDecoder, SSEEvent, json_object

# A field value: no line break (that ends the line) and no leading space (the one after the colon is syntax).
VALUE = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=30).filter(
    lambda text: not text.startswith(" ")
)
NAME = st.one_of(st.none(), st.sampled_from(["message", "error", "ping", "content_block_delta", "x"]))
EVENTS = st.lists(st.tuples(NAME, st.lists(VALUE, min_size=1, max_size=3)), max_size=10)
NEWLINE = st.sampled_from(["\n", "\r\n", "\r"])
CUTS = st.lists(st.integers(min_value=0, max_value=3000), max_size=25)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


def decode_sse(chunks: list[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder("the test server")
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events + decoder.close()


def encode_sse(events: list[tuple[str | None, list[str]]], newline: str, noise: bool) -> bytes:
    out: list[str] = []
    for name, lines in events:
        if noise:  # comments, ids and retry fields are ignored wherever they are
            out += [": keep-alive" + newline, "id: 7" + newline, "retry: 1000" + newline]
        if name is not None:
            out.append(f"event: {name}{newline}")
        out += [f"data: {line}{newline}" for line in lines]
        out.append(newline)
    return "".join(out).encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(EVENTS, NEWLINE, st.booleans(), CUTS)
def test_sse_any_chunking_and_line_ending_gives_the_same_events(events, newline, noise, cuts) -> None:
    wire = encode_sse(events, newline, noise)
    expected = [SSEEvent(name or "message", "\n".join(lines)) for name, lines in events]
    assert decode_sse(split(wire, cuts)) == expected
    assert decode_sse([wire]) == expected
    assert decode_sse([wire[i : i + 1] for i in range(len(wire))]) == expected


def test_sse_dispatches_only_at_a_blank_line_and_drops_an_unfinished_event() -> None:
    assert decode_sse([b"data: 1\n\ndata: 2\n"]) == [SSEEvent("message", "1")]
    assert decode_sse([b"data: 1\n\nevent: x\ndata: 2"]) == [SSEEvent("message", "1")]


def test_sse_follows_the_whatwg_field_rules() -> None:
    wire = b"\xef\xbb\xbfevent:x\ndata:1\ndata\n\n:comment\nretry: 5\nid: 3\n\nevent: y\n\ndata:  two spaces\n\n"
    assert decode_sse([wire]) == [SSEEvent("x", "1\n"), SSEEvent("message", " two spaces")]


def test_sse_a_cr_split_from_its_lf_is_one_line_end() -> None:
    assert decode_sse([b"data: a\r", b"\n", b"\r", b"\ndata: b\r\r"]) == [SSEEvent("message", "a"),
                                                                         SSEEvent("message", "b")]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), CUTS)
def test_sse_arbitrary_bytes_give_the_same_events_however_split(noise: bytes, cuts) -> None:
    assert decode_sse(split(noise, cuts)) == decode_sse([noise])  # never an exception: see the U+FFFD policy


@pytest.mark.parametrize("decoder", [SSEDecoder, NDJSONDecoder])
@settings(max_examples=100, deadline=None)
@given(prefix=st.text(max_size=20).filter(lambda t: "\r" not in t and "\n" not in t), cuts=CUTS)
def test_invalid_utf8_becomes_a_replacement_character(decoder, prefix: str, cuts) -> None:
    wire = f"data: {prefix}".encode() + b"\xff\xfe bad\n\n"
    instance = decoder("the server at http://127.0.0.1:9")
    items: list = []
    for chunk in split(wire, cuts):
        items += instance.feed(chunk)
    items += instance.close()
    text = items[0].data if decoder is SSEDecoder else items[0]
    assert text == ("" if decoder is SSEDecoder else "data: ") + f"{prefix}\ufffd\ufffd bad"


def test_a_character_split_between_reads_is_not_invalid() -> None:
    data = "data: é€😀\n\n".encode()
    assert decode_sse([data[i : i + 1] for i in range(len(data))]) == [SSEEvent("message", "é€😀")]


@pytest.mark.parametrize("decoder", [SSEDecoder, NDJSONDecoder])
@pytest.mark.parametrize("terminated", [True, False])
def test_an_oversized_line_is_a_bad_response(decoder, terminated: bool) -> None:
    instance = decoder("the test server", max_line=1000)
    with pytest.raises(BadResponseError) as caught:
        for _ in range(20):
            instance.feed(b"data: " + b"x" * 100)
        if terminated:
            instance.feed(b"\n\n")
    assert "longer than 1000" in caught.value.message


# ---- NDJSON ----------------------------------------------------------------------------------------------

LINES = st.lists(st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), min_size=1, max_size=30)
                 .filter(lambda t: not t.isspace()), max_size=12)


@settings(max_examples=300, deadline=None)
@given(LINES, st.booleans(), st.booleans(), CUTS)
def test_ndjson_any_chunking_gives_the_same_lines(lines: list[str], crlf: bool, last_newline: bool, cuts) -> None:
    newline = "\r\n" if crlf else "\n"
    wire = (newline.join(lines) + (newline if last_newline else "") + "\n\n").encode()
    decoder = NDJSONDecoder()
    got = [line for chunk in split(wire, cuts) for line in decoder.feed(chunk)] + decoder.close()
    assert got == lines


def test_json_object_fast_path_and_its_refusals() -> None:
    assert json_object('{"a": 1}') == {"a": 1}
    assert json_object(' {"a": 1} ') == {"a": 1}
    for bad in ("[1]", '{"a": 1} x', "{", ""):
        with pytest.raises(ValueError):
            json_object(bad)
