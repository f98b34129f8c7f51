"""Every way a call to Ollama fails, turned into an llmswitch error with a remedy.

Ollama answers errors as ``{"error": "..."}`` with a status (404 for a model that is not pulled), and in the
middle of a stream as a line ``{"error": "..."}``. Transport failures are mapped by the toolkit's one table
(:mod:`llmswitch.kit`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from llmswitch.kit import (
    AuthError,
    BackendError,
    BadResponseError,
    ErrorAnswer,
    ModelNotFoundError,
    RateLimitError,
    Target,
    excerpt,
    nothing_understood,
    parse_retry_after,
)
from llmswitch_ollama.info import NAME

START_REMEDY = "start Ollama (`ollama serve`, or open the Ollama app)"


def base_url(target: Target) -> str:
    from llmswitch_ollama.host import normalize_base_url

    return normalize_base_url(target.base_url)


def pull_remedy(target: Target) -> str:
    return f"run `ollama pull {target.model}` (on the machine at {base_url(target)}), or set model in profile " \
           f"'{target.profile}' to a model `ollama list` shows"


def error_message(body: Any) -> str | None:
    """Ollama's ``error`` text from a body (bytes, text or parsed JSON), or a short version of the raw text."""
    if isinstance(body, (bytes, str)):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        try:
            body = json.loads(text)
        except ValueError:
            return excerpt(" ".join(text.split()), 200) or None
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping):
            error = error.get("message")
        return str(error) if error else None
    return None


def status_error(target: Target, answer: ErrorAnswer) -> BackendError:
    """The error for a non-2xx answer."""
    return from_status(target, answer.status, answer.body, answer.headers)


def from_status(
    target: Target, status: int | None, body: Any, headers: Mapping[str, str] | None = None
) -> BackendError:
    """The error for an HTTP status (None: an error line inside a stream) and Ollama's error body."""
    message = error_message(body)
    url = base_url(target)
    detail = f": {message}" if message else ""
    common: dict[str, Any] = {"status_code": status, "backend": NAME}
    lowered = (message or "").lower()
    if status is None:
        if "not found" in lowered and "model" in lowered:
            return ModelNotFoundError(f"Ollama at {url} has no model '{target.model}'{detail}",
                                      remedy=pull_remedy(target), **common)
        return BadResponseError(f"Ollama at {url} failed during the answer{detail}",
                                remedy="the text so far is kept; try again, and see the server's log "
                                "(`journalctl -u ollama`, or ~/.ollama/logs/server.log) if it persists",
                                **common)
    if status in (401, 403):
        return AuthError(
            f"the server at {url} refused the request (HTTP {status}){detail}",
            remedy=f"if Ollama sits behind a proxy that wants a key, add it to profile '{target.profile}': "
            'headers = { Authorization = "Bearer ..." }',
            **common,
        )
    if status == 404:
        if "model" in lowered:  # {"error": "model \"x\" not found, try pulling it first"}
            return ModelNotFoundError(f"Ollama at {url} has no model '{target.model}'{detail}",
                                      remedy=pull_remedy(target), **common)
        return ModelNotFoundError(
            f"the server at {url} has no Ollama API (HTTP 404 for /api/chat){detail}",
            remedy=f"check base_url in profile '{target.profile}' (or OLLAMA_HOST): the server's root, "
            "e.g. http://127.0.0.1:11434, without /api or /v1",
            **common,
        )
    if status == 429:
        retry_after = parse_retry_after(headers)
        wait = f"wait {retry_after:g} s" if retry_after is not None else "wait a moment"
        return RateLimitError(f"the server at {url} is rate limiting requests (HTTP 429){detail}",
                              retry_after=retry_after, remedy=f"{wait} and try again", **common)
    if status >= 500:
        return BadResponseError(
            f"Ollama at {url} failed with HTTP {status}{detail}",
            remedy="try again; the server's log says more (`journalctl -u ollama`, or ~/.ollama/logs/server.log)"
            + ("; a smaller model or a smaller num_ctx needs less memory" if "memory" in lowered else ""),
            **common,
        )
    return BackendError(
        f"Ollama at {url} refused the request (HTTP {status}){detail}",
        remedy=f"check the settings of profile '{target.profile}' (model, num_ctx, keep_alive, ...)",
        **common,
    )


def not_json(target: Target, line: bytes) -> BadResponseError:
    shown = excerpt(line, 80)
    return BadResponseError(
        f"the server at {base_url(target)} sent a line that is not JSON: {shown!r}",
        remedy=f"the text so far is kept; check that base_url in profile '{target.profile}' points at Ollama",
        backend=NAME,
    )


def not_chat_lines(target: Target, count: int, first: str | bytes) -> BadResponseError:
    """A stream of JSON lines none of which is /api/chat's (``/api/generate``'s ``response`` lines, another API)."""
    return nothing_understood(
        f"the server at {base_url(target)}", count, "line", first, "with the 'message' of Ollama's /api/chat",
        backend=NAME,
        remedy=f"check that base_url in profile '{target.profile}' points at Ollama itself (a proxy may be "
        "translating to another API, such as /api/generate)",
    )


def cut_off(target: Target) -> BadResponseError:
    return BadResponseError(
        f"the stream from Ollama at {base_url(target)} was cut off before the answer finished",
        remedy="the text so far is kept; try again (if Ollama crashed, its log says why)",
        backend=NAME,
    )
