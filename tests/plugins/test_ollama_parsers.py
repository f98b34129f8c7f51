"""Properties of the ollama plugin's NDJSON reader, OLLAMA_HOST reading and event translation (no network)."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llmswitch_ollama.host import normalize_base_url
from llmswitch_ollama.wire import LineTranslator

from llmswitch.errors import BadResponseError, LLMSwitchError, ModelNotFoundError
from llmswitch.types import StreamEnd, Target, TextDelta, UsageEvent

# ---- OLLAMA_HOST -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "url"),
    [
        (None, "http://127.0.0.1:11434"),
        ("", "http://127.0.0.1:11434"),
        ("0.0.0.0", "http://127.0.0.1:11434"),
        ("0.0.0.0:8080", "http://127.0.0.1:8080"),
        (":11435", "http://127.0.0.1:11435"),
        ("gpu-box", "http://gpu-box:11434"),
        ("gpu-box:1234", "http://gpu-box:1234"),
        ("http://gpu-box", "http://gpu-box:80"),
        ("https://ollama.example.com/proxy/", "https://ollama.example.com:443/proxy"),
        ("[::1]:5000", "http://[::1]:5000"),
        ("::1", "http://[::1]:11434"),
        ("http://127.0.0.1:11434/", "http://127.0.0.1:11434"),
        ('"localhost:11434"', "http://localhost:11434"),
        ("host:99999", "http://host:11434"),
    ],
)
def test_ollama_host_is_read_the_way_ollama_reads_it(raw: str | None, url: str) -> None:
    assert normalize_base_url(raw) == url


HOSTS = st.one_of(
    st.from_regex(r"[a-z][a-z0-9-]{0,15}(\.[a-z]{2,5})?", fullmatch=True),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda ip: f"[{ip}]"),
)


@given(st.sampled_from(["", "http://", "https://"]), HOSTS,
       st.one_of(st.none(), st.integers(min_value=1, max_value=65535)), st.sampled_from(["", "/", "/x/y/"]))
def test_every_host_becomes_a_url_with_scheme_and_port(scheme: str, host: str, port: int | None, path: str) -> None:
    raw = f"{scheme}{host}{f':{port}' if port else ''}{path}"
    url = urlsplit(normalize_base_url(raw))
    assert url.scheme in ("http", "https") and url.port is not None and 0 < url.port <= 65535
    assert not normalize_base_url(raw).endswith("/")
    if port:
        assert url.port == port


# ---- event translation -------------------------------------------------------------------------------


TARGET = Target(profile="p", backend="ollama", model="llama3.2", base_url=None, options={"timeout": 5.0})


def chat_line(content: str, done: bool = False, **extra: object) -> str:
    return json.dumps({"model": "llama3.2", "message": {"role": "assistant", "content": content},
                       "done": done, **extra})


def translate(lines: list[str], target: Target) -> list[object]:
    """Drive the translator the way the toolkit does: each line, then the end of the body."""
    translator = LineTranslator(target)
    events = [event for line in lines for event in translator.feed(line)]
    return events + list(translator.close())


@given(st.lists(st.text(min_size=1, max_size=10), max_size=30))
def test_translation_yields_every_piece_then_usage_and_end(pieces: list[str]) -> None:
    lines = [chat_line(piece) for piece in pieces]
    lines.append(chat_line("", True, done_reason="stop", prompt_eval_count=9, eval_count=len(pieces)))
    out = list(translate(lines, TARGET))
    assert [event.text for event in out if isinstance(event, TextDelta)] == pieces
    assert isinstance(out[-2], UsageEvent) and out[-2].usage.input_tokens == 9
    assert out[-1] == StreamEnd("stop", "llama3.2")


def test_odd_but_valid_lines_are_read_and_trailing_garbage_is_not() -> None:
    assert isinstance(list(translate(["  " + chat_line("a", True)], TARGET))[-1], StreamEnd)
    with pytest.raises(BadResponseError, match="not JSON"):
        list(translate([chat_line("a") + " tail"], TARGET))
    # Bytes that are not UTF-8 are a clear error, as on every backend: the toolkit's decoder raises it after
    # the lines before them, so the translator never sees text the model did not write.
    from llmswitch.kit import NDJSONDecoder

    decoder = NDJSONDecoder()
    assert decoder.feed(chat_line("ca").encode() + b'\n{"message": {"content": "f\xe9"}}\n') == [chat_line("ca")]
    with pytest.raises(BadResponseError, match="not UTF-8"):
        decoder.feed(chat_line("", True).encode() + b"\n")


def test_translation_failures() -> None:
    with pytest.raises(ModelNotFoundError, match="pull"):
        list(translate(['{"error": "model \\"llama3.2\\" not found, try pulling it first"}'], TARGET))
    with pytest.raises(BadResponseError, match="not JSON"):
        list(translate(["<html>"], TARGET))
    with pytest.raises(BadResponseError, match="not JSON"):
        list(translate(["[1]"], TARGET))
    with pytest.raises(BadResponseError, match="cut off"):
        list(translate([chat_line("a")], TARGET))


# ---- the fast path (kit.TextSlot with a varying time stamp) -------------------------------------------------


def go_line(content: str, stamp: str = "2025-11-24T00:00:00.5Z", *, ascii_only: bool = False, **extra: object) -> str:
    """A line as Ollama writes it: compact, its own time stamp, ``done`` last."""
    return json.dumps({"model": "llama3.2", "created_at": stamp, "message": {"role": "assistant", "content": content},
                       **extra, "done": False}, separators=(",", ":"), ensure_ascii=ascii_only)


LINE_SHAPES = st.sampled_from(
    ["plain", "plain", "plain", "ascii", "thinking", "role", "extra", "spaced", "twice", "no_time", "number_time",
     "done", "error", "garbage", "generate"])


def shaped(shape: str, text: str, stamp: str) -> str:
    """A line of the given shape: most are the learned one with another text and time; the others differ in
    something the fast path must not skip (and must then leave to the parser)."""
    if shape == "ascii":
        return go_line(text, stamp, ascii_only=True)
    if shape == "thinking":
        return go_line("", stamp).replace('"content":""', f'"content":"","thinking":{json.dumps(text)}')
    if shape == "role":
        return go_line(text, stamp).replace('"assistant"', '"tool"')
    if shape == "extra":
        return go_line(text, stamp, done_reason="stop")
    if shape == "spaced":
        return go_line(text, stamp).replace('"content":', '"content" : ')
    if shape == "twice":  # the text the parser reads is the second one
        return go_line(text, stamp).replace('"content":', '"content":"x","content":')
    if shape == "no_time":
        return go_line(text, stamp).replace(f'"created_at":{json.dumps(stamp, ensure_ascii=False)},', "")
    if shape == "number_time":
        return go_line(text, stamp).replace(f'"created_at":{json.dumps(stamp, ensure_ascii=False)}', '"created_at":7')
    if shape == "done":
        return chat_line(text, True, done_reason="length", prompt_eval_count=3, eval_count=4)
    if shape == "error":
        return json.dumps({"error": f"failed: {text}"})
    if shape == "garbage":
        return go_line(text, stamp)[:-1]
    if shape == "generate":
        return json.dumps({"model": "llama3.2", "created_at": stamp, "response": text, "done": False})
    return go_line(text, stamp)


def outcome(lines: list[str], learn: bool) -> tuple[list[object], object, bool, int]:
    """The events, the error (its type and message) and the translator's state after reading ``lines``."""
    translator = LineTranslator(TARGET)
    if not learn:
        translator.lessons = 0  # never learns: every line is parsed
    events: list[object] = []
    failure: object = None
    try:
        for line in lines:
            events.extend(translator.feed(line))
        events.extend(translator.close())
    except LLMSwitchError as error:
        failure = (type(error), error.message)
    return events, failure, translator.answered, translator.others


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1), st.lists(st.tuples(LINE_SHAPES, st.text(), st.text()), max_size=10), st.booleans())
def test_the_fast_path_reads_every_line_as_parsing_it_would(first: str, later: list[tuple[str, str, str]],
                                                             finish: bool) -> None:
    """Lines that are the learned one with another text and another time stamp are read by the slot; anything
    else (thinking, another role or field, spacing, the key twice, no stamp, a done or error line, garbage) is
    parsed. Either way the events, the failure and the translator's state are those of parsing every line."""
    lines = [go_line(first)] + [shaped(shape, text, stamp) for shape, text, stamp in later]
    if finish:
        lines.append(chat_line("", True, done_reason="stop", prompt_eval_count=9, eval_count=len(lines)))
    assert outcome(lines, learn=True) == outcome(lines, learn=False)


def test_a_stream_of_stamped_lines_is_parsed_once_then_read_by_the_slot() -> None:
    from llmswitch_ollama.wire import LESSONS

    from tests.servers.ollama_server import created_at

    translator = LineTranslator(TARGET)
    pieces = [f"t{index} \u00e9\"\\" for index in range(100)]
    lines = [go_line(piece, created_at(index)) for index, piece in enumerate(pieces)]
    events = [event for line in lines for event in translator.feed(line)]
    assert [event.text for event in events if isinstance(event, TextDelta)] == pieces
    assert translator.slot is not None and translator.lessons == LESSONS - 1  # learned from the first alone
    assert translator.slot.text_of(go_line("next", created_at(10**6))) == "next"
