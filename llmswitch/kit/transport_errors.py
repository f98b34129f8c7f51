"""One table from HTTP transport failures to the llmswitch error tree, for every HTTP backend.

In the spirit of httpx's own ``map_httpcore_exceptions``: the exception's class is looked up along its MRO,
so the most specific entry wins (``ConnectTimeout`` before ``TimeoutException`` before ``TransportError``).
Each entry builds the error from the endpoint (who, where, which timeout) and whether the answer had begun,
so a cut-off mid-answer and a refusal before it read differently and carry the right remedy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from llmswitch.errors import (
    BackendTimeoutError,
    BadResponseError,
    InvalidOptionError,
    LLMSwitchError,
    UnreachableError,
)
from llmswitch.secrets import redact

if TYPE_CHECKING:
    from llmswitch.kit.endpoint import Endpoint

Builder = Callable[["Endpoint", str, bool], LLMSwitchError]

# What operating systems say when a host name does not resolve.
_DNS_WORDS = ("name or service", "nodename", "getaddrinfo", "name resolution", "no address associated",
              "temporary failure in name")
_TLS_WORDS = ("ssl", "tls", "certificate", "handshake")


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _kept(answering: bool) -> str:
    return "the text so far is kept; " if answering else ""


def _connect_failed(endpoint: Endpoint, reason: str, answering: bool) -> LLMSwitchError:
    lowered = reason.lower()
    if any(word in lowered for word in _DNS_WORDS):
        return UnreachableError(
            f"cannot find the host {endpoint.host} of {endpoint.server} ({reason})",
            remedy=f"check the host name in base_url of profile '{endpoint.profile}', and your network connection",
            backend=endpoint.backend,
        )
    if any(word in lowered for word in _TLS_WORDS):
        return UnreachableError(
            f"the secure connection to {endpoint.server} failed ({reason})",
            remedy="use http:// for a server without TLS; for a private certificate point SSL_CERT_FILE at its CA",
            backend=endpoint.backend,
        )
    refused = "refused" in lowered
    return UnreachableError(
        f"cannot connect to {endpoint.server}" + (" (connection refused)" if refused else f" ({reason})"),
        remedy=endpoint.unreachable_remedy or f"check base_url in profile '{endpoint.profile}'",
        backend=endpoint.backend,
    )


def _connect_timeout(endpoint: Endpoint, reason: str, answering: bool) -> LLMSwitchError:
    return UnreachableError(
        f"cannot connect to {endpoint.server}: no answer within {min(endpoint.timeout, endpoint.connect_timeout):g} s",
        remedy=endpoint.unreachable_remedy or f"check base_url in profile '{endpoint.profile}'",
        backend=endpoint.backend,
    )


def _read_timeout(endpoint: Endpoint, reason: str, answering: bool) -> LLMSwitchError:
    if answering:
        return BackendTimeoutError(
            f"{endpoint.server} stopped sending for {endpoint.timeout:g} s in the middle of the answer",
            remedy=f"the text so far is kept; try again, or raise timeout in profile '{endpoint.profile}' "
            "if the server is just slow",
            backend=endpoint.backend,
        )
    return BackendTimeoutError(
        f"{endpoint.server} did not start answering within {endpoint.timeout:g} s",
        remedy=f"raise timeout in profile '{endpoint.profile}' (now {endpoint.timeout:g} s) if the model is slow "
        "to start, or check that the server is not overloaded",
        backend=endpoint.backend,
    )


def _pool_timeout(endpoint: Endpoint, reason: str, answering: bool) -> LLMSwitchError:
    return BackendTimeoutError(
        f"every connection to {endpoint.server} stayed busy for {endpoint.timeout:g} s",
        remedy="send fewer requests at once, or raise timeout in profile " f"'{endpoint.profile}'",
        backend=endpoint.backend,
    )


def _proxy(endpoint: Endpoint, reason: str, answering: bool) -> LLMSwitchError:
    return UnreachableError(
        f"the proxy refused to reach {endpoint.server} ({reason})",
        remedy="check HTTPS_PROXY / HTTP_PROXY, or add the host to NO_PROXY",
        backend=endpoint.backend,
    )


def _closed(endpoint: Endpoint, reason: str, answering: bool) -> LLMSwitchError:
    if answering:
        return BadResponseError(
            f"the answer from {endpoint.server} was cut off before it finished ({reason})",
            remedy="the text so far is kept; try again; if it keeps happening, look at the server's log or a "
            "proxy between you",
            backend=endpoint.backend,
        )
    return UnreachableError(
        f"{endpoint.server} closed the connection without answering ({reason})",
        remedy="check that base_url points at the server's HTTP port (http:// vs https://) and look at the "
        "server's log",
        backend=endpoint.backend,
    )


def _reset(endpoint: Endpoint, reason: str, answering: bool) -> LLMSwitchError:
    return UnreachableError(
        f"{endpoint.server} reset the connection " + ("during the answer" if answering else "before answering")
        + f" ({reason})",
        remedy=_kept(answering) + "try again; if it keeps happening, check the server and anything between "
        "(proxy, VPN)",
        backend=endpoint.backend,
    )


def _decoding(endpoint: Endpoint, reason: str, answering: bool) -> LLMSwitchError:
    return BadResponseError(
        f"{endpoint.server} sent a body that cannot be decoded ({reason})",
        remedy=_kept(answering) + "check base_url and any proxy in between",
        backend=endpoint.backend,
    )


def _bad_url(endpoint: Endpoint, reason: str, answering: bool) -> LLMSwitchError:
    return InvalidOptionError(
        f"profile '{endpoint.profile}': cannot send a request to {endpoint.base_url} ({reason})",
        remedy="base_url must be an http:// or https:// URL",
    )


def _other(endpoint: Endpoint, reason: str, answering: bool) -> LLMSwitchError:
    return BadResponseError(
        f"talking to {endpoint.server} failed ({reason})",
        remedy=_kept(answering) + "try again; `llmswitch doctor` checks the profile",
        backend=endpoint.backend,
    )


_TABLE: dict[type[BaseException], Builder] | None = None


def _table() -> dict[type[BaseException], Builder]:
    global _TABLE
    if _TABLE is None:
        import httpx2

        _TABLE = {
            httpx2.ConnectTimeout: _connect_timeout,
            httpx2.ReadTimeout: _read_timeout,
            httpx2.WriteTimeout: _read_timeout,
            httpx2.PoolTimeout: _pool_timeout,
            httpx2.TimeoutException: _read_timeout,
            httpx2.ConnectError: _connect_failed,
            httpx2.ProxyError: _proxy,
            httpx2.RemoteProtocolError: _closed,
            httpx2.LocalProtocolError: _other,
            httpx2.ReadError: _reset,
            httpx2.WriteError: _reset,
            httpx2.NetworkError: _reset,
            httpx2.DecodingError: _decoding,
            httpx2.UnsupportedProtocol: _bad_url,
            httpx2.InvalidURL: _bad_url,
            httpx2.HTTPError: _other,
            ConnectionError: _reset,
        }
    return _TABLE


def _reason(exc: BaseException) -> str:
    """What the failure says: the exception's message, or the operating system's words from the error it
    wraps (anyio reports a refused connection as "All connection attempts failed")."""
    seen: set[int] = set()
    inner: BaseException | None = exc
    while inner is not None and id(inner) not in seen:
        seen.add(id(inner))
        if isinstance(inner, OSError) and inner.errno:
            import os

            return os.strerror(inner.errno) if inner.errno > 0 else str(inner.strerror or inner)
        inner = inner.__cause__ or inner.__context__
    return str(exc) or type(exc).__name__


def transport_error(endpoint: Endpoint, exc: BaseException, *, answering: bool) -> LLMSwitchError:
    """The llmswitch error for a transport failure; ``answering`` is True once the body began to arrive."""
    table = _table()
    reason = _short(redact(_reason(exc)))
    for cls in type(exc).__mro__:
        builder = table.get(cls)
        if builder is not None:
            return builder(endpoint, reason, answering)
    return _other(endpoint, f"{type(exc).__name__}: {reason}", answering)


def is_transport_error(exc: BaseException) -> bool:
    import httpx2

    return isinstance(exc, (httpx2.HTTPError, httpx2.InvalidURL, ConnectionError))


__all__ = ["transport_error", "is_transport_error"]
