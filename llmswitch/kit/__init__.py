"""The toolkit for HTTP backend plugins: one transport, one error table, one SSE and one NDJSON decoder.

A plugin built on it keeps only its wire format: the request body, a :class:`Translator` from decoded items
to stream events, and ``status_error`` (HTTP status and error body to an llmswitch error). Everything else
is here, in a sync and an async form that share every rule (see :mod:`llmswitch.kit.calls`):

- :class:`Endpoint` and :func:`header_table`, :func:`with_profile_headers`, :func:`check_base_url`: where the
  server is and what is sent to it, validated;
- connection pools per server configuration (:mod:`llmswitch.kit.clients`), sync and per event loop;
- :func:`transport_error`: one table from httpx2 failures (DNS, refused, reset, timeout, TLS, protocol) to
  the error tree;
- :class:`SSEDecoder` (WHATWG rules) and :class:`NDJSONDecoder`, fed bytes incrementally, and
  :func:`json_object`, the fast JSON path;
- :func:`stream` / :func:`astream`, :func:`request_json` / :func:`arequest_json`: the only network code.

Transports never retry: a 503 reaches the caller after exactly one request.

    from llmswitch import kit

    endpoint = kit.Endpoint(base_url, profile=target.profile, backend="mine", server=f"the server at {base_url}",
                            headers={"Authorization": f"Bearer {key}"}, timeout=60, status_error=my_errors)
    events = kit.stream(kit.Call(endpoint, "POST", "chat", body), kit.SSEDecoder(endpoint.server), MyTranslator())

Importing this package does not import httpx2: that happens on the first request.
"""

from __future__ import annotations

from llmswitch.kit.calls import (
    Call,
    Decoder,
    Translator,
    aopen_response,
    arequest_json,
    astream,
    not_json,
    open_response,
    request_json,
    stream,
)
from llmswitch.kit.clients import aclose_clients, close_clients
from llmswitch.kit.decoders import MAX_LINE_CHARS, NDJSONDecoder, SSEDecoder, SSEEvent, json_object
from llmswitch.kit.endpoint import (
    CONNECT_TIMEOUT_S,
    Endpoint,
    ErrorAnswer,
    check_base_url,
    header_table,
    with_profile_headers,
)
from llmswitch.kit.transport_errors import transport_error

__all__ = [
    "CONNECT_TIMEOUT_S",
    "MAX_LINE_CHARS",
    "Call",
    "Decoder",
    "Endpoint",
    "ErrorAnswer",
    "NDJSONDecoder",
    "SSEDecoder",
    "SSEEvent",
    "Translator",
    "aclose_clients",
    "aopen_response",
    "arequest_json",
    "astream",
    "check_base_url",
    "close_clients",
    "header_table",
    "json_object",
    "not_json",
    "open_response",
    "request_json",
    "stream",
    "transport_error",
    "with_profile_headers",
]
