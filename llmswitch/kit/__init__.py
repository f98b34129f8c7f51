"""Everything a backend plugin may use, from one place: the contract and the toolkit.

A plugin imports ``llmswitch.kit`` and nothing else from llmswitch (``from llmswitch import kit``, or
``from llmswitch.kit import hookimpl, Target, ...``). The rest of the package is the core's own and may change
between releases (a test over the import graph holds the bundled plugins to this).

- **The contract**: ``hookimpl`` (the hooks are declared and documented in :mod:`llmswitch.hookspecs`), the
  types (:mod:`llmswitch.types`: ``Target``, ``Request``, ``TextDelta``, ``HealthReport``, ...) and the errors
  to raise (:mod:`llmswitch.errors`: ``AuthError``, ``RateLimitError``, ...).
- **Helpers every backend needs**: ``estimate_tokens`` (the core's four-characters-a-token estimate),
  ``excerpt`` and ``redact`` (server text with credentials masked), ``parse_retry_after``, ``redirect_error``,
  ``close_matches`` ("did you mean"), ``load_table`` (the backend's own price table), ``cache_dir``.
- **The HTTP toolkit**: one transport, one error table, one SSE and one NDJSON decoder, in a sync and an async
  form that share every rule (see :mod:`llmswitch.kit.calls`). A plugin built on it keeps only its wire format:
  the request body, a :class:`Translator` from decoded items to stream events, and ``status_error`` (HTTP
  status and error body to an llmswitch error).

  - :class:`Endpoint` and :func:`header_table`, :func:`with_profile_headers`, :func:`check_base_url`: where the
    server is and what is sent to it, validated;
  - connection pools per server configuration (:mod:`llmswitch.kit.clients`), sync and per event loop;
  - :func:`transport_error`: one table from httpx2 failures (DNS, refused, reset, timeout, TLS, protocol) to
    the error tree;
  - :class:`SSEDecoder` (WHATWG rules) and :class:`NDJSONDecoder`, fed bytes incrementally, and
    :func:`json_object`, the fast JSON path, and :class:`TextSlot`, a faster one for a stream of events that
    differ only in their text;
  - :func:`stream` / :func:`astream` (and :func:`astream_batches`, its events in lists, one per network read,
    for the ``astream_batches`` hook), :func:`request_json` / :func:`arequest_json`, :func:`request_bytes` and
    :func:`request_jsonl` (a file's content, a batch's results): the only network code;
    :func:`run_checks` / :func:`arun_checks` drive one ``health`` written once as a generator of calls.

  Transports never retry: a 503 reaches the caller after exactly one request.
- **For local backends** (:mod:`llmswitch.kit.local`): ``AnswerShaper``, ``default_threads``, ``usable_cpus``,
  ``last_json_object``.

    from llmswitch import kit

    endpoint = kit.Endpoint(base_url, profile=target.profile, backend="mine", server=f"the server at {base_url}",
                            headers={"Authorization": f"Bearer {key}"}, timeout=60, status_error=my_errors)
    events = kit.stream(kit.Call(endpoint, "POST", "chat", body), kit.SSEDecoder(endpoint.server), MyTranslator())

Every name is imported on first use, so importing this package costs almost nothing (a plugin's discovery
hook runs for every command) and httpx2 is imported only on the first request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmswitch.lazy import lazy_exports

_EXPORTS = {
    "llmswitch.hookspecs": ("hookimpl",),
    "llmswitch.types": (
        "BackendInfo", "BatchAnswer", "BatchLimits", "Check", "CheckStatus", "Crash", "HealthReport", "Message",
        "OptionSpec", "ProviderJob", "Request", "Requirement", "Response",
        "StreamEnd", "StreamEvent", "Target", "TextDelta", "TokenCount", "Usage", "UsageEvent", "estimate_tokens",
        "events_of",
    ),
    "llmswitch.errors": (
        "AuthError", "BackendError", "BackendTimeoutError", "BadResponseError", "BatchCancelledError",
        "BatchExpiredError", "ContextLengthError", "InvalidOptionError",
        "LLMSwitchError", "ModelNotFoundError", "RateLimitError", "RedirectError", "UnreachableError",
        "UnsupportedOptionError", "close_matches", "nothing_understood",
    ),
    "llmswitch.secrets": ("excerpt", "redact"),
    "llmswitch.http_headers": ("parse_retry_after",),
    "llmswitch.redirects": ("redirect_error",),
    "llmswitch.pricing": ("load_table",),
    "llmswitch.config": ("cache_dir",),
    "llmswitch.kit.calls": (
        "Call", "Decoder", "SlotTranslator", "Translator", "aopen_response", "arequest_json", "astream",
        "astream_batches", "not_json", "open_response", "request_bytes", "request_json", "request_jsonl", "stream",
    ),
    "llmswitch.kit.checks": ("Checks", "arun_checks", "run_checks"),
    "llmswitch.kit.clients": ("aclose_clients", "close_clients"),
    "llmswitch.kit.decoders": (
        "MAX_LINE_CHARS", "NDJSONDecoder", "SSEDecoder", "SSEEvent", "TextSlot", "json_object",
    ),
    "llmswitch.kit.endpoint": (
        "CONNECT_TIMEOUT_S", "Endpoint", "ErrorAnswer", "check_base_url", "header_table", "with_profile_headers",
    ),
    "llmswitch.kit.local": ("AnswerShaper", "default_threads", "last_json_object", "usable_cpus"),
    "llmswitch.kit.transport_errors": ("transport_error",),
}

if TYPE_CHECKING:
    from llmswitch.config import cache_dir
    from llmswitch.errors import (
        AuthError,
        BackendError,
        BackendTimeoutError,
        BadResponseError,
        BatchCancelledError,
        BatchExpiredError,
        ContextLengthError,
        InvalidOptionError,
        LLMSwitchError,
        ModelNotFoundError,
        RateLimitError,
        RedirectError,
        UnreachableError,
        UnsupportedOptionError,
        close_matches,
        nothing_understood,
    )
    from llmswitch.hookspecs import hookimpl
    from llmswitch.http_headers import parse_retry_after
    from llmswitch.kit.calls import (
        Call,
        Decoder,
        SlotTranslator,
        Translator,
        aopen_response,
        arequest_json,
        astream,
        astream_batches,
        not_json,
        open_response,
        request_bytes,
        request_json,
        request_jsonl,
        stream,
    )
    from llmswitch.kit.checks import Checks, arun_checks, run_checks
    from llmswitch.kit.clients import aclose_clients, close_clients
    from llmswitch.kit.decoders import (
        MAX_LINE_CHARS,
        NDJSONDecoder,
        SSEDecoder,
        SSEEvent,
        TextSlot,
        json_object,
    )
    from llmswitch.kit.endpoint import (
        CONNECT_TIMEOUT_S,
        Endpoint,
        ErrorAnswer,
        check_base_url,
        header_table,
        with_profile_headers,
    )
    from llmswitch.kit.local import AnswerShaper, default_threads, last_json_object, usable_cpus
    from llmswitch.kit.transport_errors import transport_error
    from llmswitch.pricing import load_table
    from llmswitch.redirects import redirect_error
    from llmswitch.secrets import excerpt, redact
    from llmswitch.types import (
        BackendInfo,
        BatchAnswer,
        BatchLimits,
        Check,
        CheckStatus,
        Crash,
        HealthReport,
        Message,
        OptionSpec,
        ProviderJob,
        Request,
        Requirement,
        Response,
        StreamEnd,
        StreamEvent,
        Target,
        TextDelta,
        TokenCount,
        Usage,
        UsageEvent,
        estimate_tokens,
        events_of,
    )

__all__, __getattr__ = lazy_exports(__name__, _EXPORTS)
