"""The toolkit's stream decoders: any split of the bytes gives the same items; bytes that are not UTF-8 and
oversized lines give a clear error."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmswitch.errors import BadResponseError
from llmswitch.kit import NDJSONDecoder, SSEDecoder, SSEEvent, TextSlot, json_object

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


def outcome(decoder: SSEDecoder | NDJSONDecoder, chunks: list[bytes]) -> tuple[list, str | None]:
    """The items decoded, and the message of the error that ended the stream (None: it ended well)."""
    items: list = []
    try:
        for chunk in chunks:
            items += decoder.feed(chunk)
        items += decoder.close()
    except BadResponseError as error:
        return items, error.message
    return items, None


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), CUTS)
def test_sse_arbitrary_bytes_give_the_same_outcome_however_split(noise: bytes, cuts) -> None:
    split_up = outcome(SSEDecoder("the test server"), split(noise, cuts))
    assert split_up == outcome(SSEDecoder("the test server"), [noise])  # events, then at most a clear error
    try:
        noise.decode("utf-8")
    except UnicodeDecodeError:
        assert split_up[1] is not None and "not UTF-8" in split_up[1]
    else:
        assert split_up[1] is None


@pytest.mark.parametrize("decoder", [SSEDecoder, NDJSONDecoder])
@settings(max_examples=100, deadline=None)
@given(prefix=st.text(max_size=20).filter(lambda t: "\r" not in t and "\n" not in t), cuts=CUTS)
def test_invalid_utf8_is_a_bad_response_after_what_came_before(decoder, prefix: str, cuts) -> None:
    wire = f"data: é{prefix}\n\n".encode() + f"data: {prefix}".encode() + b"\xff\xfe bad\n\ndata: never\n\n"
    items, message = outcome(decoder("the server at http://127.0.0.1:9"), split(wire, cuts))
    assert items == ([SSEEvent("message", f"é{prefix}")] if decoder is SSEDecoder else [f"data: é{prefix}"])
    assert message == ("the server at http://127.0.0.1:9 sent text that is not UTF-8 (the bytes b'\\xff'); a "
                       "chat answer must be UTF-8")


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


def test_an_event_that_never_ends_is_a_bad_response_before_it_holds_more_than_the_limit() -> None:
    decoder = SSEDecoder("the test server", max_line=1000, max_event=10_000)
    assert decoder.feed(b"data: first\n\n") == [SSEEvent("message", "first")]
    fed = 0
    with pytest.raises(BadResponseError) as caught:
        for _ in range(1000):  # 900 kB of data lines and never the blank line that would end the event
            decoder.feed(b"data: " + b"x" * 900 + b"\n")
            fed += 900
    assert fed <= 10_000  # stopped at the limit, not after everything the server sent
    assert caught.value.message == ("the test server sent one event longer than 10000 characters (data lines that "
                                    "never reached the blank line ending an event); that is not a chat stream")
    assert "the text so far is kept" in (caught.value.remedy or "")
    with pytest.raises(BadResponseError):  # and it stays broken
        decoder.feed(b"\n")


def test_an_event_of_exactly_the_limit_passes_and_one_more_character_fails() -> None:
    wire = b"data: " + b"a" * 40 + b"\ndata: " + b"b" * 19 + b"\n\n"  # 40 + LF + 19 = 60 characters of data
    assert decode_sse_with([wire], max_event=60) == ([SSEEvent("message", "a" * 40 + "\n" + "b" * 19)], None)
    assert decode_sse_with([wire], max_event=59)[1] is not None


def test_max_event_below_max_line_is_refused() -> None:
    with pytest.raises(ValueError, match="must be at least max_line"):
        SSEDecoder(max_line=100, max_event=50)


def decode_sse_with(chunks: list[bytes], *, max_event: int) -> tuple[list, str | None]:
    return outcome(SSEDecoder("the test server", max_line=50, max_event=max_event), chunks)


@settings(max_examples=300, deadline=None)
@given(EVENTS, NEWLINE, st.booleans(), CUTS)
def test_an_oversized_event_gives_the_same_outcome_however_split(events, newline, noise, cuts) -> None:
    limit = 50  # EVENTS hold up to 3 lines of 30 characters: some fit, some do not
    wire = encode_sse(events, newline, noise)
    expected: list[SSEEvent] = []
    message = None
    for name, lines in events:
        data = "\n".join(lines)
        if len(data) > limit:
            message = f"the test server sent one event longer than {limit} characters"
            break
        expected.append(SSEEvent(name or "message", data))
    for chunks in (split(wire, cuts), [wire], [wire[i : i + 1] for i in range(len(wire))]):
        items, error = decode_sse_with(chunks, max_event=limit)
        assert items == expected
        assert (error or "").startswith(message or "") and (error is None) == (message is None)


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


# ---- exact rules, each with the case that would break it ------------------------------------------------------


@pytest.mark.parametrize("decoder", [SSEDecoder, NDJSONDecoder])
def test_a_line_of_exactly_the_limit_passes_and_one_more_character_fails(decoder) -> None:
    prefix = b"data: " if decoder is SSEDecoder else b""
    fits = decoder("the test server", max_line=20)
    line = prefix + b"x" * (20 - len(prefix))
    assert fits.feed(line[:7]) == [] and fits.feed(line[7:] + b"\n\n") != []
    for chunks in ([line + b"y\n"], [line[:10], line[10:] + b"y"], [line + b"y"]):
        instance = decoder("the test server", max_line=20)
        with pytest.raises(BadResponseError) as caught:
            for chunk in chunks:
                instance.feed(chunk)
        assert caught.value.message == ("the test server sent a line longer than 20 characters; that is not a "
                                        "chat stream")
        assert caught.value.remedy == ("check base_url (a proxy or another kind of server may answer there); the "
                                       "text so far is kept")


@pytest.mark.parametrize("decoder", [SSEDecoder, NDJSONDecoder])
def test_a_long_line_made_of_short_reads_counts_what_came_before(decoder) -> None:
    instance = decoder("s", max_line=10)
    instance.feed(b"123456")
    with pytest.raises(BadResponseError):
        instance.feed(b"78901\n")  # 11 characters in all: the part held from the first read counts
    whole = decoder("s", max_line=10)
    whole.feed(b"12345")
    assert whole.feed(b"67890\n\n") == ([] if decoder is SSEDecoder else ["1234567890"])
    many = decoder("s", max_line=10)
    assert many.feed(b"1234567890\n1234567890\n") == ([] if decoder is SSEDecoder else ["1234567890"] * 2)


def test_a_byte_order_mark_is_dropped_only_at_the_very_start() -> None:
    assert decode_sse([b"\xef\xbb", b"\xbfdata: a\n\n"]) == [SSEEvent("message", "a")]
    assert decode_sse([b"data: a\n\n\xef\xbb\xbfdata: b\n\n"]) == [SSEEvent("message", "a")]  # "\ufeffdata" is no field
    ndjson = NDJSONDecoder()
    assert ndjson.feed(b"\xef\xbb\xbf{}\n\xef\xbb\xbf{}\n") == ["{}", "\ufeff{}"]
    assert ndjson.feed(b"\xef\xbb\xbf{}\n") == ["\ufeff{}"]  # a later read is not the start either


def test_sse_field_rules_one_by_one() -> None:
    assert decode_sse([b"data:x\n\n"]) == [SSEEvent("message", "x")]  # no space after the colon
    assert decode_sse([b"data\n\n"]) == [SSEEvent("message", "")]  # a field name alone: empty value
    assert decode_sse([b"data: a\ndata: b\ndata: c\n\n"]) == [SSEEvent("message", "a\nb\nc")]
    assert decode_sse([b"event: e\n\ndata: after\n\n"]) == [SSEEvent("message", "after")]  # name reset
    assert decode_sse([b"event:e\ndata: 1\n\ndata: 2\n\n"]) == [SSEEvent("e", "1"), SSEEvent("message", "2")]
    assert decode_sse([b"event:  spaced\ndata: 1\n\n"]) == [SSEEvent(" spaced", "1")]
    assert decode_sse([b"other: x\ndata: 1\n\n"]) == [SSEEvent("message", "1")]
    assert decode_sse([b": data: no\ndata: 1\n\n"]) == [SSEEvent("message", "1")]
    assert decode_sse([b"data: a:b: c\n\n"]) == [SSEEvent("message", "a:b: c")]
    assert decode_sse([b"\n\n\n"]) == []


def test_sse_close_discards_an_open_event_and_the_decoder_starts_clean() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: 1\n\ndata: half") == [SSEEvent("message", "1")]
    assert decoder.close() == []


def test_a_cr_at_the_end_of_a_read_and_an_lf_at_the_start_of_the_next_are_one_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\ndata: b\r\n\r\n") == [SSEEvent("message", "a\nb")]
    lone = SSEDecoder()
    assert lone.feed(b"data: a\r") == [] and lone.feed(b"\r") == [SSEEvent("message", "a")]
    assert lone.feed(b"\ndata: c\n\n") == [SSEEvent("message", "c")]  # an LF after a CR it did not follow


def test_ndjson_lines_lose_their_cr_and_blank_lines_are_skipped() -> None:
    decoder = NDJSONDecoder()
    assert decoder.feed(b'{"a": 1}\r\n\r\n  \n\t\n{"b": 2}\n') == ['{"a": 1}', '{"b": 2}']
    assert decoder.feed(b"a\rb\n") == ["a\rb"]  # a CR inside a line is not a line end in NDJSON
    assert decoder.feed(b"last\r") == [] and decoder.close() == ["last"]
    assert NDJSONDecoder().close() == []
    spaces = NDJSONDecoder()
    spaces.feed(b"   ")
    assert spaces.close() == []
    ends_mid_character = NDJSONDecoder()
    ends_mid_character.feed("caf\u00e9".encode()[:-1])
    with pytest.raises(BadResponseError, match=r"not UTF-8 \(the bytes b'\\xc3'\)"):  # cut short inside a character
        ends_mid_character.close()


def test_json_object_refuses_everything_but_one_object_and_says_why() -> None:
    assert json_object('{"a": {"b": [1, 2]}}') == {"a": {"b": [1, 2]}}
    assert json_object('{"a": 1}\n') == {"a": 1}
    assert json_object('\t{"a": 1}') == {"a": 1}
    for text, reason in (('{"a": 1} {"b": 2}', "extra data after the JSON value"), ("[1]", "not a JSON object"),
                         ("1", "not a JSON object"), ("null", "not a JSON object"), ('"s"', "not a JSON object"),
                         (' [1] ', "not a JSON object")):
        with pytest.raises(ValueError) as caught:
            json_object(text)
        assert str(caught.value) == reason, (text, caught.value)


@pytest.mark.parametrize("decoder", [SSEDecoder, NDJSONDecoder])
def test_a_pending_line_of_exactly_the_limit_is_kept_at_the_start_and_after_a_line_end(decoder) -> None:
    assert decoder(max_line=20).feed(b"x" * 20) == []  # nothing counted before the first byte
    after_a_line = decoder(max_line=20)
    after_a_line.feed(b"{}\n" + b"y" * 20)  # the unfinished tail is exactly at the limit
    with pytest.raises(BadResponseError) as caught:
        after_a_line.feed(b"y")
    assert caught.value.message.startswith("the server sent a line longer than 20 characters")  # default name


def test_a_bare_colon_is_a_comment() -> None:
    assert decode_sse([b":\ndata: a\n:\n\n"]) == [SSEEvent("message", "a")]


def test_only_the_lf_right_after_a_cr_is_swallowed() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\r") == []
    assert decoder.feed(b"\ndata: y\n") == []
    assert decoder.feed(b"\n") == [SSEEvent("message", "x\ny")]  # this LF is a blank line of its own


# ---- TextSlot: the fast path equals a full parse ----------------------------------------------------------------

# (an event as a server writes it with a placeholder for each string that may change, the text's path, the
# varying strings' paths): Ollama's line (a time stamp before the text), an OpenAI chunk with a varying string
# after the text, and one with the text alone.
SLOT_SHAPES = [
    ('{"model":"m","created_at":"@1","message":{"role":"assistant","content":"@0"},"done":false}',
     ("message", "content"), (("created_at",),)),
    ('{"id":"c","choices":[{"index":0,"delta":{"content":"@0"}}],"obfuscation":"@1"}',
     ("choices", 0, "delta", "content"), (("obfuscation",),)),
    ('{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"@0"}}', ("delta", "text"), ()),
]


def fill(template: str, text: str, other: str, *, encode: bool, ascii_only: bool = True) -> str:
    """The event with ``text`` and ``other`` in their places, written as JSON strings or inserted raw."""
    def literal(value: str) -> str:
        return json.dumps(value, ensure_ascii=ascii_only)[1:-1] if encode else value
    # Both places at once: a text that itself holds "@1" must not be taken for the other's place.
    return re.sub("@[01]", lambda place: literal(text if place.group() == "@0" else other), template)


def with_at(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    copy = json.loads(json.dumps(document))
    holder = copy
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = value
    return copy


def at(document: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        document = document[step]
    return document


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(SLOT_SHAPES), st.text(), st.text(), st.booleans(), st.booleans(), st.text(max_size=6),
       st.integers(min_value=0, max_value=200))
def test_text_slot_reads_an_event_only_as_a_full_parse_would(shape, text: str, other: str, encode: bool,
                                                             ascii_only: bool, noise: str, where: int) -> None:
    """Whatever the event (its strings written properly or inserted raw, quotes and backslashes included, noise
    anywhere): when the slot reads a text, parsing the event gives the learned object with that text, and with
    nothing else changed but the varying strings. Properly written strings are always read."""
    template, path, varying = shape
    learned_data = fill(template, "hi", "2025-11-24T00:00:00Z", encode=True)
    learned = json_object(learned_data)
    slot = TextSlot.learn(learned_data, learned, path, "hi", varying)
    assert slot is not None
    data = fill(template, text, other, encode=encode, ascii_only=ascii_only)
    if noise:
        data = data[:where] + noise + data[where:]
    read = slot.text_of(data)
    if encode and not noise:
        assert read == text
    if read is not None:
        parsed = json_object(data)  # a JSON error here would be the fast path reading what is not JSON
        assert at(parsed, path) == read
        for each in varying:
            assert type(at(parsed, each)) is str
            parsed = with_at(parsed, each, at(learned, each))
        assert with_at(parsed, path, "hi") == learned


def test_text_slot_with_a_varying_string_refuses_what_it_cannot_tell_apart() -> None:
    line = '{"created_at":"T","message":{"content":"hi"},"done":false}'
    varying = (("created_at",),)
    slot = TextSlot.learn(line, json_object(line), ("message", "content"), "hi", varying)
    assert slot is not None and slot.text_of(line.replace('"T"', '"T2\\u00e9"').replace('"hi"', '"yo"')) == "yo"
    assert slot.text_of(line.replace('"T"', '"T","x":"y"')) is None  # more than a string in the varying slot
    assert slot.text_of(line.replace('"T"', "1")) is None  # not a string there
    # A stamp the event lacks (or that is not a string) is not a slot: an event that has one is parsed.
    bare = '{"message":{"content":"hi"},"done":false}'
    plain = TextSlot.learn(bare, json_object(bare), ("message", "content"), "hi", varying)
    assert plain is not None and plain.text_of(line) is None and plain.text_of(bare) == "hi"
    # The stamp given twice: the slot is the one the parser keeps (the last); the other stays fixed.
    twice = '{"created_at":"T","created_at":"T","message":{"content":"hi"}}'
    slot = TextSlot.learn(twice, json_object(twice), ("message", "content"), "hi", varying)
    assert slot is not None and slot.text_of(twice.replace('"T","message"', '"X","message"')) == "hi"
    assert slot.text_of(twice.replace('"created_at":"T",', '"created_at":"Z",', 1)) is None
