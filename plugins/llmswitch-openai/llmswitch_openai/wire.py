"""OpenAI's chat-completions wire format: the request body, setting by setting, and the answer back.

Requests: every generation setting is either mapped to a body field or refused with
``UnsupportedOptionError``; nothing is dropped. Answers: a whole ``chat.completion`` (:func:`parse_completion`)
or a stream of ``chat.completion.chunk`` events (:class:`ChunkTranslator`, the state machine the sync and the
async stream both drive). The events are read raw with the toolkit's decoder and ``json_object``: building
the SDK's typed chunk objects costs about ten times as much per token.

OpenAI's own API is stricter than the servers that copy it (no ``top_k``, no
``repetition_penalty``, at most four stop sequences), so those are refused before anything is sent there;
other servers get the fields and decide for themselves.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from llmswitch.kit import (
    BadResponseError,
    InvalidOptionError,
    Request,
    Response,
    SSEEvent,
    StreamEnd,
    StreamEvent,
    Target,
    TextDelta,
    TextSlot,
    UnsupportedOptionError,
    Usage,
    UsageEvent,
    json_object,
)

OPENAI_HOSTS = frozenset({"api.openai.com"})
OPENAI_MAX_STOP_SEQUENCES = 4

# Request.extras this backend knows, each sent as the body field of the same name.
PASS_THROUGH_EXTRAS = ("frequency_penalty", "presence_penalty", "reasoning_effort")
# Sampling fields that only open-weight servers (vLLM, llama.cpp, LM Studio, Together...) understand.
OPEN_SERVER_EXTRAS = ("repetition_penalty", "min_p")


def is_openai_api(target: Target) -> bool:
    """True when the target is OpenAI's own API rather than a server that speaks its protocol."""
    host = urlsplit(target.base_url or "").hostname or ""
    return host in OPENAI_HOSTS


def _refuse(target: Target, setting: str, why: str, remedy: str) -> UnsupportedOptionError:
    return UnsupportedOptionError(f"profile '{target.profile}': {setting} {why}", remedy=remedy)


def build_messages(request: Request) -> list[dict[str, str]]:
    messages = [{"role": message.role, "content": message.content} for message in request.messages]
    if request.system is not None:
        messages.insert(0, {"role": "system", "content": request.system})
    return messages


def build_body(target: Target, request: Request, *, stream: bool, include_usage: bool) -> dict[str, Any]:
    """The JSON body for ``POST /chat/completions``; raises ``UnsupportedOptionError`` for what cannot go."""
    openai_api = is_openai_api(target)
    body: dict[str, Any] = {"model": target.model, "messages": build_messages(request)}
    body["stream"] = stream  # said either way: a proxy's default need not be ours
    if stream and include_usage:
        body["stream_options"] = {"include_usage": True}

    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.max_tokens is not None:
        # OpenAI deprecated max_tokens (its reasoning models reject it); most other servers only know it.
        body["max_completion_tokens" if openai_api else "max_tokens"] = request.max_tokens
    if request.seed is not None:
        body["seed"] = request.seed
    if request.stop:
        if openai_api and len(request.stop) > OPENAI_MAX_STOP_SEQUENCES:
            raise _refuse(
                target,
                f"has {len(request.stop)} stop sequences",
                f"but OpenAI's API accepts at most {OPENAI_MAX_STOP_SEQUENCES}",
                f"keep the {OPENAI_MAX_STOP_SEQUENCES} that matter most",
            )
        body["stop"] = list(request.stop)
    if request.top_k is not None:
        if openai_api:
            raise _refuse(
                target,
                f"sets top_k={request.top_k}",
                "but OpenAI's API has no top-k sampling",
                "remove top_k (use top_p instead), or point base_url at a server that has it (vLLM, llama.cpp)",
            )
        body["top_k"] = request.top_k

    for name, value in request.extras.items():
        if value is None:
            continue
        if name in PASS_THROUGH_EXTRAS:
            body[name] = value
        elif name in OPEN_SERVER_EXTRAS:
            if openai_api:
                raise _refuse(
                    target,
                    f"sets {name}={value}",
                    "but OpenAI's API does not have it",
                    f"remove {name}, or point base_url at a server that has it (vLLM, llama.cpp)",
                )
            body[name] = value
        else:
            known = ", ".join(PASS_THROUGH_EXTRAS + OPEN_SERVER_EXTRAS)
            raise _refuse(
                target,
                f"sets '{name}'",
                "which the openai backend does not know",
                f"known settings: {known}; any other request field goes in the profile's extra_body table",
            )

    extra_body = target.option("extra_body")
    if extra_body:
        if not isinstance(extra_body, dict):
            raise InvalidOptionError(f"profile '{target.profile}': extra_body must be a table")
        # The profile's explicit fields win: that is how a server-specific spelling overrides ours.
        body.update(extra_body)
    return body


# ---- answers ---------------------------------------------------------------------------------------------


def parse_usage(usage: Any) -> Usage:
    """OpenAI's ``prompt_tokens`` / ``completion_tokens``; anything missing stays None."""
    if not isinstance(usage, dict):
        return Usage()
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return Usage(
        input_tokens=prompt if isinstance(prompt, int) else None,
        output_tokens=completion if isinstance(completion, int) else None,
    )


def parse_completion(target: Target, document: dict[str, Any], latency: float | None = None) -> Response:
    """A whole ``chat.completion`` answer."""
    from llmswitch_openai.errors import BACKEND, server_name, short

    try:
        choice = document["choices"][0]
        message = choice.get("message") or {}
        text = message.get("content")
        if text is None:
            text = message.get("refusal")  # a refusal is the model's answer, not an error
            if text is None:
                raise TypeError("a message without content")
        if not isinstance(text, str):
            raise TypeError("content is not a string")
        return Response(
            text=text,
            finish_reason=choice.get("finish_reason"),
            usage=parse_usage(document.get("usage")),
            model=document.get("model") or target.model,
            latency_s=latency,
        )
    except (KeyError, IndexError, TypeError, AttributeError):
        raise BadResponseError(
            f"{server_name(target)} answered with JSON that is not a chat completion: "
            f"{short(json.dumps(document), 120)}",
            remedy="check base_url: it should be an OpenAI-compatible endpoint (usually ending in /v1)",
            backend=BACKEND,
        ) from None


CONTENT_PATH = ("choices", 0, "delta", "content")
# OpenAI pads every chunk with random characters by default (stream obfuscation, against length side channels):
# a string that changes on every chunk and that the answer never reads.
VARYING = (("obfuscation",),)
LESSONS = 3  # chunks a stream may learn its fast path from (see kit.TextSlot)


class ChunkTranslator:
    """``chat.completion.chunk`` events to stream events; the hot loop is one JSON parse and a few lookups."""

    __slots__ = ("target", "done", "seen", "received", "finish_reason", "model", "usage", "others", "first_other",
                 "slot", "lessons")

    def __init__(self, target: Target) -> None:
        self.target = target
        self.slot: TextSlot | None = None  # the fast path: chunks that differ from a learned one only in text
        self.lessons = LESSONS
        self.done = False
        self.seen = False  # any event at all
        self.others = 0  # events that are neither chat.completion chunks nor errors: another API's
        self.first_other = ""
        self.received = 0
        self.finish_reason: str | None = None
        self.model: str | None = None
        self.usage: Any = None

    def feed(self, event: SSEEvent) -> tuple[StreamEvent, ...]:
        data = event.data
        slot = self.slot
        if slot is not None and event.event == "message":
            text = slot.text_of(data)
            if text:  # the learned chunk with only its text changed: parsing it would say nothing new
                self.received += len(text)
                return (TextDelta(text),)
        self.seen = True
        if data == "[DONE]":
            self.done = True
            return ()
        try:
            chunk = json_object(data)
        except ValueError:
            raise self._bad(data) from None
        out: tuple[StreamEvent, ...] = ()
        try:
            choices = chunk.get("choices")
            if choices:
                choice = choices[0]
                delta = choice.get("delta")
                if delta:
                    content = delta.get("content")
                    if content:
                        self.received += len(content)
                        out = (TextDelta(content),)
                reason = choice.get("finish_reason")
                if reason:
                    self.finish_reason = reason
                elif out and self.lessons and not chunk.get("usage") and event.event == "message":
                    self.lessons -= 1  # a server whose chunks differ in more than their text stops being taught
                    self.slot = TextSlot.learn(data, chunk, CONTENT_PATH, content, varying=VARYING) or self.slot
            elif "error" in chunk or event.event == "error":
                from llmswitch_openai.errors import stream_error_event

                raise stream_error_event(self.target, chunk, self.received)
            elif "choices" not in chunk and "usage" not in chunk:
                self.others += 1
                self.first_other = self.first_other or data
            if chunk.get("usage"):
                self.usage = chunk["usage"]  # some servers repeat it on every chunk: the last one counts
            if self.model is None:
                self.model = chunk.get("model")
        except (AttributeError, TypeError, IndexError, KeyError):
            raise self._bad(data) from None
        return out

    def read_by_slot(self, texts: list[str]) -> None:
        """Texts the kit read with :attr:`slot` from a whole read (see ``kit.SlotTranslator``)."""
        self.received += sum(map(len, texts))

    def _bad(self, data: str) -> Exception:
        from llmswitch_openai.errors import bad_stream_data  # imported on failure only: feed runs per token

        return bad_stream_data(self.target, data, self.received)

    def close(self) -> tuple[StreamEvent, ...]:
        if self.others and not self.received:
            from llmswitch_openai.errors import not_chat_chunks

            raise not_chat_chunks(self.target, self.others, self.first_other)
        if not self.done and self.finish_reason is None:
            from llmswitch_openai.errors import BACKEND, server_name

            where = server_name(self.target)
            if not self.seen:
                # llama.cpp's servers fail this way on a prompt longer than their context: only a whole answer
                # carries their error message.
                raise BadResponseError(
                    f"{where} answered with an empty event stream (not one event)",
                    remedy="the server failed before its first event; `--no-stream` shows its own error (a prompt "
                    "longer than the model's context is the usual cause: shorten it)",
                    backend=BACKEND,
                )
            raise BadResponseError(
                f"the answer from {where} ended early, after {self.received} characters, without finishing "
                "(no finish_reason, no [DONE])",
                remedy="the text so far is kept; try again; if it keeps happening, look at the server's log or "
                "a proxy between you",
                backend=BACKEND,
            )
        end = StreamEnd(self.finish_reason, self.model or self.target.model)
        return (UsageEvent(parse_usage(self.usage)), end) if self.usage is not None else (end,)


def model_ids(document: Any) -> list[str] | None:
    """The ids in a ``/models`` answer (``{"data": [{"id": ...}]}``; Ollama-style ``models`` too)."""
    if not isinstance(document, dict):
        return None
    entries = document.get("data")
    if not isinstance(entries, list):
        entries = document.get("models")
    if not isinstance(entries, list):
        return None
    ids = []
    for entry in entries:
        if isinstance(entry, dict):
            name = entry.get("id") or entry.get("name") or entry.get("model")
            if isinstance(name, str):
                ids.append(name)
        elif isinstance(entry, str):
            ids.append(entry)
    return ids
