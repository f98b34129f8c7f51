"""The SDK client for a target, built once per configuration and reused (its connection pool too).

The SDK is used for what it does well (headers, auth, retries, timeouts, typed errors); the bodies are read
raw through ``with_raw_response`` / ``with_streaming_response`` so no pydantic model is built per chunk.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llmswitch.errors import InvalidOptionError, PluginError
from llmswitch.types import Target
from llmswitch_anthropic.info import DEFAULT_BASE_URL, DEFAULT_TIMEOUT_S

if TYPE_CHECKING:
    import anthropic

_clients: dict[tuple[Any, ...], anthropic.Anthropic] = {}
_lock = threading.Lock()
_MAX_CLIENTS = 16
CONNECT_TIMEOUT_S = 10.0


def extra_headers(target: Target) -> dict[str, str]:
    """The profile's ``headers`` table as strings (plus ``anthropic_version``, when set)."""
    raw = target.option("headers") or {}
    headers: dict[str, str] = {}
    if not isinstance(raw, Mapping):
        raise InvalidOptionError(f"profile '{target.profile}': headers must be a table of strings")
    for name, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise InvalidOptionError(
                f"profile '{target.profile}': header '{name}' must be a string, not {type(value).__name__}"
            )
        headers[str(name)] = str(value)
    version = target.option("anthropic_version")
    if version:
        headers["anthropic-version"] = str(version)
    return headers


def timeout_of(target: Target) -> float:
    return float(target.option("timeout", DEFAULT_TIMEOUT_S))


def sdk_client(target: Target) -> anthropic.Anthropic:
    """The SDK client for this target's URL, key, headers, timeout and retries (cached)."""
    headers = extra_headers(target)
    key = target.api_key.value if target.api_key is not None else None
    cache_key = (
        target.base_url or DEFAULT_BASE_URL,
        key,
        tuple(sorted(headers.items())),
        timeout_of(target),
        int(target.option("max_retries", 0)),
    )
    with _lock:
        client = _clients.get(cache_key)
    if client is not None:
        return client
    client = _build(target, key, headers)
    with _lock:
        if len(_clients) >= _MAX_CLIENTS:
            _clients.clear()  # profiles rarely change within a process; keep this bounded, not clever
        return _clients.setdefault(cache_key, client)


def _build(target: Target, key: str | None, headers: dict[str, str]) -> anthropic.Anthropic:
    try:
        import anthropic
    except ImportError as exc:  # a broken install: say what to install, not a bare ModuleNotFoundError
        raise PluginError(
            f"the anthropic backend needs the anthropic SDK, which cannot be imported ({exc})",
            plugin="anthropic",
            remedy="pip install 'anthropic>=2.12,<3'",
        ) from exc

    default_headers: dict[str, Any] = dict(headers)
    if key is None:
        # No key: send none. An explicit empty key stops the SDK from reading ANTHROPIC_API_KEY or its
        # credential files by itself, which would hand a provider key to a server the profile did not trust
        # with it; omitting the header keeps the empty key off the wire.
        key = ""
        default_headers["Authorization"] = anthropic.omit
    timeout = timeout_of(target)
    return anthropic.Anthropic(
        api_key=key,
        base_url=target.base_url or DEFAULT_BASE_URL,
        timeout=anthropic.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT_S)),
        max_retries=int(target.option("max_retries", 0)),
        default_headers=default_headers,
        # The SDK's own client follows redirects, re-sending x-api-key, the profile's headers and (307/308)
        # the prompt to wherever the server points: follow none, and report them (llmswitch.redirects).
        http_client=anthropic.DefaultHttpxClient(follow_redirects=False),
    )


def sdk_arguments(body: Mapping[str, Any]) -> dict[str, Any]:
    """SDK keyword arguments for a body: the required fields by name, every other field as ``extra_body``.

    Sending the rest as body fields keeps the mapping in :mod:`llmswitch_anthropic.wire` the single source
    of truth, whatever parameters a given SDK version spells out.
    """
    rest = dict(body)
    arguments: dict[str, Any] = {"model": rest.pop("model"), "messages": rest.pop("messages")}
    if "max_tokens" in rest:
        arguments["max_tokens"] = rest.pop("max_tokens")
    if rest.pop("stream", False):
        arguments["stream"] = True
    if rest:
        arguments["extra_body"] = rest
    return arguments
