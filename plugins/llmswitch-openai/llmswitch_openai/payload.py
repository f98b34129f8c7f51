"""Turning a :class:`~llmswitch.types.Request` into a chat-completions request body, setting by setting.

Every generation setting is either mapped to a body field or refused with ``UnsupportedOptionError``;
nothing is dropped. OpenAI's own API is stricter than the servers that copy it (no ``top_k``, no
``repetition_penalty``, at most four stop sequences), so those are refused before anything is sent there;
other servers get the fields and decide for themselves.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from llmswitch.errors import InvalidOptionError, UnsupportedOptionError
from llmswitch.types import Request, Target

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
    if stream:
        body["stream"] = True
        if include_usage:
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
