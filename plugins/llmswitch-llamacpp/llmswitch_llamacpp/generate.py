"""Generation: a request becomes prompt tokens, then a stream of text pieces as tokens are sampled.

The loop runs on ``Llama.generate`` (token by token) rather than ``create_completion`` so that it can
count exactly the tokens it generated, decode each token once (``create_completion`` re-decodes the whole
answer at every token), and stop the moment its consumer closes it: every token is one ``yield``, so
``close()`` (Ctrl-C in the CLI, a cancel in the TUI) ends generation before the next token is computed, and
the ``finally`` block releases the model for the next turn.

Text is shaped for a chat answer: leading whitespace is dropped, trailing whitespace is held back until more
text follows (so an answer never ends in a stray newline), and text that might be the start of a stop
sequence is held back until it is clear that it is not.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from llmswitch.kit import (
    AnswerShaper,
    BackendError,
    BadResponseError,
    Request,
    Response,
    StreamEnd,
    StreamEvent,
    Target,
    TextDelta,
    UnsupportedOptionError,
    Usage,
    UsageEvent,
)
from llmswitch_llamacpp.embedded import DEMO_DEFAULTS
from llmswitch_llamacpp.prompts import Prompt, conversation, render
from llmswitch_llamacpp.runtime import LoadedModel, llama_cpp_module
from llmswitch_llamacpp.settings import LoadSettings

# When a request sets no max_tokens: a small base model that rambles would otherwise fill the whole context.
DEFAULT_MAX_TOKENS = 512
# llama.cpp's own sampling defaults (the llama-cli and llama-cpp-python ones), used for settings left unset.
DEFAULT_SAMPLING = {"temperature": 0.8, "top_p": 0.95, "top_k": 40, "min_p": 0.05, "repeat_penalty": 1.0}
GENERATION_EXTRAS = ("repeat_penalty",)
RANDOM_SEED = 0xFFFFFFFF  # LLAMA_DEFAULT_SEED: llama.cpp picks a random seed


@dataclass(frozen=True)
class Plan:
    """Everything one generation needs, worked out before the model is locked."""

    prompt: Prompt
    tokens: list[int]
    stop: tuple[str, ...]
    max_tokens: int
    temperature: float
    top_p: float
    top_k: int
    min_p: float
    repeat_penalty: float
    seed: int


def prompt_for(model: LoadedModel, settings: LoadSettings, request: Request) -> tuple[Prompt, list[int]]:
    """The rendered prompt and its tokens, exactly as they will be fed to the model."""
    choice = model.format_for(settings.chat_format)
    prompt = render(choice, conversation(request.messages, request.system),
                    bos_token=model.bos_token, eos_token=model.eos_token)
    return prompt, model.tokenize(prompt.text, add_bos=prompt.add_bos)


def plan(model: LoadedModel, settings: LoadSettings, target: Target, request: Request) -> Plan:
    """Check the settings against the backend and the context window; render and tokenize the prompt."""
    unknown = sorted(set(request.extras) - set(GENERATION_EXTRAS))
    if unknown:
        raise UnsupportedOptionError(
            f"the llamacpp backend has no generation setting {', '.join(repr(name) for name in unknown)}",
            remedy="its generation settings are temperature, top_p, top_k, max_tokens, stop, seed and "
            + ", ".join(GENERATION_EXTRAS),
        )
    prompt, tokens = prompt_for(model, settings, request)
    n_ctx = model.n_ctx
    if len(tokens) >= n_ctx:
        raise BackendError(
            f"the conversation takes {len(tokens)} tokens, more than this model's context window "
            f"(n_ctx = {n_ctx})",
            remedy="start a new conversation, or raise the profile's n_ctx (e.g. --set n_ctx=8192) if the model "
            "supports it",
            backend="llamacpp",
        )
    seed = request.seed if request.seed is not None else target.option("seed")
    stop = tuple(dict.fromkeys(s for s in (*prompt.stop, *request.stop) if s))

    defaults = {**DEFAULT_SAMPLING, "max_tokens": DEFAULT_MAX_TOKENS, **(DEMO_DEFAULTS if settings.demo else {})}
    wanted = request.max_tokens if request.max_tokens and request.max_tokens > 0 else int(defaults["max_tokens"])

    def setting(name: str, value: Any) -> Any:
        return defaults[name] if value is None else value

    return Plan(
        prompt=prompt,
        tokens=tokens,
        stop=stop,
        max_tokens=min(wanted, n_ctx - len(tokens)),
        temperature=float(setting("temperature", request.temperature)),
        top_p=float(setting("top_p", request.top_p)),
        top_k=int(setting("top_k", request.top_k)),
        min_p=float(defaults["min_p"]),
        repeat_penalty=float(setting("repeat_penalty", request.extras.get("repeat_penalty"))),
        seed=int(seed) if seed is not None else RANDOM_SEED,
    )


def stream(model: LoadedModel, settings: LoadSettings, target: Target, request: Request) -> Iterator[StreamEvent]:
    """Generate under the model's lock, yielding text as tokens arrive; see the module docstring."""
    job = plan(model, settings, target, request)
    llama = model.llama
    llama_cpp = llama_cpp_module()
    vocab = llama._model.vocab
    answer = AnswerShaper(job.stop)
    generated = 0
    finish_reason = "length"
    stopped_by_sequence = False
    with model.lock:
        tokens = None
        try:
            _evaluate_all_but_last(llama, job.tokens)
            llama.set_seed(job.seed)
            tokens = llama.generate(
                job.tokens,
                top_k=job.top_k,
                top_p=job.top_p,
                min_p=job.min_p,
                temp=job.temperature,
                repeat_penalty=job.repeat_penalty,
            )
            while generated < job.max_tokens:
                try:
                    token = next(tokens)
                except StopIteration:
                    break
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    finish_reason = "stop"
                    break
                generated += 1
                text, stopped = answer.feed(llama.detokenize([token]))
                if text:
                    yield TextDelta(text)
                if stopped:
                    finish_reason, stopped_by_sequence = "stop", True
                    break
            rest = "" if stopped_by_sequence else answer.finish()
            if rest:
                yield TextDelta(rest)
        except RuntimeError as exc:  # llama_decode failed: the KV cache is full or memory ran out
            raise BadResponseError(
                f"llama.cpp failed while generating: {exc}",
                remedy="start a new conversation, or use a smaller n_ctx / fewer GPU layers if memory is short",
                backend="llamacpp",
            ) from None
        finally:
            if tokens is not None:
                tokens.close()
    yield UsageEvent(Usage(input_tokens=len(job.tokens), output_tokens=generated))
    yield StreamEnd(finish_reason, settings.model_name)


def _evaluate_all_but_last(llama: Any, tokens: list[int]) -> None:
    """Bring the KV cache up to the prompt's last token, reusing what an earlier turn left there.

    ``Llama.generate`` reuses the longest cached prefix and evaluates the rest, so the last prompt token is
    evaluated alone when the same conversation comes back, but inside a larger batch on a fresh start, and
    llama.cpp's batched and single-token kernels round differently: the same request at temperature 0 could
    answer differently the second time. Evaluating all but the last token here means the last one is always
    evaluated alone, and a repeated request (same seed) gives the same answer. It costs one small extra batch.
    """
    cached = 0
    for previous, wanted in zip(llama.input_ids[: llama.n_tokens].tolist(), tokens[:-1], strict=False):
        if previous != wanted:
            break
        cached += 1
    if cached < len(tokens) - 1:
        llama.n_tokens = cached
        llama.eval(tokens[cached:-1])


def complete(model: LoadedModel, settings: LoadSettings, target: Target, request: Request) -> Response:
    """The whole answer at once (the same loop as :func:`stream`)."""
    started = time.perf_counter()
    parts: list[str] = []
    usage = Usage()
    finish_reason: str | None = None
    for event in stream(model, settings, target, request):
        if isinstance(event, TextDelta):
            parts.append(event.text)
        elif isinstance(event, UsageEvent):
            usage = event.usage
        elif isinstance(event, StreamEnd):
            finish_reason = event.finish_reason
    return Response("".join(parts), finish_reason, usage, settings.model_name, time.perf_counter() - started)
