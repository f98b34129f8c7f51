"""The httpx client for a target, built once per server and settings and reused (its connections too)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llmswitch.errors import InvalidOptionError
from llmswitch.types import Target
from llmswitch_ollama.host import normalize_base_url
from llmswitch_ollama.info import DEFAULT_TIMEOUT_S

if TYPE_CHECKING:
    import httpx

_clients: dict[tuple[Any, ...], httpx.Client] = {}
_lock = threading.Lock()
_MAX_CLIENTS = 16
CONNECT_TIMEOUT_S = 5.0


def headers_of(target: Target) -> dict[str, str]:
    """The profile's ``headers`` table as strings."""
    raw = target.option("headers") or {}
    if not isinstance(raw, Mapping):
        raise InvalidOptionError(f"profile '{target.profile}': headers must be a table of strings")
    headers: dict[str, str] = {}
    for name, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise InvalidOptionError(
                f"profile '{target.profile}': header '{name}' must be a string, not {type(value).__name__}"
            )
        headers[str(name)] = str(value)
    return headers


def timeout_of(target: Target) -> float:
    return float(target.option("timeout", DEFAULT_TIMEOUT_S))


def http_client(target: Target) -> httpx.Client:
    """An httpx client whose base URL is the target's server (cached per server, headers and timeout)."""
    base_url = normalize_base_url(target.base_url)
    headers = headers_of(target)
    timeout = timeout_of(target)
    cache_key = (base_url, tuple(sorted(headers.items())), timeout)
    with _lock:
        client = _clients.get(cache_key)
    if client is not None:
        return client
    import httpx

    client = httpx.Client(
        base_url=base_url,
        headers=headers,
        timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT_S)),
        follow_redirects=False,  # a redirect is reported, never followed (llmswitch.redirects)
    )
    with _lock:
        if len(_clients) >= _MAX_CLIENTS:
            _clients.clear()  # profiles rarely change within a process; keep this bounded, not clever
        return _clients.setdefault(cache_key, client)
