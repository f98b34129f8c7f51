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
from llmswitch_openai.wire import ChunkTranslator

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


def test_each_event_is_translated_once_when_reads_come_one_at_a_time(upstream: LocalServer) -> None:
    """A paced server: the reads before the first text hold none (the role chunk alone)."""
    upstream.state.options.update(tokens=3, interval=0.02)
    resolved = AsyncClient().resolve("up")
    fed: list[str] = []

    class Counting(ChunkTranslator):
        __slots__ = ()

        def feed(self, event: SSEEvent) -> tuple[StreamEvent, ...]:
            fed.append(event.data)
            return super().feed(event)

    async def main() -> list[list[StreamEvent]]:
        call = chat_call(resolved.target, resolved.request("count"), stream=True)
        return [list(batch) async for batch in kit.astream_batches(call, kit.SSEDecoder("the server"),
                                                                   Counting(resolved.target))]

    lists = asyncio.run(main())
    assert len(fed) == len(set(fed)) == 7  # the role chunk, three tokens, the finish, the usage, [DONE]
    assert [texts_of(batch) for batch in lists if texts_of(batch)] == [["w0 "], ["w1 "], ["w2 "]]
    assert sum(isinstance(event, StreamEnd) for batch in lists for event in batch) == 1
