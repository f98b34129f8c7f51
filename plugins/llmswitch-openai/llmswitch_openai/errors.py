"""Every way a request can fail, turned into an llmswitch error that says what happened and what to do.

Only what is OpenAI's wire format lives here: :func:`status_error` for an HTTP answer that is not 2xx (with
OpenAI's error body, vLLM's and FastAPI's variants) and the errors a stream can carry. Connection failures
(refused, reset, timed out, cut off) are mapped by the toolkit's one table (:mod:`llmswitch.kit`). Text that
came from the server passes through :func:`llmswitch.secrets.redact`, and keys are only ever shown masked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from llmswitch.kit import (
    AuthError,
    BackendError,
    BadResponseError,
    ContextLengthError,
    ErrorAnswer,
    LLMSwitchError,
    ModelNotFoundError,
    RateLimitError,
    Target,
    UnsupportedOptionError,
    close_matches,
    nothing_understood,
    parse_retry_after,
    redact,
)
from llmswitch_openai.wire import is_openai_api

BACKEND = "openai"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0"})
MAX_DETAIL_CHARS = 300
MAX_MODELS_SHOWN = 12


# ---- describing where and what --------------------------------------------------------------------------


def server_name(target: Target) -> str:
    """``OpenAI`` for OpenAI's API, else ``the server at URL``: the subject of every message."""
    return "OpenAI" if is_openai_api(target) else f"the server at {target.base_url}"


def is_local(target: Target) -> bool:
    """A server on this machine or the local network: one the user starts themselves."""
    import ipaddress

    host = urlsplit(target.base_url or "").hostname or ""
    if host in LOCAL_HOSTS or host.endswith((".local", ".localhost", ".lan", ".internal")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_private or address.is_loopback


def start_server_hint(target: Target) -> str:
    """How such a server is started, with the port the profile expects."""
    port = urlsplit(target.base_url or "").port or 8000
    return (
        f"start it (for example `vllm serve MODEL --port {port}`, `llama-server -m FILE.gguf --port {port}` "
        f"or `python -m llama_cpp.server --model FILE.gguf --port {port}`), "
        f"or fix base_url in profile '{target.profile}'"
    )


def short(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class ServerError:
    """What an error body says, in whichever shape the server used."""

    message: str
    code: str | None = None
    type: str | None = None
    param: str | None = None


def read_error_body(body: bytes) -> ServerError:
    """OpenAI's ``{"error": {...}}``, vLLM's top-level ``{"message": ...}``, FastAPI's ``{"detail": ...}``,
    or an HTML page from a proxy: the message, shortened and with any known key masked."""
    text = body.decode("utf-8", "replace")
    try:
        document: Any = json.loads(text)
    except ValueError:
        plain = re.sub(r"<[^>]+>", " ", text)  # an HTML error page: keep its words
        return ServerError(short(redact(plain)) or "(empty body)")
    if not isinstance(document, dict):
        return ServerError(short(redact(text)))
    error = document.get("error", document)
    if isinstance(error, str):
        return ServerError(short(redact(error)))
    if not isinstance(error, dict):
        return ServerError(short(redact(text)))
    message = error.get("message") or error.get("detail") or text
    if not isinstance(message, str):
        message = json.dumps(message)
    code, kind, param = (_field(error.get(name)) for name in ("code", "type", "param"))
    return ServerError(short(redact(message)), code=code, type=kind, param=param)


def _field(value: Any) -> str | None:
    """An error field as text; LiteLLM writes an absent one as the string ``"None"``."""
    if value is None or str(value) in ("None", "null", ""):
        return None
    return str(value)


# ---- HTTP status ---------------------------------------------------------------------------------------


def status_error(target: Target, answer: ErrorAnswer) -> LLMSwitchError:
    """The error for a non-2xx answer (a 404 for a model is completed by :func:`explain_missing_model`)."""
    return error_for_status(target, answer.status, answer.headers, answer.body)


def error_for_status(target: Target, status: int, headers: Mapping[str, str], body: bytes) -> LLMSwitchError:
    """The error for a non-2xx status, its headers and its body."""
    detail = read_error_body(body)
    where = server_name(target)
    if status in (401, 403):
        return auth_error(target, status, detail)
    if status == 404:
        return not_found_error(target, detail)
    if status == 429:
        retry_after = parse_retry_after(headers)
        if detail.code == "insufficient_quota" or detail.type == "insufficient_quota":
            return RateLimitError(
                f"{where} says the account is out of quota: {detail.message}",
                retry_after=retry_after,
                remedy="add credit or raise the limit in the account's billing settings; retrying will not help",
                status_code=status,
                backend=BACKEND,
                retryable=False,
            )
        wait = f"wait {retry_after:g} s and try again" if retry_after is not None else "wait a little and try again"
        return RateLimitError(
            f"{where} is rate-limiting this key (429): {detail.message}",
            retry_after=retry_after,
            remedy=f"{wait}, or use a profile on another key or provider",
            status_code=status,
            backend=BACKEND,
        )
    if status in (400, 422):
        if says_model_is_unknown(detail):
            # Proxies (LiteLLM) answer 400, not 404, for a model they do not route: the same error as a 404's,
            # completed with the served models by explain_missing_model, as doctor reports it.
            return model_not_found(target, None, detail.message, status=status)
        if detail.code == "context_length_exceeded" or "context length" in detail.message.lower():
            return ContextLengthError(
                f"{where} says the conversation is too long for model '{target.model}': {detail.message}",
                remedy="shorten the conversation, lower max_tokens, or use a model with a larger context window",
                status_code=status,
                backend=BACKEND,
            )
        if detail.param and detail.param not in ("messages", "model"):
            return UnsupportedOptionError(
                f"{where} refused the setting '{detail.param}' for model '{target.model}': {detail.message}",
                remedy=f"remove {detail.param} from profile '{target.profile}' or the command line",
            )
        return BadResponseError(
            f"{where} refused the request ({status}): {detail.message}",
            remedy="check the profile's settings and extra_body against what this server accepts",
            status_code=status,
            backend=BACKEND,
        )
    if status >= 500:
        if is_openai_api(target):
            remedy = "OpenAI had a problem: try again in a moment (https://status.openai.com)"
        elif is_local(target):
            remedy = "look at the server's log; restart it if it keeps failing"
        else:
            remedy = "the service had a problem: try again in a moment, or use another profile"
        return BadResponseError(
            f"{where} failed ({status}): {detail.message}", remedy=remedy, status_code=status, backend=BACKEND
        )
    return BadResponseError(
        f"{where} answered {status}: {detail.message}",
        remedy=f"check base_url in profile '{target.profile}' (it usually ends in /v1)",
        status_code=status,
        backend=BACKEND,
    )


def key_origin(target: Target) -> str:
    """Where the key came from, in the user's words: ``OPENAI_API_KEY``, ``GROQ_API_KEY in .env``, ..."""
    key = target.api_key
    if key is None:
        return "nowhere"
    if key.source == "profile":
        return f"api_key in profile '{target.profile}'"
    if key.source == "flag":
        return "--api-key"
    kind, _, variable = key.source.partition(":")
    return f"{variable} in .env" if kind == ".env" else variable or key.source


def auth_error(target: Target, status: int, detail: ServerError) -> AuthError:
    where = server_name(target)
    if target.api_key is None:
        if target.notes:
            # The core held OPENAI_API_KEY back from a custom base_url; say how to send a key on purpose.
            remedy = (
                f"this server wants a key: set api_key_env = \"NAME_OF_ITS_VARIABLE\" in profile "
                f"'{target.profile}' and export that variable ({'; '.join(target.notes)})"
            )
        else:
            name = target.key_variable or "a key variable"
            remedy = f"export {name}=..., or set api_key_env in profile '{target.profile}' to the variable to use"
        return AuthError(
            f"{where} wants an API key and none was sent ({status}): {detail.message}",
            remedy=remedy,
            status_code=status,
            backend=BACKEND,
        )
    described = f"{target.api_key.masked} (from {key_origin(target)})"
    if status == 403:
        return AuthError(
            f"{where} refused key {described} access ({status}): {detail.message}",
            remedy="the key is valid but lacks access: check its project, organization and model permissions",
            status_code=status,
            backend=BACKEND,
        )
    remedy = f"check that {key_origin(target)} holds a key this server accepts"
    if is_openai_api(target):
        remedy += " (keys are at https://platform.openai.com/api-keys)"
    return AuthError(
        f"{where} rejected key {described} ({status}): {detail.message}",
        remedy=remedy,
        status_code=status,
        backend=BACKEND,
    )


# How servers say a model is not one of theirs: LiteLLM "Invalid model name passed in model=x", vLLM "The model
# `x` does not exist", OpenRouter "x is not a valid model ID", others "model not found" / "unknown model".
_UNKNOWN_MODEL = re.compile(
    r"invalid model|model_not_found|unknown model|no such model|not a valid model"
    r"|model\b.*\b(?:not found|does not exist|is not available|not served)",
    re.IGNORECASE,
)


def says_model_is_unknown(detail: ServerError) -> bool:
    """True when an error body says the requested model is not served (whatever the status)."""
    return detail.code == "model_not_found" or bool(_UNKNOWN_MODEL.search(detail.message))


def mentions_model(target: Target, detail: ServerError) -> bool:
    text = detail.message.lower()
    return detail.code == "model_not_found" or "model" in text or target.model.lower() in text


def not_found_error(target: Target, detail: ServerError) -> BackendError:
    where = server_name(target)
    if not mentions_model(target, detail):
        return BadResponseError(
            f"{where} has no such endpoint (404): {detail.message}",
            remedy=f"check base_url in profile '{target.profile}': OpenAI-compatible servers answer at "
            "/v1/chat/completions, so base_url usually ends in /v1",
            status_code=404,
            backend=BACKEND,
        )
    return model_not_found(target, None, detail.message)


def model_not_found(
    target: Target, served: list[str] | None, server_message: str = "", *, status: int = 404
) -> ModelNotFoundError:
    """The model is not served; the remedy names the closest served models, or lists them."""
    where = server_name(target)
    message = f"{where} does not serve model '{target.model}'"
    if server_message:
        message += f": {server_message}"
    return ModelNotFoundError(message, remedy=served_remedy(target, served), status_code=status, backend=BACKEND)


def served_remedy(target: Target, served: list[str] | None) -> str:
    """What to ask for instead: the closest served models, or the list."""
    change = f"(`-m NAME`, or set model in profile '{target.profile}')"
    if served and target.model in served:
        # Listed, yet refused: a proxy whose routing for it is broken, not a typo.
        return (f"the server lists '{target.model}' but refused it: check its configuration for that model "
                f"(a proxy's routing, or the key's access to it), or choose another {change}")
    if not served:
        remedy = f"check the model name {change}; `llmswitch doctor` lists what the server has"
    else:
        suggestions = close_matches(target.model, served)
        if suggestions:
            remedy = "did you mean " + " or ".join(f"'{name}'" for name in suggestions) + f"? {change}"
        else:
            shown = ", ".join(sorted(served)[:MAX_MODELS_SHOWN])
            more = f" and {len(served) - MAX_MODELS_SHOWN} more" if len(served) > MAX_MODELS_SHOWN else ""
            remedy = f"it serves: {shown}{more} {change}"
    return remedy


# ---- the connection and the stream --------------------------------------------------------------------


def unreachable_remedy(target: Target) -> str:
    if is_local(target):
        return f"is the server running? {start_server_hint(target)}"
    return (
        f"check your network connection and proxy settings, and base_url in profile '{target.profile}' "
        f"({target.base_url})"
    )


def bad_stream_data(target: Target, data: str, received_chars: int) -> BadResponseError:
    """A ``data:`` line that is not the JSON chunk the protocol promises."""
    sample = short(redact(data), 80)
    return BadResponseError(
        f"{server_name(target)} sent a line that is not a JSON chunk after {received_chars} characters: "
        f"{sample!r}",
        remedy="the server does not speak OpenAI's streaming format correctly: check base_url, or try "
        "--no-stream",
        backend=BACKEND,
    )


def not_chat_chunks(target: Target, count: int, first: str) -> BadResponseError:
    """A stream of JSON events none of which is a ``chat.completion.chunk`` (another API behind base_url)."""
    return nothing_understood(
        server_name(target), count, "event", first, "a chat.completion chunk with choices",
        backend=BACKEND,
        remedy=f"check base_url in profile '{target.profile}': it should be an OpenAI-compatible chat-completions "
        "endpoint (usually ending in /v1)",
    )


def stream_error_event(target: Target, payload: Any, received_chars: int) -> BackendError:
    """An ``{"error": ...}`` event inside a stream (vLLM, OpenRouter and LiteLLM send these)."""
    detail = read_error_body(json.dumps(payload).encode())
    status = payload.get("error", {}).get("code") if isinstance(payload.get("error"), dict) else None
    if status in (429, "429", "rate_limit_exceeded"):
        return RateLimitError(
            f"{server_name(target)} stopped the answer: rate limited ({detail.message})",
            remedy="wait a little and try again",
            backend=BACKEND,
        )
    return BadResponseError(
        f"{server_name(target)} reported an error in the middle of the answer after {received_chars} "
        f"characters: {detail.message}",
        remedy="try again; if it keeps happening, look at the server's log",
        backend=BACKEND,
    )


def explain_missing_model(target: Target, error: LLMSwitchError) -> Callable[[Any], LLMSwitchError] | None:
    """For a model the server does not serve: the rewrite of the error once ``GET /models`` answered."""
    if not isinstance(error, ModelNotFoundError):
        return None

    def with_served(document: Any) -> LLMSwitchError:
        from llmswitch_openai.wire import model_ids

        return ModelNotFoundError(error.message, remedy=served_remedy(target, model_ids(document)),
                                  status_code=error.status_code, backend=BACKEND)

    return with_served
