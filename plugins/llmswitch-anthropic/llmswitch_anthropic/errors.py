"""Every way a call to Anthropic fails, turned into an llmswitch error with a remedy.

Only what is Anthropic's wire format: an HTTP status with Anthropic's error body (``{"type": "error",
"error": {"type": "overloaded_error", "message": ...}}``), or the same body as an ``event: error`` in the
middle of a stream. Transport failures (refused, reset, timed out, cut off) are mapped by the toolkit's one
table (:mod:`llmswitch.kit`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from llmswitch.kit import (
    AuthError,
    BackendError,
    BadResponseError,
    ContextLengthError,
    ErrorAnswer,
    ModelNotFoundError,
    RateLimitError,
    Target,
    close_matches,
    excerpt,
    nothing_understood,
    parse_retry_after,
    redact,
)
from llmswitch_anthropic.info import DEFAULT_BASE_URL, KEY_ENV, KEYS_PAGE, NAME, STATUS_PAGE

# Anthropic's error types and the HTTP status each comes with (an error event in a stream has no status).
ERROR_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


# ---- describing the target ----------------------------------------------------------------------------


def is_anthropic(target: Target) -> bool:
    return not target.base_url or target.base_url.rstrip("/") == DEFAULT_BASE_URL


def server_name(target: Target) -> str:
    """``Anthropic`` for the real API, else the URL, so a message about a proxy does not blame Anthropic."""
    return "Anthropic" if is_anthropic(target) else f"the server at {target.base_url}"


def account_holder(target: Target) -> str:
    """Where a key's access, limits and billing are managed: Anthropic's console, or the other server's owner."""
    return "the Anthropic console" if is_anthropic(target) else f"whoever runs {target.base_url}"


def key_variable(target: Target) -> str:
    return target.key_variable or str(target.option("api_key_env") or KEY_ENV)


def key_origin(target: Target) -> str:
    """Where the key came from, in words: ``$ANTHROPIC_API_KEY``, ``.env``, the profile, ``--api-key``."""
    if target.api_key is None:
        return "no key"
    source = target.api_key.source
    if source.startswith("env:"):
        where = "$" + source[4:]
    elif source.startswith(".env:"):
        where = f"{source[5:]} in .env"
    elif source == "flag":
        where = "--api-key"
    else:
        where = f"profile '{target.profile}'"
    return f"the key {target.api_key.masked} (from {where})"


def known_models() -> list[str]:
    """Model names from the plugin's price table, for "did you mean" (offline, no network)."""
    try:
        from llmswitch.kit import load_table
        from llmswitch_anthropic.info import INFO

        table = load_table(INFO)
        return list(table.models) if table is not None else []
    except Exception:  # a broken data file must not hide the error being reported
        return []


def unreachable_remedy(target: Target) -> str:
    if is_anthropic(target):
        return "check your network connection and proxy settings (HTTPS_PROXY), then try again"
    return (f"is the server at {target.base_url} running? check base_url in profile '{target.profile}' "
            "(or ANTHROPIC_BASE_URL)")


# ---- errors from Anthropic's error body ------------------------------------------------------------------


def status_error(target: Target, answer: ErrorAnswer) -> BackendError:
    """The error for a non-2xx answer: its status, its (JSON or not) body and its headers."""
    try:
        body: Any = json.loads(answer.body)
    except ValueError:
        body = answer.body
    return from_error_body(target, answer.status, body, answer.headers)


def from_error_body(
    target: Target,
    status: int | None,
    body: Any,
    headers: Mapping[str, str] | None = None,
    *,
    in_stream: bool = False,
) -> BackendError:
    """The error for an HTTP status and/or Anthropic's error body (a dict, text, or None)."""
    error_type, api_message = _error_fields(body)
    if status is None:
        status = ERROR_TYPE_STATUS.get(error_type or "", 500)
    who = server_name(target)
    detail = f": {api_message}" if api_message else ""
    common: dict[str, Any] = {"status_code": status, "backend": NAME}
    during = " during the answer" if in_stream else ""
    # A stream's error event has no HTTP status of its own: name Anthropic's error type instead.
    tag = f"({error_type})" if in_stream and error_type else f"(HTTP {status})"

    if status == 401 or error_type == "authentication_error":
        variable = key_variable(target)
        if target.api_key is None:
            if is_anthropic(target):
                remedy = f"export {variable}=... with a key from {KEYS_PAGE}"
            else:  # the provider's variable is never sent to another server unless the profile says so
                remedy = (f"set api_key_env = \"{variable}\" (or api_key) in profile '{target.profile}' to send "
                          "a key to this server")
            return AuthError(f"{who} wants an API key and none was sent{detail}", remedy=remedy, **common)
        return AuthError(
            redact(f"{who} rejected {key_origin(target)} {tag}{detail}"),
            remedy=f"set {variable} to a valid key"
            + (f" from {KEYS_PAGE}" if is_anthropic(target) else "")
            + f", or fix api_key / api_key_env in profile '{target.profile}'",
            **common,
        )
    if status == 403 or error_type == "permission_error":
        return AuthError(
            redact(f"{who} refused {key_origin(target)} access to '{target.model}' {tag}{detail}"),
            remedy=f"check the key's workspace and model access with {account_holder(target)}, or choose another "
            "model",
            **common,
        )
    if status == 404 or error_type == "not_found_error":
        if error_type == "not_found_error" and ("model" in (api_message or "").lower() or not api_message):
            suggestions = close_matches(target.model, known_models())
            hint = f"did you mean '{suggestions[0]}'? " if suggestions else ""
            return ModelNotFoundError(
                f"{who} does not serve the model '{target.model}'{detail}",
                remedy=hint + f"set model in profile '{target.profile}' (or pass -m); "
                f"`llmswitch doctor` lists the models {who} lets your key use",
                **common,
            )
        return ModelNotFoundError(
            f"{who} has no Messages API at this address {tag}{detail}",
            remedy=f"check base_url in profile '{target.profile}' (or ANTHROPIC_BASE_URL): it is the server's root, "
            f"without /v1, e.g. {DEFAULT_BASE_URL}",
            **common,
        )
    if status == 429 or error_type == "rate_limit_error":
        retry_after = parse_retry_after(headers)
        wait = f"wait {retry_after:g} s" if retry_after is not None else "wait a moment"
        return RateLimitError(
            f"{who} is rate limiting this key {tag}{during}{detail}",
            retry_after=retry_after,
            remedy=f"{wait} and try again, or raise your limits with {account_holder(target)}",
            **common,
        )
    if status == 529 or error_type == "overloaded_error":
        return BadResponseError(
            f"{who} is overloaded {tag}{during}{detail}",
            remedy="try again in a moment, or switch to another profile" + (f"; see {STATUS_PAGE}" if is_anthropic(target) else ""),
            **common,
        )
    if status >= 500:
        return BadResponseError(
            f"{who} failed {tag}{during}{detail}",
            remedy="try again; if it keeps failing, check "
            + (STATUS_PAGE if is_anthropic(target) else "the server's logs"),
            **common,
        )
    if status == 400 and "prompt is too long" in (api_message or "").lower():  # "prompt is too long: N tokens > M"
        return ContextLengthError(
            f"{who} says the conversation is too long for model '{target.model}' {tag}{detail}",
            remedy="shorten the conversation, lower max_tokens, or use a model with a larger context window",
            **common,
        )
    if status == 413 or error_type == "request_too_large":
        return BackendError(
            f"the request is too large for {who} {tag}{detail}",
            remedy="shorten the conversation or the system prompt",
            **common,
        )
    if status == 402 or error_type == "billing_error":
        return BackendError(
            f"{who} refused the request for a billing reason {tag}{detail}",
            remedy=f"check your plan and credit balance with {account_holder(target)}",
            **common,
        )
    sampling = [name for name in ("temperature", "top_p", "top_k") if name in (api_message or "")]
    if sampling:
        # Claude Sonnet 5 and later refuse sampling settings other than their defaults.
        remedy = (f"this model may not take {', '.join(sampling)}: remove it from profile '{target.profile}' "
                  "and from the command line (Claude Sonnet 5 and later accept none of temperature, top_p, top_k)")
    else:
        remedy = (f"check the settings of profile '{target.profile}' (model, max_tokens, temperature, top_p, "
                  f"top_k, stop) against what {who} accepts")
    return BackendError(f"{who} refused the request {tag}{detail}", remedy=remedy, **common)


def _error_fields(body: Any) -> tuple[str | None, str | None]:
    """``(error type, message)`` from Anthropic's error envelope, or from whatever else a proxy sent."""
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping):
            kind = error.get("type")
            message = error.get("message")
            return (str(kind) if kind else None, str(message) if message else None)
        if isinstance(error, str):
            return None, error
        message = body.get("message")
        return None, str(message) if message else None
    if isinstance(body, (str, bytes)):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        return None, excerpt(" ".join(text.split()), 200) or None
    return None, None


# ---- errors from the transport -------------------------------------------------------------------------


def not_json(target: Target, data: str) -> BadResponseError:
    shown = excerpt(data, 80)
    return BadResponseError(
        f"{server_name(target)} sent a stream line that is not JSON: {shown!r}",
        remedy="the text so far is kept; try again, and if it persists check base_url (a proxy may be mangling "
        "the stream)",
        backend=NAME,
    )


def not_message_events(target: Target, count: int, first: str | bytes) -> BadResponseError:
    """A stream none of whose events is the Messages API's (another protocol behind base_url)."""
    return nothing_understood(
        server_name(target), count, "event", first, "a Messages API event (message_start, content_block_delta...)",
        backend=NAME,
        remedy=f"check base_url in profile '{target.profile}': it must point at an Anthropic-compatible server",
    )


def cut_off(target: Target) -> BadResponseError:
    return BadResponseError(
        f"the stream from {server_name(target)} was cut off before the answer finished",
        remedy="the text so far is kept; try again",
        backend=NAME,
    )
