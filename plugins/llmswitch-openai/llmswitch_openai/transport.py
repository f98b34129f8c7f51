"""The HTTP side: one shared connection pool, the endpoint URLs and the headers a target sends.

The requests are the ones the official ``openai`` SDK sends (``Authorization: Bearer``,
``OpenAI-Organization``, ``OpenAI-Project``, JSON bodies), made with httpx directly: importing the SDK
costs 0.35-0.5 s, more than a whole plain chat process, and it reads ``OPENAI_API_KEY`` and friends from
the environment on its own, which would undo the rule that a custom base_url never receives that key.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx

from llmswitch.errors import InvalidOptionError, LLMSwitchError
from llmswitch.types import Target
from llmswitch_openai import __version__
from llmswitch_openai.failures import CONNECT_TIMEOUT_S, error_for_status, error_for_transport, not_json
from llmswitch_openai.info import DEFAULT_TIMEOUT_S, OPENAI_BASE_URL

_client: httpx.Client | None = None
_client_lock = threading.Lock()


def shared_client() -> httpx.Client:
    """One pool for the process: the TUI and ``doctor`` reuse connections instead of reconnecting."""
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                _client = httpx.Client(
                    limits=httpx.Limits(max_connections=32, max_keepalive_connections=8),
                    follow_redirects=False,  # a redirect would re-send the key somewhere we did not choose
                )
    return _client


def endpoint(target: Target, path: str) -> str:
    """``base_url`` + ``path``; the base URL must be http(s)."""
    base = (target.base_url or OPENAI_BASE_URL).rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise InvalidOptionError(
            f"profile '{target.profile}': base_url {base!r} must start with http:// or https://",
            remedy="for a local server that is usually http://127.0.0.1:PORT/v1",
        )
    return f"{base}/{path.lstrip('/')}"


def timeout_seconds(target: Target) -> float:
    return float(target.option("timeout", DEFAULT_TIMEOUT_S))


def timeouts(seconds: float) -> httpx.Timeout:
    """``seconds`` for each read (the wait for the first token included); connecting takes at most 10 s."""
    return httpx.Timeout(seconds, connect=min(seconds, CONNECT_TIMEOUT_S))


def headers_for(target: Target) -> dict[str, str]:
    headers = {
        "Accept": "application/json",
        "User-Agent": f"llmswitch-openai/{__version__}",
    }
    if target.api_key is not None:
        headers["Authorization"] = f"Bearer {target.api_key.value}"
    organization = target.option("organization")
    if organization:
        headers["OpenAI-Organization"] = str(organization)
    project = target.option("project")
    if project:
        headers["OpenAI-Project"] = str(project)
    extra = target.option("headers") or {}
    for name, value in extra.items():
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise InvalidOptionError(
                f"profile '{target.profile}': header {name!r} must be a string, not {type(value).__name__}"
            )
        headers[str(name)] = str(value)  # the profile's headers win, so a proxy's own auth header can replace ours
    return headers


def send(target: Target, method: str, path: str, *, json_body: Any = None, seconds: float) -> httpx.Response:
    """Send a request and return the response as soon as its headers arrive (the body is not read yet).

    Connection failures are raised as llmswitch errors; the status is not checked (see :func:`check_status`).
    The caller closes the response.
    """
    client = shared_client()
    request = client.build_request(
        method, endpoint(target, path), json=json_body, headers=headers_for(target), timeout=timeouts(seconds)
    )
    try:
        return client.send(request, stream=True)
    except httpx.HTTPError as exc:
        raise error_for_transport(target, exc, timeout=seconds) from None


def check_status(target: Target, response: httpx.Response, *, seconds: float) -> None:
    """Raise the llmswitch error for a non-2xx response (reading its body for the server's message)."""
    if response.status_code < 300:
        return
    try:
        body = response.read()
    except httpx.HTTPError:
        body = b""
    finally:
        response.close()
    listing = response.request.url.path.rstrip("/").endswith("/models")
    raise error_for_status(
        target,
        response.status_code,
        response.headers,
        body,
        list_models=None if listing else (lambda: served_models(target, timeout=min(seconds, 5.0))),
    )


def request_json(target: Target, method: str, path: str, *, json_body: Any = None, seconds: float) -> Any:
    """Send a request and return its decoded JSON body; every failure is raised as an llmswitch error."""
    response = send(target, method, path, json_body=json_body, seconds=seconds)
    try:
        check_status(target, response, seconds=seconds)
        try:
            raw = response.read()
        except httpx.HTTPError as exc:
            raise error_for_transport(target, exc, timeout=seconds, received_chars=0) from None
    finally:
        response.close()
    try:
        return json.loads(raw)
    except ValueError:
        raise not_json(target, raw) from None


def served_models(target: Target, *, timeout: float) -> list[str] | None:
    """The model ids ``GET /models`` lists, or None when the server cannot say (used for remedies)."""
    try:
        document = request_json(target, "GET", "models", seconds=timeout)
    except LLMSwitchError:
        return None
    return model_ids(document)


def model_ids(document: Any) -> list[str] | None:
    """The ids in a ``/models`` answer (``{"data": [{"id": ...}]}``; Ollama-style ``models`` too)."""
    if not isinstance(document, dict):
        return None
    entries = document.get("data")
    if not isinstance(entries, list):
        entries = document.get("models")
    if not isinstance(entries, list):
        return None
    ids = []
    for entry in entries:
        if isinstance(entry, dict):
            name = entry.get("id") or entry.get("name") or entry.get("model")
            if isinstance(name, str):
                ids.append(name)
        elif isinstance(entry, str):
            ids.append(entry)
    return ids
