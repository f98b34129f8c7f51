"""Properties of the ollama plugin's NDJSON reader, OLLAMA_HOST reading and event translation (no network)."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st
from llmswitch_ollama.host import normalize_base_url
from llmswitch_ollama.wire import LineTranslator

from llmswitch.errors import BadResponseError, ModelNotFoundError
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
