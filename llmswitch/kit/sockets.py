"""The async connections' network backend: httpcore2's anyio backend, with two costs of every request cut.

- **The check for a hung-up server.** httpcore2's pool asks every idle connection whether its server hung up
  (``get_extra_info("is_readable")``) each time a request starts or ends. The anyio stream answers by
  rebuilding its whole table of socket attributes (a ``getpeername`` system call among them) before the one
  ``poll`` that answers; with 50 calls in flight that is some 50 checks per request, and they were a fifth of
  an async client's CPU. The same ``poll`` on the socket looked up at the first check gives the same answer.
- **One send per request.** httpcore2 writes a request's head and its body separately: two system calls,
  two packets, and on a local server two wake-ups to read one request. The head is held back and goes out
  with the body, in one write. What is held goes out at the end of the request (h11's empty end-of-message
  write), at the latest before the next read, and never grows past :data:`HOLD_BYTES`. A write that fails
  there fails as it would have: inside the request's writes, or, before the read, as httpcore2 treats a
  failed write (it reads the answer a server may have sent before it hung up).

Imported only when an async client is made (httpcore2 loads with httpx2).
"""

from __future__ import annotations

from typing import Any

import httpcore2
from httpcore2._utils import is_socket_readable

HOLD_BYTES = 64 * 1024  # a request's head and a chat's JSON body go out together; an upload's chunks do not wait


class SocketKeepingStream(httpcore2.AsyncNetworkStream):
    """A stream of the anyio backend that checks readability on the socket it looked up once and sends a
    request's head with its body; everything else is the wrapped stream's own."""

    def __init__(self, stream: httpcore2.AsyncNetworkStream) -> None:
        self.stream = stream
        self.aclose = stream.aclose  # type: ignore[method-assign]  # no extra call on the way
        self._socket: Any = None
        self._held = b""
        self._held_timeout: float | None = None

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if buffer and len(self._held) + len(buffer) < HOLD_BYTES:
            self._held += buffer
            self._held_timeout = timeout
            return
        held, self._held = self._held + buffer, b""
        await self.stream.write(held, timeout)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._held:
            held, self._held = self._held, b""
            try:
                await self.stream.write(held, self._held_timeout)
            except httpcore2.WriteError:
                pass  # as httpcore2 does when a request cannot be sent whole: read what the server said
        return await self.stream.read(max_bytes, timeout)

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
