"""Turn what people put in ``OLLAMA_HOST`` (or ``base_url``) into a URL to connect to.

Follows Ollama's own reading of the variable, so a value that works for the ``ollama`` command works here:
no scheme means ``http`` and port 11434 (``gpu-box``, ``gpu-box:8080``, ``:11434``); an explicit ``http://``
or ``https://`` without a port means 80 or 443; a path is kept (Ollama behind a proxy at a sub-path).
Two choices of ours: a listen-everywhere address (``0.0.0.0``, ``::``), which people set so the server
accepts remote clients, is connected to as the loopback address; and a trailing slash is dropped.
"""

from __future__ import annotations

import ipaddress

from llmswitch_ollama.info import DEFAULT_BASE_URL, DEFAULT_PORT

_LISTEN_ALL = {"0.0.0.0": "127.0.0.1", "::": "::1"}


def normalize_base_url(raw: str | None) -> str:
    text = (raw or "").strip().strip("\"'").strip()
    if not text:
        return DEFAULT_BASE_URL
    scheme, separator, rest = text.partition("://")
    if separator:
        scheme = scheme.lower()
        default_port = 443 if scheme == "https" else 80
    else:
        scheme, rest, default_port = "http", text, DEFAULT_PORT
    hostport, _, path = rest.partition("/")
    host, port = _split_host_port(hostport, default_port)
    host = _LISTEN_ALL.get(host, host) or "127.0.0.1"
    if ":" in host:  # an IPv6 address goes in brackets
        host = f"[{host}]"
    path = path.rstrip("/")
    return f"{scheme}://{host}:{port}" + (f"/{path}" if path else "")


def _split_host_port(hostport: str, default_port: int) -> tuple[str, int]:
    """``(host, port)`` like Go's ``net.SplitHostPort`` with Ollama's fallbacks; an invalid port is the default."""
    if hostport.startswith("["):
        host, _, after = hostport[1:].partition("]")
        port_text = after[1:] if after.startswith(":") else ""
    elif hostport.count(":") == 1:
        host, _, port_text = hostport.partition(":")
    else:
        host, port_text = hostport, ""  # a bare name, or a bare IPv6 address
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        port = int(port_text)
    except ValueError:
        port = default_port
    if not 0 < port <= 65535:
        port = default_port
    return host, port
