"""Connection pools: one httpx2 client per server configuration, sync and async, reused for the process.

Keyed by :meth:`Endpoint.pool_key` (base URL, headers, timeouts): the TUI, ``doctor`` and a service making
many calls reuse connections instead of reconnecting, and two profiles with different keys never share a
client. Async clients belong to the event loop that made them (their connections do), so they are kept per
loop and forgotten with it. An async client of a plain-HTTP server reached without a proxy speaks HTTP/1.1
itself (:mod:`llmswitch.kit.http11`, why: see there); TLS and proxies go through httpx2's transport.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

    import httpx2

    from llmswitch.kit.endpoint import Endpoint

MAX_CLIENTS = 16  # profiles rarely change within a process; keep the cache bounded, not clever

_sync_clients: dict[tuple[Any, ...], httpx2.Client] = {}
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], httpx2.AsyncClient]]
_async_clients = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _settings(endpoint: Endpoint) -> dict[str, Any]:
    import httpx2

    settings: dict[str, Any] = {
        "headers": dict(endpoint.headers),
        "timeout": httpx2.Timeout(endpoint.timeout, connect=min(endpoint.timeout, endpoint.connect_timeout)),
        "limits": httpx2.Limits(max_connections=None, max_keepalive_connections=64),
        # A redirect would re-send the key somewhere the profile did not name: never follow one.
        "follow_redirects": False,
    }
    if never_uses_tls(endpoint):
        import ssl

        # Verifying, with no certificate to trust: were TLS ever attempted, it would fail, never go unchecked.
        settings["verify"] = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return settings


def never_uses_tls(endpoint: Endpoint) -> bool:
    """A plain-HTTP server reached without a proxy (a local Ollama, vLLM or llama.cpp server): its client
    never makes a TLS connection, so it need not load the system's certificates, which httpx2 does for every
    client it makes (about 20 ms of CPU, a tenth of a one-shot ``chat``). A proxy from the environment may be
    reached over TLS, so with one the client is made as usual."""
    from urllib.parse import urlsplit
    from urllib.request import getproxies_environment

    return urlsplit(endpoint.base_url).scheme == "http" and not set(getproxies_environment()) - {"no"}


def sync_client(endpoint: Endpoint) -> httpx2.Client:
    key = endpoint.pool_key()
    client = _sync_clients.get(key)
    if client is not None:
        return client
    import httpx2

    with _lock:
        client = _sync_clients.get(key)
        if client is None:
            if len(_sync_clients) >= MAX_CLIENTS:
                _sync_clients.clear()  # unreferenced clients close their pools when collected
            client = _sync_clients[key] = httpx2.Client(**_settings(endpoint))
    return client


def async_client(endpoint: Endpoint) -> httpx2.AsyncClient:
    import asyncio

    loop = asyncio.get_running_loop()
    clients = _async_clients.get(loop)
    if clients is None:
        clients = _async_clients.setdefault(loop, {})
    key = endpoint.pool_key()
    client = clients.get(key)
    if client is None:
        import httpx2

        if len(clients) >= MAX_CLIENTS:
            clients.clear()
        settings = _settings(endpoint)
        transport: httpx2.AsyncBaseTransport = _async_transport(settings.pop("limits"), settings.get("verify", True))
        if never_uses_tls(endpoint):
            from llmswitch.kit.http11 import PlainHTTPTransport

            transport = PlainHTTPTransport(fallback=transport)
        client = clients[key] = httpx2.AsyncClient(**settings, transport=transport)
    return client


def _async_transport(limits: httpx2.Limits, verify: Any) -> httpx2.AsyncHTTPTransport:
    """httpx2's transport, its connections made by :class:`llmswitch.kit.sockets.SocketKeepingBackend` (why:
    see there). httpx2 takes no network backend, so it is set on the transport's pool."""
    import httpx2

    from llmswitch.kit.sockets import SocketKeepingBackend

    transport = httpx2.AsyncHTTPTransport(verify=verify, limits=limits)
    transport._pool._network_backend = SocketKeepingBackend()
    return transport


async def aclose_clients() -> None:
    """Close the running loop's async clients (``AsyncClient.aclose()``; also fine to skip at exit)."""
    import asyncio

    clients = _async_clients.pop(asyncio.get_running_loop(), {})
    for client in clients.values():
        await client.aclose()


def close_clients() -> None:
    """Close every sync client (tests, embedding applications)."""
    with _lock:
        clients = list(_sync_clients.values())
        _sync_clients.clear()
    for client in clients:
        client.close()
