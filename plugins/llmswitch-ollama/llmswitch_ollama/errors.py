"""Every way a call to Ollama fails, turned into an llmswitch error with a remedy.

Ollama answers errors as ``{"error": "..."}`` with a status (404 for a model that is not pulled), and in the
middle of a stream as a line ``{"error": "..."}``. Transport failures come from httpx, imported only in
:func:`from_exception`, which runs only after something failed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from llmswitch.errors import (
    AuthError,
    BackendError,
    BackendTimeoutError,
    BadResponseError,
    ModelNotFoundError,
    RateLimitError,
    RedirectError,
    UnreachableError,
    nothing_understood,
)
from llmswitch.http_headers import parse_retry_after  # re-exported: callers and tests import it from here
from llmswitch.redirects import is_redirect, redirect_error
from llmswitch.secrets import excerpt
from llmswitch.types import Target
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


def redirected(target: Target, response: Any) -> RedirectError | None:
    """The error for a redirect (named, never followed: :mod:`llmswitch.redirects`); None for other answers."""
    if not is_redirect(response.status_code):
        return None
    return redirect_error(status=response.status_code, location=response.headers.get("location"),
                          request_url=str(response.request.url), base_url=base_url(target),
                          server=f"the server at {base_url(target)}", profile=target.profile, backend=NAME)


def check_response(target: Target, response: Any) -> None:
    """Raise the llmswitch error for an answer that is not a success (a 4xx or 5xx body must have been read)."""
    redirect = redirected(target, response)
    if redirect is not None:
        raise redirect
    if response.status_code >= 400:
        raise from_status(target, response.status_code, response.content, response.headers)


def not_json(target: Target, line: bytes) -> BadResponseError:
    shown = excerpt(line, 80)
    return BadResponseError(
        f"the server at {base_url(target)} sent a line that is not JSON: {shown!r}",
        remedy=f"the text so far is kept; check that base_url in profile '{target.profile}' points at Ollama",
        backend=NAME,
    )


def not_chat_lines(target: Target, count: int, first: bytes) -> BadResponseError:
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


def from_exception(exc: BaseException, target: Target, *, during_answer: bool) -> BackendError | None:
    """The llmswitch error for an httpx exception; None when it is not one (a bug the core reports)."""
    import httpx

    url = base_url(target)
    timeout = float(target.option("timeout"))
    text = str(exc).lower()
    if isinstance(exc, httpx.ConnectError):
        if any(part in text for part in ("name or service", "nodename", "getaddrinfo", "name resolution")):
            return UnreachableError(
                f"cannot resolve the host of {url}",
                remedy=f"check base_url in profile '{target.profile}' (or OLLAMA_HOST)",
                backend=NAME,
            )
        return UnreachableError(
            f"nothing answers at {url} (connection refused)",
            remedy=f"{START_REMEDY}, or point base_url in profile '{target.profile}' (or OLLAMA_HOST) at the "
            "machine that runs it",
            backend=NAME,
        )
    if isinstance(exc, httpx.TimeoutException):
        if during_answer:
            return BackendTimeoutError(
                f"Ollama at {url} stopped sending for {timeout:g} s in the middle of the answer",
                remedy=f"the text so far is kept; try again, or raise timeout in profile '{target.profile}'",
                backend=NAME,
            )
        return BackendTimeoutError(
            f"no answer from Ollama at {url} within {timeout:g} s",
            remedy=f"loading a large model can take a while: raise timeout in profile '{target.profile}' "
            f"(now {timeout:g} s), or check the server",
            backend=NAME,
        )
    if isinstance(exc, httpx.RemoteProtocolError):
        if during_answer:
            return cut_off(target)
        return UnreachableError(f"the server at {url} closed the connection without answering",
                                remedy=f"try again; check that {url} is an Ollama server", backend=NAME)
    if isinstance(exc, httpx.NetworkError):
        return UnreachableError(
            f"the server at {url} reset the connection" + (" during the answer" if during_answer else ""),
            remedy=("the text so far is kept; " if during_answer else "") + "try again; if it keeps happening, "
            "check the server and anything between (proxy, VPN)",
            backend=NAME,
        )
    if isinstance(exc, httpx.TransportError):
        return UnreachableError(f"cannot reach {url}: {exc}", remedy=START_REMEDY, backend=NAME)
    if isinstance(exc, httpx.DecodingError):
        return BadResponseError(f"the server at {url} sent a body that cannot be decoded: {exc}", backend=NAME)
    return None
