"""The gateway's text events, built from a pre-encoded template with only each text JSON-escaped (the json
module's C escaper), against the events ``json.dumps`` makes of the whole chunk: the same bytes, for any text
(quotes, backslashes, control characters, line and paragraph separators, characters outside the BMP), in both
protocols; a lone surrogate (a server may send one, escaped) goes out escaped, as valid UTF-8 JSON."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from llmswitch.serve.anthropic_api import AnthropicProtocol
from llmswitch.serve.openai_api import OpenAIProtocol

TEXTS = st.lists(st.one_of(st.text(), st.text(alphabet=st.sampled_from(
    ['"', "\\", "\n", "\r", "\t", "\x00", "\x1f", "\x7f", "\u2028", "\u2029", "\ud800", "\U0001f600", "\u00e9", "/"]))),
    max_size=8)


def as_sent(events: list[dict[str, Any]], framing: bytes) -> bytes:
    """What json.dumps makes of each event, framed; escaped to ASCII when a text holds a lone surrogate."""
    def dumped(payload: dict[str, Any]) -> bytes:
        try:
            return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        except UnicodeEncodeError:
            return json.dumps(payload, separators=(",", ":")).encode()

    return b"".join(framing + dumped(event) + b"\n\n" for event in events)


def same_events(sent: bytes, expected: bytes) -> None:
    if sent != expected:  # only where a lone surrogate made a batch escape its texts: the same JSON
        assert sent.split(b"\n\n")[:-1] != [] and [
            json.loads(line.split(b"data: ", 1)[1]) for line in sent.split(b"\n\n")[:-1]] == [
            json.loads(line.split(b"data: ", 1)[1]) for line in expected.split(b"\n\n")[:-1]]
    sent.decode("utf-8")  # never bytes a client cannot decode


@settings(max_examples=300, deadline=None)
@given(TEXTS, st.sampled_from(["up", 'we"ird\\model\u00e9']))
def test_openai_text_chunks_are_what_json_dumps_makes(texts: list[str], model: str) -> None:
    protocol = OpenAIProtocol(model)
    events = [{"id": protocol.id, "object": "chat.completion.chunk", "created": protocol.created, "model": model,
               "choices": [{"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": None}]}
              for text in texts]
    sent = protocol.stream_texts(texts)
    same_events(sent, as_sent(events, b"data: "))
    if not any("\ud800" in text for text in texts):
        assert sent == as_sent(events, b"data: ")


@settings(max_examples=300, deadline=None)
@given(TEXTS)
def test_anthropic_text_deltas_are_what_json_dumps_makes(texts: list[str]) -> None:
    protocol = AnthropicProtocol("up")
    events = [{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}
              for text in texts]
    sent = protocol.stream_texts(texts)
    same_events(sent, as_sent(events, b"event: content_block_delta\ndata: "))
    if not any("\ud800" in text for text in texts):
        assert sent == as_sent(events, b"event: content_block_delta\ndata: ")
