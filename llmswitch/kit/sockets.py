"""The async connections' network backend: httpcore2's anyio backend, with a cheap check for a hung-up server.

httpcore2's pool asks every idle connection whether its server hung up (``get_extra_info("is_readable")``)
each time a request starts or ends. The anyio stream answers by rebuilding its whole table of socket
attributes (a ``getpeername`` system call among them) before the one ``poll`` that answers; with 50 calls in
flight that is some 50 checks per request, and the checks were a fifth of an async client's CPU. The same
``poll`` on the socket looked up at the first check gives the same answer at a fraction of the cost.

Imported only when an async client is made (httpcore2 loads with httpx2).
"""

from __future__ import annotations

from typing import Any

import httpcore2
from httpcore2._utils import is_socket_readable


class SocketKeepingStream(httpcore2.AsyncNetworkStream):
    """A stream of the anyio backend whose ``is_readable`` polls the socket it looked up once; everything else
    is the wrapped stream's own."""

    def __init__(self, stream: httpcore2.AsyncNetworkStream) -> None:
        self.stream = stream
        self.read = stream.read  # type: ignore[method-assign]  # no extra call per read or write
        self.write = stream.write  # type: ignore[method-assign]
        self.aclose = stream.aclose  # type: ignore[method-assign]
        self._socket: Any = None

    async def start_tls(self, *args: Any, **kwargs: Any) -> httpcore2.AsyncNetworkStream:
        return SocketKeepingStream(await self.stream.start_tls(*args, **kwargs))

    def get_extra_info(self, info: str) -> Any:
        if info != "is_readable":
            return self.stream.get_extra_info(info)
        if self._socket is None:
            self._socket = self.stream.get_extra_info("socket")
        return is_socket_readable(self._socket)  # no socket (closed): readable, as httpcore2 says


class SocketKeepingBackend(httpcore2.AnyIOBackend):
    """httpcore2's anyio backend (asyncio or trio), its streams wrapped in :class:`SocketKeepingStream`."""

    async def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore2.AsyncNetworkStream:
        return SocketKeepingStream(await super().connect_tcp(*args, **kwargs))

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore2.AsyncNetworkStream:
        return SocketKeepingStream(await super().connect_unix_socket(*args, **kwargs))
