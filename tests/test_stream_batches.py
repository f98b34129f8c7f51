"""A stream in lists (the ``astream_batches`` hook, ``AsyncStreamResult.batches``) and the chunk parser's fast
path (``kit.TextSlot``): the same events as one at a time, grouped as they arrived; the first text alone, at
once; a failure after the events that came before it. Against the OpenAI protocol test server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llmswitch_openai.calls import chat_call
from llmswitch_openai.wire import CONTENT_PATH, ChunkTranslator

from llmswitch import AsyncClient, kit
from llmswitch.kit import SSEEvent, Target, TextSlot, json_object
from llmswitch.testing.server import LocalServer
from llmswitch.types import StreamEnd, StreamError, StreamEvent, TextDelta, UsageEvent
from tests.helpers import write_config
from tests.servers.gateway import reset_upstream
from tests.servers.http import words
from tests.servers.openai_server import openai_server


@pytest.fixture(scope="module")
def shared_upstream() -> Iterator[LocalServer]:
    with openai_server() as running:
        yield running


@pytest.fixture
def upstream(shared_upstream: LocalServer, config_file: Path) -> LocalServer:
    write_config(config_file, f'[profiles.up]\nbackend = "openai"\nmodel = "test-model"\n'
                              f'base_url = "{shared_upstream.url}/v1"\napi_key = "sk-test-0123456789"\n')
    return reset_upstream(shared_upstream)


def in_lists(model: str = "up") -> tuple[Any, list[list[StreamEvent]]]:
    resolved = AsyncClient().resolve(model)

    async def main() -> tuple[Any, list[list[StreamEvent]]]:
        result = resolved.astream(resolved.request("count"))
        return result, [list(batch) async for batch in result.batches()]

    return asyncio.run(main())


def one_by_one(model: str = "up") -> list[StreamEvent]:
    resolved = AsyncClient().resolve(model)

    async def main() -> list[StreamEvent]:
        return [event async for event in resolved.astream(resolved.request("count"))]

    return asyncio.run(main())


def shown(event: StreamEvent) -> tuple[str, str]:
    return type(event).__name__, event.error.message if isinstance(event, StreamError) else repr(event)


def texts_of(batch: list[StreamEvent]) -> list[str]:
    return [event.text for event in batch if isinstance(event, TextDelta)]


def test_a_fast_server_s_tokens_come_in_few_lists_the_first_text_alone(upstream: LocalServer) -> None:
    upstream.state.options.update(tokens=2000)
    result, lists = in_lists()
    expected = "".join(words(2000))
    assert all(lists)  # never an empty list
    assert next(texts_of(batch) for batch in lists if texts_of(batch)) == ["w0 "]  # not held for its read's rest
    assert "".join(text for batch in lists for text in texts_of(batch)) == expected == result.text
    assert len(lists) < 200  # a list per network read, not per token
    assert isinstance(lists[-1][-1], StreamEnd) and any(isinstance(event, UsageEvent) for event in lists[-1])
    assert result.usage.output_tokens == 2000 and result.finish_reason == "stop"
    assert [event for batch in lists for event in batch] == one_by_one()  # the same events, one at a time


@pytest.mark.parametrize(("scenario", "says"), [("error_event", "crashed"), ("garbage", "not")])
def test_a_failure_in_the_same_read_comes_after_the_text_before_it(upstream: LocalServer, scenario: str,
                                                                   says: str) -> None:
    upstream.state.scenario = scenario
    upstream.state.options.update(tokens=10)
    result, lists = in_lists()
    events = [event for batch in lists for event in batch]
    assert "".join(texts_of(events)) == "w0 w1 w2 "  # the three tokens the server sent before failing
    assert lists[-1] == [events[-1]] and isinstance(events[-1], StreamError)  # the failure alone, last
    assert events[-1].text == "w0 w1 w2 " == result.text and says in events[-1].error.message
    assert [shown(event) for event in events] == [shown(event) for event in one_by_one()]


def test_a_cached_answer_is_replayed_as_one_list(upstream: LocalServer, config_file: Path) -> None:
    config_file.write_text(config_file.read_text() + "cache = true\ntemperature = 0\n")
    upstream.state.options.update(tokens=30)
    first, _ = in_lists()
    replayed, lists = in_lists()
    assert replayed.cached and not first.cached
    assert len(lists) == 1 and "".join(texts_of(lists[0])) == first.text == replayed.text
    assert len(upstream.state.requests) == 1


# ---- the chunk parser's fast path ------------------------------------------------------------------------


def chunk(content: Any, *, ensure_ascii: bool = True, **extra: Any) -> str:
    document = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [{"index": 0, "delta": {"content": content}, "logprobs": None,
                             "finish_reason": extra.pop("finish_reason", None)}], **extra}
    return json.dumps(document, ensure_ascii=ensure_ascii)


def translated(datas: list[str], learn: bool) -> list[StreamEvent]:
    translator = ChunkTranslator(Target("p", "openai", "m"))
    if not learn:
        translator.lessons = 0  # the parse of every chunk: what the fast path must agree with
    events: list[StreamEvent] = []
    for data in datas:
        events.extend(translator.feed(SSEEvent("message", data)))
    return [*events, *translator.close()]


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1), st.booleans(), st.lists(st.tuples(st.text(), st.booleans(), st.sampled_from(
    ["plain", "finish", "usage", "extra", "other", "spaced", "duplicate"])), max_size=6))
def test_the_fast_path_reads_every_chunk_as_parsing_it_would(first: str, padded: bool,
                                                             later: list[tuple[str, bool, str]]) -> None:
    """Chunks that differ from the learned one only in their text (and, from OpenAI, in the random padding of
    stream obfuscation) take the fast path; any other difference (a finish reason, usage, another field, other
    spacing, the key twice) is parsed: the events are the same."""
    def pad(text: str) -> dict[str, str]:
        return {"obfuscation": text[::-1] + "~"} if padded else {}

    datas = [chunk(first, **pad(first))]
    for text, ascii_only, shape in later:
        if shape == "plain":
            datas.append(chunk(text, ensure_ascii=ascii_only, **pad(text)))
        elif shape == "finish":
            datas.append(chunk(text, finish_reason="length"))
        elif shape == "usage":
            datas.append(chunk(text, usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}))
        elif shape == "extra":
            datas.append(chunk(text, obfuscation=text))
        elif shape == "other":
            datas.append(chunk(text, system_fingerprint=text, **pad(text)))
        elif shape == "spaced":
            datas.append(chunk(text, **pad(text)).replace('"content":', '"content" :  '))
        else:
            datas.append(chunk(text, **pad(text)).replace('"content":', '"content":"x","content":'))
    datas.append(chunk(None, finish_reason="stop"))
    assert translated(datas, learn=True) == translated(datas, learn=False)


def test_the_slot_is_learned_where_the_text_really_is() -> None:
    data = chunk("hi").replace('"content":', '"content":"shadowed","content":')
    slot = TextSlot.learn(data, json_object(data), ("choices", 0, "delta", "content"), "hi")
    assert slot is not None and slot.text_of(data.replace('"hi"', '"h\\u00e9\\"y"')) == 'h\u00e9"y'
    assert slot.text_of(data.replace('"hi"', '"a","content":"b"')) is None  # more than one string between
    assert slot.text_of(data.replace('"hi"', '"unterminated')) is None
    assert TextSlot.learn(data, json_object(data), ("choices", 0, "delta", "content"), "shadowed") is None


def test_chunks_padded_by_stream_obfuscation_are_parsed_once_then_read_by_the_slot() -> None:
    """OpenAI adds ``"obfuscation"``, random characters of random length, to every chunk by default."""
    translator = ChunkTranslator(Target("p", "openai", "m"))
    lessons = translator.lessons
    pieces = [f"t{index} " for index in range(100)]
    datas = [chunk(piece, obfuscation="x" * (index % 7) + str(index * 7919)) for index, piece in enumerate(pieces)]
    events = [event for data in datas for event in translator.feed(SSEEvent("message", data))]
    assert texts_of(events) == pieces
    assert translator.slot is not None and translator.lessons == lessons - 1  # learned from the first alone


def test_a_stream_of_plain_chunks_is_parsed_once_then_read_by_the_slot() -> None:
    translator = ChunkTranslator(Target("p", "openai", "m"))
    lessons = translator.lessons
    events = [event for index in range(100) for event in translator.feed(SSEEvent("message", chunk(f"t{index} ")))]
    assert "".join(texts_of(events)) == "".join(f"t{index} " for index in range(100))
    assert translator.slot is not None and translator.lessons == lessons - 1  # learned from the first alone
    assert translator.received == len("".join(texts_of(events)))


def anthropic_delta(text: str, index: int = 0) -> SSEEvent:
    return SSEEvent("content_block_delta", json.dumps(
        {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}}))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text(), st.integers(0, 2), st.booleans()), max_size=8))
def test_anthropic_text_deltas_read_by_the_slot_as_parsing_would(deltas: list[tuple[str, int, bool]]) -> None:
    """Deltas that differ from the learned one only in their text take the fast path; another block index or
    another delta type is parsed: the events are the same either way."""
    from llmswitch_anthropic.wire import LESSONS, EventTranslator

    events = [anthropic_delta("first")]
    for text, index, thinking in deltas:
        event = anthropic_delta(text, index)
        events.append(SSEEvent(event.event, event.data.replace("text_delta", "thinking_delta")) if thinking else event)

    def read(learn: bool) -> list[StreamEvent]:
        translator = EventTranslator(Target("p", "anthropic", "m"))
        if not learn:
            translator.lessons = 0
        return [out for event in events for out in translator.feed(event)]

    assert read(learn=True) == read(learn=False)
    taught = EventTranslator(Target("p", "anthropic", "m"))
    for index in range(50):
        taught.feed(anthropic_delta(f"t{index}"))
    assert taught.slot is not None and taught.lessons == LESSONS - 1  # learned from the first, the rest by the slot


def counted_batches(fed: list[str], by_slot: list[str]) -> list[list[StreamEvent]]:
    """The lists ``kit.astream_batches`` makes of profile 'up''s answer, noting the data of each event fed to
    the translator one by one in ``fed`` and each text read whole (kit.SSEDecoder.slot_texts) in ``by_slot``."""
    resolved = AsyncClient().resolve("up")

    class Counting(ChunkTranslator):
        __slots__ = ()

        def feed(self, event: SSEEvent) -> tuple[StreamEvent, ...]:
            fed.append(event.data)
            return super().feed(event)

        def read_by_slot(self, texts: list[str]) -> None:
            by_slot.extend(texts)
            super().read_by_slot(texts)

    async def main() -> list[list[StreamEvent]]:
        call = chat_call(resolved.target, resolved.request("count"), stream=True)
        return [list(batch) async for batch in kit.astream_batches(call, kit.SSEDecoder("the server"),
                                                                   Counting(resolved.target))]

    return asyncio.run(main())


def test_each_event_is_translated_once_when_reads_come_one_at_a_time(upstream: LocalServer) -> None:
    """A paced server: the reads before the first text hold none (the role chunk alone)."""
    upstream.state.options.update(tokens=3, interval=0.02)
    fed: list[str] = []
    lists = counted_batches(fed, fed)
    assert len(fed) == len(set(fed)) == 7  # the role chunk, three tokens, the finish, the usage, [DONE]
    assert fed[2:4] == ["w1 ", "w2 "]  # once the first text taught the slot, text reads are read whole
    assert [texts_of(batch) for batch in lists if texts_of(batch)] == [["w0 "], ["w1 "], ["w2 "]]
    assert sum(isinstance(event, StreamEnd) for batch in lists for event in batch) == 1


def test_a_first_read_of_many_events_is_decoded_one_by_one_only_up_to_its_first_text(
        upstream: LocalServer) -> None:
    """A fast server's first read holds hundreds of events: only its first part (kit.calls.FIRST_TEXT_PART) is
    decoded event by event to find the first text, which goes out alone at once; the rest of that read is read
    whole by the slot the first text taught, in steps that double (a relay's client has the first of them while
    the next is decoded), and every text arrives once, in order."""
    from llmswitch.kit.calls import FIRST_TEXT_PART

    upstream.state.options.update(tokens=400, batch=400)  # one HTTP chunk of 400 events: one read
    fed: list[str] = []
    by_slot: list[str] = []
    lists = counted_batches(fed, by_slot)
    event_size = len(chunk("w100 "))
    assert len(fed) < FIRST_TEXT_PART // event_size + 8, len(fed)  # the first part, and the answer's end
    assert len(by_slot) > 350
    assert texts_of(lists[0]) == ["w0 "]  # the first text alone, at once
    sizes = [len(texts_of(batch)) for batch in lists[2:6]]
    assert sizes[0] <= FIRST_TEXT_PART // event_size + 1 and sizes == sorted(sizes) and sizes[-1] > 2 * sizes[0]
    assert "".join(text for batch in lists for text in texts_of(batch)) == "".join(words(400))


def test_streams_one_after_another_reuse_one_connection(upstream: LocalServer) -> None:
    """The end of a finished stream's body is read, so its connection goes back to the pool: a relay making
    call after call (``serve``) does not pay a new connection, and the time it takes, per answer."""
    upstream.state.options.update(tokens=200)
    resolved = AsyncClient().resolve("up")

    async def main() -> list[str]:
        texts = []
        for _ in range(3):
            result = resolved.astream(resolved.request("count"))
            async for _batch in result.batches():
                pass
            texts.append(result.text)
        return texts

    assert asyncio.run(main()) == ["".join(words(200))] * 3
    ports = [request.client_port for request in upstream.state.requests]
    assert len(ports) == 3 and len(set(ports)) == 1, ports


def test_a_body_held_open_after_done_does_not_hold_the_answer(upstream: LocalServer) -> None:
    """A server that sends [DONE] and then keeps its body open (a slow proxy) is not waited for: the stream
    ends at once with everything, and the next call still gets its answer (on a new connection)."""
    import time

    upstream.state.options.update(tokens=20, hold_open=3.0)
    started = time.monotonic()
    result, lists = in_lists()
    assert time.monotonic() - started < 1.5
    assert result.text == "".join(words(20)) and result.error is None and isinstance(lists[-1][-1], StreamEnd)
    upstream.state.options.update(hold_open=0)
    assert in_lists()[0].text == "".join(words(20))


# ---- whole reads of text events (kit.SSEDecoder.slot_texts) ------------------------------------------------

TRICKY = st.text(alphabet=st.sampled_from(['"', "\\", "u", "0", "0", "a", "\u00e9", "\u2028", "\x01", "\t", "/",
                                           " ", "n", "\r", "}"]), max_size=8)
EVENT_SHAPES = st.one_of(
    st.tuples(st.just("text"), st.text(), st.booleans()),  # the learned event with another text in it
    st.tuples(st.just("raw"), TRICKY, st.booleans()),  # the learned event around anything at all
    st.tuples(st.sampled_from(["comment", "no space", "crlf", "other"]), st.text(max_size=4), st.booleans()),
)


def framed(event: str, data: str, line_end: str = "\n", space: str = " ") -> str:
    head = "" if event == "message" else f"event: {event}{line_end}"
    return f"{head}data:{space}{data}{line_end}{line_end}"


def sse_body(protocol: str, shapes: list[tuple[str, str, bool]]) -> tuple[str, str]:
    """An event stream of ``protocol`` (its first text teaches the slot, then the shapes), and the event type
    its text events have."""
    if protocol == "openai":
        event, data_of = "message", lambda text, ascii_only: chunk(text, ensure_ascii=ascii_only)
        ending = framed(event, chunk(None, finish_reason="stop")) + framed(event, "[DONE]")
    else:
        event = "content_block_delta"
        data_of = lambda text, ascii_only: json.dumps(  # noqa: E731
            {"type": event, "index": 0, "delta": {"type": "text_delta", "text": text}}, ensure_ascii=ascii_only)
        ending = framed("message_stop", '{"type": "message_stop"}')
    body = framed(event, data_of("first", True))
    for shape, text, flag in shapes:
        data = data_of(text, flag)
        if shape == "raw":
            data = data_of("\ufffe", True).replace('"\\ufffe"', '"' + text + '"')
            body += framed(event, data)
        elif shape == "comment":
            body += f": {text}\n\n"
        elif shape == "no space":
            body += framed(event, data, space="")
        elif shape == "crlf":
            body += framed(event, data, line_end="\r\n")
        elif shape == "other":
            body += framed(event, json.dumps({"other": text}))
        else:
            body += framed(event, data)
    return body + ending, event


def translator_for(protocol: str, learn: bool) -> Any:
    from llmswitch_anthropic.wire import EventTranslator

    translator = (ChunkTranslator if protocol == "openai" else EventTranslator)(Target("p", protocol, "m"))
    if not learn:
        translator.lessons = 0  # every event parsed: what reading whole reads must agree with
    return translator


def events_of_reads(protocol: str, reads: list[bytes], whole_reads: bool) -> tuple[list[Any], str | None]:
    """The events of the reads as the kit's stream loops make them (whole reads by the slot when they can be),
    or with every event parsed; a failure ends them, as its message."""
    from llmswitch.kit.calls import _slot_reader

    decoder, translator = kit.SSEDecoder("the server"), translator_for(protocol, learn=whole_reads)
    read_by_slot = _slot_reader(decoder, translator) if whole_reads else None
    events: list[Any] = []
    try:
        for read in reads:
            slot_read = read_by_slot(read) if read_by_slot is not None else None
            if slot_read is not None:
                texts, items = slot_read
                events.extend(map(TextDelta, texts))
            else:
                items = decoder.feed(read)
            for item in items:
                events.extend(translator.feed(item))
        for item in decoder.close():
            events.extend(translator.feed(item))
        events.extend(translator.close())
    except Exception as error:  # noqa: BLE001 - the failure is part of what is compared
        return events, str(error)
    return events, None


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["openai", "anthropic"]), st.lists(EVENT_SHAPES, max_size=12),
       st.lists(st.integers(0, 4000), max_size=6), st.booleans())
def test_whole_reads_give_the_events_parsing_each_would(protocol: str, shapes: list[tuple[str, str, bool]],
                                                        cuts: list[int], at_events: bool) -> None:
    """A stream cut into reads anywhere (inside an event, a CRLF pair, a character) or at event ends (what
    servers do): reading whole reads with the slot gives the same events, and the same failure after the
    same events, as parsing every event. The texts hold quotes, backslashes, escapes JSON has and has not,
    control characters, line separators and characters outside ASCII."""
    body, _event = sse_body(protocol, shapes)
    raw = body.encode()
    if at_events:  # cut only where an event ends, so that most reads are whole events
        ends = [index + 2 for index in range(len(raw)) if raw[index : index + 2] == b"\n\n"]
        cuts = [ends[cut % len(ends)] for cut in cuts]
    points = sorted({cut % (len(raw) + 1) for cut in cuts})
    reads = [raw[start:end] for start, end in zip([0, *points], [*points, len(raw)], strict=True) if end > start]
    assert events_of_reads(protocol, reads, whole_reads=True) == events_of_reads(protocol, reads, whole_reads=False)


def test_a_read_that_begins_with_text_events_is_read_whole_up_to_the_first_other_event() -> None:
    """What the property above compares is really two paths: the run of learned events a read begins with comes
    back as texts (empty texts left out), with the events after it as feed makes them (an answer's end, a
    comment, a text event after those); a read that begins with anything else, or that holds no whole event,
    is None."""
    data = chunk("x")
    slot = TextSlot.learn(data, json_object(data), CONTENT_PATH, "x")
    assert slot is not None
    decoder = kit.SSEDecoder("the server")
    decoder.feed(framed("message", data).encode())  # the first read, fed as usual
    texts = ["a", 'q"uote', "back\\slash", "\u00e9\n\u2028", "", "\x01"]
    read = "".join(framed("message", chunk(text, ensure_ascii=index % 2 == 0)) for index, text in enumerate(texts))
    assert decoder.slot_texts(read.encode(), slot) == ([text for text in texts if text], [])
    finish = chunk(None, finish_reason="stop")
    ending = framed("message", finish) + ": keep-alive\n\n" + framed("message", "[DONE]")
    assert decoder.slot_texts((read + ending).encode(), slot) == (
        [text for text in texts if text], [SSEEvent("message", finish), SSEEvent("message", "[DONE]")])
    again = framed("message", chunk("b"))  # a text event after another one is fed, as the rest of the read is
    assert decoder.slot_texts((read + ending + again + again[:5]).encode(), slot) == (
        [text for text in texts if text], [SSEEvent("message", finish), SSEEvent("message", "[DONE]"),
                                           SSEEvent("message", chunk("b"))])
    assert decoder.slot_texts(again[5:].encode(), slot) == (["b"], [])  # the event it held, read whole
    assert decoder.slot_texts((ending + read).encode(), slot) is None
    assert decoder.slot_texts(framed("message", data.replace('"x"', '"\\x"')).encode(), slot) is None
    assert decoder.slot_texts(read.encode()[:-1], slot) == (texts[:4], [])  # the events it ends; the last is held
    assert decoder.slot_texts(b"\n", slot) == (["\x01"], [])  # the blank line that ends it
    decoder.feed(b"data: {")  # now in the middle of an event that is no text event: nothing is read whole
    assert decoder.slot_texts(read.encode(), slot) is None


def test_a_read_that_ends_inside_an_event_is_read_whole_up_to_it_and_the_next_read_with_the_rest() -> None:
    """A server's write often reaches the reader in two reads, cut anywhere (inside a character too): the
    events each read ends are read whole, the part of an event a read ends in is held for the next one, and
    an event line held across reads must still fit ``max_line``."""
    data = chunk("x")
    slot = TextSlot.learn(data, json_object(data), CONTENT_PATH, "x")
    assert slot is not None
    texts = [f"w\u00e9{index} " for index in range(6)]
    raw = "".join(framed("message", chunk(text, ensure_ascii=False)) for text in texts).encode()
    for cut in range(1, len(raw)):
        decoder = kit.SSEDecoder("the server")
        decoder.feed(framed("message", data).encode())
        first = decoder.slot_texts(raw[:cut], slot)
        ended = raw[:cut].count(b"\n\n")
        assert first == ((texts[:ended], []) if ended else None), cut
        if first is None:
            assert decoder.feed(raw[:cut]) == []
        assert decoder.slot_texts(raw[cut:], slot) == (texts[ended:], []), cut
    tight = kit.SSEDecoder("the server", max_line=len(framed("message", data)) + 4)
    tight.feed(framed("message", data).encode())
    one = framed("message", chunk("y")).encode()
    assert tight.slot_texts(one + one[:-6], slot) is None  # the event it holds would outgrow a line: fed


def test_a_decoder_with_a_failure_to_raise_reads_nothing_whole() -> None:
    """An event that grew past ``max_event`` is raised by the next feed, never skipped by a whole read."""
    data = chunk("x")
    slot = TextSlot.learn(data, json_object(data), CONTENT_PATH, "x")
    assert slot is not None
    decoder = kit.SSEDecoder("the server", max_line=1000, max_event=1000)
    decoder.feed(framed("message", data).encode())
    read = framed("message", chunk("y")).encode()
    assert decoder.slot_texts(read, slot) == (["y"], [])
    with pytest.raises(Exception, match="one event longer"):
        decoder.feed(b"data: " + b"z" * 600 + b"\ndata: " + b"z" * 600 + b"\n")
    assert decoder.slot_texts(read, slot) is None
    with pytest.raises(Exception, match="one event longer"):
        decoder.feed(read)
