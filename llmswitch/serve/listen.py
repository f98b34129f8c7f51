"""Opening the gateway's listening sockets before anything says it is serving.

Binding first means a port already in use is a sentence with a remedy (not uvicorn's raw ``[Errno 98]`` after
a banner that claimed the gateway was up), and the banner can show the port the system chose for ``--port 0``.
"""

from __future__ import annotations

import errno
import socket

from llmswitch.errors import ConfigError


def listen(host: str, port: int) -> list[socket.socket]:
    """Sockets bound to every address ``host`` names (``localhost``: 127.0.0.1 and ::1 where the machine has
    it), all on one port: ``port``, or with 0 the one the system picks for the first address."""
    bare = host.strip("[]")
    try:
        addresses = socket.getaddrinfo(bare, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise ConfigError(f"cannot listen on {host}: the name does not resolve ({error.strerror})",
                          remedy="pass --host with an address of this machine (127.0.0.1 for this machine only)"
                          ) from None
    bound: list[socket.socket] = []
    try:
        distinct = dict.fromkeys((family, kind, protocol, address) for family, kind, protocol, _, address in addresses)
        for family, kind, protocol, address in distinct:
            sock = socket.socket(family, kind, protocol)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # what uvicorn and asyncio set
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)  # :: beside 0.0.0.0, as asyncio does
            chosen = bound[0].getsockname()[1] if bound else port
            try:
                sock.bind((address[0], chosen, *address[2:]))
            except OSError as error:
                sock.close()
                if bound and error.errno == errno.EADDRNOTAVAIL:
                    continue  # localhost's ::1 on a machine without IPv6: 127.0.0.1 serves
                raise refusal(host, chosen, error) from None
            bound.append(sock)
    except BaseException:
        for sock in bound:
            sock.close()
        raise
    return bound


def refusal(host: str, port: int, error: OSError) -> ConfigError:
    """What a failed bind means, and what to do."""
    if error.errno == errno.EADDRINUSE:
        return ConfigError(f"port {port} on {host} is already in use (another llmswitch serve, or another server)",
                           remedy=f"stop the program that holds it (`ss -ltnp 'sport = :{port}'` names it), or "
                           "pass another --port (--port 0 picks a free one and prints it)")
    if error.errno == errno.EACCES:
        return ConfigError(f"not allowed to listen on port {port} on {host}",
                           remedy="ports below 1024 need extra privileges: pass --port 4000 (or another above 1023)")
    if error.errno == errno.EADDRNOTAVAIL:
        return ConfigError(f"cannot listen on {host}: it is not an address of this machine",
                           remedy="pass --host with one of this machine's addresses (127.0.0.1 for this machine "
                           "only, 0.0.0.0 for every address, with gateway keys)")
    return ConfigError(f"cannot listen on {host} port {port}: {error.strerror or error}",
                       remedy="pass another --host or --port")
