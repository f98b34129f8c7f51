"""Generation: ``model.generate`` in a worker thread, its text read from transformers' ``TextIteratorStreamer``.

``generate`` blocks until the answer is complete, so it runs in a worker and pushes text into the streamer's
queue as tokens decode; this generator hands the pieces on. A ``StoppingCriteria`` watches an event that is
set when this generator is closed (Ctrl-C in the CLI, Esc in the TUI) or when a stop sequence appears:
``generate`` checks it after every token, so generation ends within a token and the core keeps the text so
far. The ``finally`` block waits for the worker, so the model's lock is free for the next turn.

Text is shaped for a chat answer by the toolkit's :class:`~llmswitch.kit.local.AnswerShaper`, as in every
in-process backend.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from llmswitch.kit import (
    AnswerShaper,
    BackendError,
    InvalidOptionError,
    LLMSwitchError,
    Request,
    Response,
    StreamEnd,
    StreamEvent,
    TextDelta,
    UnsupportedOptionError,
    Usage,
    UsageEvent,
)
from llmswitch_transformers.prompts import Prompt, render
from llmswitch_transformers.runtime import LoadedModel, is_out_of_memory, libraries, memory_remedy

# When a request sets no max_tokens: a base model that rambles would otherwise run to the context's end.
DEFAULT_MAX_TOKENS = 512
# Generation settings beyond the common ones, by name, with the check each value must pass.
GENERATION_EXTRAS: Mapping[str, tuple[type, str]] = {
    "repetition_penalty": (float, "a number above 0 (1.0 = off, 1.1 = a light penalty)"),
    "no_repeat_ngram_size": (int, "a whole number of tokens, 0 = off"),
    "min_p": (float, "a number from 0 to 1"),
}


@dataclass(frozen=True)
class Plan:
    """Everything one generation needs, worked out before the model is locked."""

    prompt: Prompt
    stop: tuple[str, ...]
    max_new_tokens: int
    options: dict[str, Any] = field(default_factory=dict)  # sampling settings for generate()
    seed: int | None = None


def plan(model: LoadedModel, request: Request, seed: int | None = None) -> Plan:
    """Check the settings, render and tokenize the prompt, and check it fits the context."""
    options: dict[str, Any] = {}
    for name, value in request.extras.items():
        if name not in GENERATION_EXTRAS:
            raise UnsupportedOptionError(
                f"the transformers backend has no generation setting {name!r}",
                remedy="its generation settings are temperature, top_p, top_k, max_tokens, stop, seed and "
                + ", ".join(GENERATION_EXTRAS))
        options[name] = _checked_extra(name, value)
    prompt = render(model.tokenizer, model.settings.chat_format, request)
    used = len(prompt.token_ids)
    limit = model.context_length
    if limit is not None and used >= limit:
        raise BackendError(
            f"the conversation takes {used} tokens, more than this model's context window ({limit})",
            remedy="start a new conversation, or shorten the system prompt", backend="transformers")
    wanted = request.max_tokens if request.max_tokens and request.max_tokens > 0 else DEFAULT_MAX_TOKENS
    max_new_tokens = min(wanted, limit - used) if limit is not None else wanted
    if request.temperature is not None and request.temperature <= 0:
        options["do_sample"] = False  # greedy: the same answer every time
    elif request.temperature is not None or request.top_p is not None or request.top_k is not None:
        options["do_sample"] = True
        for name in ("temperature", "top_p", "top_k"):
            value = getattr(request, name)
            if value is not None:
                options[name] = value
    # Left unset, sampling follows the model's own generation_config (what its authors tuned it for).
    stop = tuple(dict.fromkeys(s for s in (*prompt.stop, *request.stop) if s))
    chosen_seed = request.seed if request.seed is not None else seed
    return Plan(prompt, stop, max_new_tokens, options, chosen_seed)


def _checked_extra(name: str, value: Any) -> Any:
    kind, expected = GENERATION_EXTRAS[name]
    try:
        number = kind(value)
    except (TypeError, ValueError):
        number = None
    valid = number is not None and not isinstance(value, bool) and (
        (name == "repetition_penalty" and number > 0) or (name == "no_repeat_ngram_size" and number >= 0)
        or (name == "min_p" and 0 <= number <= 1))
    if not valid:
        raise InvalidOptionError(f"{name} must be {expected}, not {value!r}")
    return number


@dataclass
class _Worker:
    """The thread running ``generate`` and what it left behind."""

    thread: threading.Thread
    cancel: threading.Event
    streamer: Any
    sequences: Any = None
    error: BaseException | None = None


def stream(model: LoadedModel, request: Request, seed: int | None = None) -> Iterator[StreamEvent]:
    """Generate under the model's lock, yielding text as it decodes; see the module docstring."""
    job = plan(model, request, seed)
    with model.lock:
        worker = _start(model, job)
        try:
            for text in worker.streamer:
                yield TextDelta(text)
        finally:
            worker.cancel.set()
            worker.thread.join()
    if worker.error is not None:
        raise _generation_error(worker.error, model)
    input_tokens = len(job.prompt.token_ids)
    generated = int(worker.sequences.shape[1]) - input_tokens if worker.sequences is not None else 0
    if worker.streamer.stopped_by_sequence:
        finish_reason = "stop"
    else:
        finish_reason = "length" if generated >= job.max_new_tokens else "stop"
    yield UsageEvent(Usage(input_tokens=input_tokens, output_tokens=generated))
    yield StreamEnd(finish_reason, model.settings.model_name)


def _start(model: LoadedModel, job: Plan) -> _Worker:
    torch, transformers = libraries()
    cancel = threading.Event()

    class Cancelled(transformers.StoppingCriteria):  # type: ignore[misc,name-defined]
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.full((input_ids.shape[0],), cancel.is_set(), dtype=torch.bool, device=input_ids.device)

    tokenizer = model.tokenizer
    streamer = _streamer_type(transformers)(tokenizer, AnswerShaper(job.stop), cancel)
    input_ids = torch.tensor([job.prompt.token_ids], device=model.model.device)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    options = {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "max_new_tokens": job.max_new_tokens,
        "streamer": streamer,
        "stopping_criteria": transformers.StoppingCriteriaList([Cancelled()]),
        **({"pad_token_id": pad} if pad is not None else {}),
        **job.options,
    }
    threads = model.settings.threads

    def run() -> None:
        try:
            torch.set_num_threads(threads)  # per process, but set where it is used: a thread may start lazily
            if job.seed is not None:
                torch.manual_seed(job.seed)
            with torch.inference_mode():
                worker.sequences = model.model.generate(**options)
        except BaseException as exc:  # reported by the consumer, in its thread
            worker.error = exc
        finally:
            streamer.end()  # never leave the consumer waiting on the queue

    worker = _Worker(threading.Thread(target=run, name="llmswitch-transformers-generate", daemon=True), cancel,
                     streamer)
    worker.thread.start()
    return worker


_STREAMER: type | None = None


def _streamer_type(transformers: Any) -> type:
    """transformers' ``TextIteratorStreamer``, decoding every token as it comes, with the answer's shaping.

    The stock streamer shows text a word at a time; this one shows each token's text as soon as it is whole
    (the incremental decoding that text-generation-inference uses: decode a short window of recent tokens and
    keep what is new, so tokenizers that put the space inside the next token decode right). Shaping and stop
    sequences run here, in the generating thread, so a stop sets the cancel flag before ``generate`` checks
    its stopping criteria for that same token: generation ends on the token that completed the stop sequence.
    """
    global _STREAMER
    if _STREAMER is not None:
        return _STREAMER

    class AnswerStreamer(transformers.TextIteratorStreamer):  # type: ignore[misc,name-defined]
        def __init__(self, tokenizer: Any, answer: AnswerShaper, cancel: threading.Event) -> None:
            super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
            self.answer, self.cancel = answer, cancel
            self.tokens: list[int] = []
            self.prefix_offset = self.read_offset = 0
            self.stopped_by_sequence = self.ended = False
            self.prompt_pending = True  # generate() first hands over the prompt itself

        def put(self, value: Any) -> None:
            if self.prompt_pending:
                self.prompt_pending = False
                return
            if self.ended or self.stopped_by_sequence:
                return
            self.tokens.extend(int(token) for token in value.reshape(-1).tolist())
            seen = self._decode(self.prefix_offset, self.read_offset)
            text = self._decode(self.prefix_offset, len(self.tokens))
            if len(text) > len(seen) and not text.endswith("\ufffd"):  # not half a UTF-8 character
                self.prefix_offset, self.read_offset = self.read_offset, len(self.tokens)
                self._show(text[len(seen):])

        def end(self) -> None:
            if self.ended:
                return
            self.ended = True
            if not self.stopped_by_sequence:
                tail = self._decode(self.prefix_offset, len(self.tokens))[
                    len(self._decode(self.prefix_offset, self.read_offset)):]
                self._show(tail)
                rest = self.answer.finish()
                if rest:
                    self.text_queue.put(rest)
            self.text_queue.put(self.stop_signal)

        def _decode(self, start: int, stop: int) -> str:
            return str(self.tokenizer.decode(self.tokens[start:stop], skip_special_tokens=True))

        def _show(self, piece: str) -> None:
            text, stopped = self.answer.feed(piece)
            if text:
                self.text_queue.put(text)
            if stopped:
                self.stopped_by_sequence = True
                self.cancel.set()

    _STREAMER = AnswerStreamer
    return AnswerStreamer


def _generation_error(error: BaseException, model: LoadedModel) -> LLMSwitchError:
    if isinstance(error, LLMSwitchError):
        return error
    text = f"{type(error).__name__}: {error}"
    if is_out_of_memory(text.lower()):
        return BackendError(f"ran out of memory while generating on {model.device}: {text.splitlines()[0]}",
                            remedy=memory_remedy(model.settings), backend="transformers")
    return BackendError(f"transformers failed while generating: {text.splitlines()[0][:400]}",
                        remedy="try again; if it persists, run `llmswitch doctor` on this profile",
                        backend="transformers")


def complete(model: LoadedModel, request: Request, seed: int | None = None) -> Response:
    """The whole answer at once (the same loop as :func:`stream`)."""
    started = time.perf_counter()
    parts: list[str] = []
    usage, finish_reason = Usage(), None
    for event in stream(model, request, seed):
        if isinstance(event, TextDelta):
            parts.append(event.text)
        elif isinstance(event, UsageEvent):
            usage = event.usage
        elif isinstance(event, StreamEnd):
            finish_reason = event.finish_reason
    return Response("".join(parts), finish_reason, usage, model.settings.model_name,
                    time.perf_counter() - started)
