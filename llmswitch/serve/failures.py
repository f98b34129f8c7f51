"""What an llmswitch error becomes on the wire: one table of HTTP status and kind, shared by both protocols.

Each protocol only words the body its clients parse (OpenAI's ``{"error": {...}}``, Anthropic's
``{"type": "error", ...}``); the status, ``Retry-After`` and the redacted message are decided here once.
Upstream failures are the gateway's (502, 503, 504): a key the upstream rejected is the gateway's to fix,
so it is never passed on as a 401 that would tell the client its own key is wrong. A failure only the operator
can fix (no upstream key, a key the upstream refuses) carries ``x-should-retry: false``: the official OpenAI
and Anthropic SDKs read that header before the status and do not retry, where they retry any 5xx by default.
So does a failure the router already retried (it is the one retry owner: a client's own retries on top would
multiply the upstream's requests). An upstream 4xx that the client's request caused (a conversation too long
for the model, a parameter the upstream refuses) is the client's 400, with the upstream's words (redacted).
"""

from __future__ import annotations

import logging
import math

from llmswitch.errors import (
    AuthError,
    BackendError,
    BackendTimeoutError,
    BudgetExceededError,
    ConfigError,
    ContextLengthError,
    LLMSwitchError,
    MissingKeyError,
    ModelNotFoundError,
    ProfileNotFoundError,
    RateLimitError,
    UnreachableError,
)
from llmswitch.record import record
from llmswitch.secrets import redact

log = logging.getLogger("llmswitch.serve")

# Neutral kinds; each protocol maps them to its own error types.
INVALID_REQUEST = "invalid_request"
CONTEXT_TOO_LONG = "context_too_long"  # an invalid request that OpenAI's clients recognise by its code
UNAUTHENTICATED = "unauthenticated"
NOT_FOUND = "not_found"
UNKNOWN_PATH = "unknown_path"  # a path or method the gateway does not serve (not a model it lacks)
RATE_LIMITED = "rate_limited"
UPSTREAM = "upstream"
OVERLOADED = "overloaded"
INTERNAL = "internal"


class GatewayRequestError(LLMSwitchError):
    """A request the gateway cannot take as sent (bad JSON, a missing field, an unsupported feature)."""

    kind = "invalid_request"

    def __init__(self, message: str, *, status: int = 400, gateway_kind: str = INVALID_REQUEST,
                 param: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.gateway_kind = gateway_kind
        self.param = param
        self.retry_after = retry_after


@record(slots=False)
class Failure:
    """An error as the gateway answers it."""

    status: int
    kind: str  # one of the neutral kinds above
    message: str
    code: str  # llmswitch's own error kind ("rate_limited", "unreachable", ...), for clients that look
    retry_after: int | None = None
    param: str | None = None
    retry: bool = True  # False: asking again cannot help until the gateway's operator acts

    @property
    def headers(self) -> dict[str, str]:
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}
        if not self.retry:
            headers["x-should-retry"] = "false"  # the SDKs' own signal; a status alone would invite retries
        return headers


# What a client is told when the gateway stops before its answer is finished (SIGTERM past the deadline):
# another instance, or this one restarted, can answer it.
SHUTTING_DOWN = Failure(503, OVERLOADED, "the gateway is shutting down and its shutdown deadline passed before "
                        "this answer was finished: ask again", "shutting_down", retry_after=1)


# What a client reads about a failure behind the gateway. The full message (the upstream's URL, which key
# variable, the masked key, the server's own words) is for the gateway's operator: it goes to the log.
UPSTREAM_TEXT = {
    "auth": "the upstream refused the gateway's credentials",
    "rate_limited": "the upstream is rate limiting",
    "model_not_found": "the upstream does not serve this profile's model",
    "unreachable": "the upstream cannot be reached",
    "timeout": "the upstream did not answer in time",
    "redirected": "the upstream answered with a redirect, which is not followed",
    "bad_response": "the upstream's answer failed (a server error, a malformed answer or a stream cut off)",
    "missing_key": "the gateway has no key for this profile's upstream; only its operator can add one",
    "plugin": "the backend plugin failed",
}


# Upstream statuses that say the client's request was at fault (not the gateway's key or configuration).
CLIENT_FAULT_STATUSES = frozenset({400, 413, 422})


def failure_of(error: LLMSwitchError, profile: str | None = None, *, retried: bool = False,
               upstream_url: str | None = None) -> Failure:
    """The status, kind and message for an error. The client's own mistakes are explained in full (redacted,
    with the remedy, the upstream's address said as "the upstream"); a failure upstream is named in a sentence
    and logged in full for the operator. ``retried``: the router already tried more than once, so the client is
    asked not to retry on top. ``upstream_url``: the base URL of the member that failed."""
    if isinstance(error, GatewayRequestError):
        return Failure(error.status, error.gateway_kind, error.message, error.kind, _seconds(error.retry_after),
                       param=error.param)
    status, kind, retry_after = _classify(error)
    if isinstance(error, MissingKeyError):
        profile = profile or error.profile
    remedy = _operator_remedy(error)
    full = redact(error.message + (f" ({remedy})" if remedy else ""))
    retry = not retried and not isinstance(error, (MissingKeyError, AuthError)) and not _operators_4xx(error)
    if kind in (UPSTREAM, OVERLOADED, INTERNAL) or isinstance(error, (RateLimitError, ModelNotFoundError)):
        log.warning("profile %s: %s", profile or "?", full)
        what = UPSTREAM_TEXT.get(error.kind, "the call failed")
        message = f"{what} (profile '{profile}'); the gateway's log has the details" if profile else what
        if retry_after is not None:
            message += f"; retry after {retry_after} s"
        return Failure(status, kind, message, error.kind, retry_after, retry=retry)
    return Failure(status, kind, _unnamed(full, upstream_url), error.kind, retry_after, retry=retry)


def _unnamed(text: str, upstream_url: str | None) -> str:
    """``text`` without the upstream's address (where the gateway's upstreams are is its operator's business):
    the plugins' ``the server at URL`` becomes ``the upstream``, and so does the URL anywhere else."""
    if not upstream_url:
        return text
    return text.replace(f"the server at {upstream_url}", "the upstream").replace(upstream_url, "the upstream")


def _operator_remedy(error: LLMSwitchError) -> str | None:
    """The remedy for whoever runs the gateway: a missing key is exported before `llmswitch serve` starts (it
    has no --api-key, and reads keys once, when it first serves the profile)."""
    if isinstance(error, MissingKeyError):
        return (f"export {error.variable}=... (or put it in a .env file in the directory serve starts in), then "
                "restart `llmswitch serve`; or set api_key_env in the profile")
    return error.remedy


def _classify(error: LLMSwitchError) -> tuple[int, str, int | None]:
    if isinstance(error, ProfileNotFoundError):
        return 404, NOT_FOUND, None
    if isinstance(error, MissingKeyError):
        return 500, INTERNAL, None  # the gateway's configuration, not the client's request (and not retried)
    if isinstance(error, ConfigError):
        return 400, INVALID_REQUEST, None  # an option the backend does not take, a bad value
    if isinstance(error, BudgetExceededError):
        return 429, RATE_LIMITED, _seconds(error.retry_after)
    if isinstance(error, RateLimitError):
        return 429, RATE_LIMITED, _seconds(error.retry_after)
    if isinstance(error, ModelNotFoundError):
        return 404, NOT_FOUND, None
    if isinstance(error, BackendTimeoutError):
        return 504, UPSTREAM, None
    if isinstance(error, (AuthError, UnreachableError)):
        return 502, UPSTREAM, None
    if isinstance(error, ContextLengthError):
        return 400, CONTEXT_TOO_LONG, None
    if isinstance(error, BackendError):
        if error.status_code in CLIENT_FAULT_STATUSES:
            return 400, INVALID_REQUEST, None
        if error.status_code in (503, 529):  # the upstream's own wait, passed on; 1 s when it said none
            return 503, OVERLOADED, _seconds(error.retry_after) or 1
        return 502, UPSTREAM, _seconds(error.retry_after)
    return 500, INTERNAL, None


def _operators_4xx(error: LLMSwitchError) -> bool:
    """An upstream 4xx that neither the client's request caused nor a retry fixes (a 402 for billing, a 404
    for an endpoint the profile's base_url lacks): only the gateway's operator can act."""
    return (isinstance(error, BackendError) and not isinstance(error, (ContextLengthError, ModelNotFoundError))
            and error.status_code is not None and 400 <= error.status_code < 500
            and error.status_code not in CLIENT_FAULT_STATUSES and error.status_code not in (408, 409, 429))


def _seconds(wait: float | None) -> int | None:
    """A wait as ``Retry-After`` says it: whole seconds, at least 1 (0 would invite a retry at once)."""
    return max(1, math.ceil(wait)) if wait is not None else None
