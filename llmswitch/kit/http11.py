"""A lean HTTP/1.1 transport for the async client, for a server reached over plain TCP without a proxy.

Why: httpx2's own async transport (httpcore2 over anyio, h11 for the wire) spends some 200 us of CPU per
request on loopback before the first byte of the answer is in: a cancel scope per read and write, the pool's
locks and events, h11's state machine per event. A local server (llama.cpp, vLLM, Ollama, the gateway's
upstream) answers in about 100 us, so that was two thirds of a request's time, and every HTTP chunk of a
streamed answer paid a share of it again (servers send one chunk per token). This transport speaks the same
HTTP/1.1 with an asyncio protocol: one write per request, each read of a body taking everything that arrived
(however many chunks, up to 64 KB), a timer handle for each timeout.

What it does not do it hands to httpx2's transport, which stays the one for TLS, proxies (see
:func:`llmswitch.kit.clients.never_uses_tls`) and a request body of unknown length. Failures are httpx2's
exceptions (``ConnectError``, ``ReadTimeout``, ``RemoteProtocolError``...), so everything above it (the client,
:mod:`llmswitch.kit.transport_errors`) reads them as before. Like httpcore2, it never sends a request twice.

Imported only when an async client is made for such a server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx2

from llmswitch.kit.readahead import LIMIT_BYTES, WHOLE_READS

MAX_HEAD_BYTES = 64 * 1024  # a response's status line and headers (h11 allows 16 KB; a little room more)
MAX_CHUNK_LINE = 4 * 1024  # a chunk's size line, extensions included
# At most this much per read, however much arrived: a relay passes an answer on in steps of this size, so its
# client has the first step to work on while the relay reads the next (a socket read's usual size).
MAX_READ_BYTES = 64 * 1024
READ_BUFFER_BYTES = LIMIT_BYTES  # read ahead at most this far beyond the reader, as ReadAhead does
MAX_IDLE = 64  # idle connections kept per server


class _Wire(asyncio.Protocol):
    """One TCP connection: what arrived, waiting for more with a deadline, and writing with flow control."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.received: list[bytes | memoryview] = []  # what arrived, not read yet (a read's rest: a view)
        self.size = 0
        self.ended = False  # the server closed its side (or the connection was lost)
        self.failure: BaseException | None = None  # why the connection was lost, if it broke
        self.waiter: asyncio.Future[None] | None = None
        self.paused_reading = False
        self.drained: asyncio.Future[None] | None = None  # set while the socket's send buffer is full

    # ---- asyncio.Protocol ----

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received.append(data)
        self.size += len(data)
        if self.size >= READ_BUFFER_BYTES and not self.paused_reading and self.transport is not None:
            self.paused_reading = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.ended = True
        self._wake()
        return False  # the transport closes: the server will send nothing more

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        if exc is not None:
            self.failure = exc
        self._wake()
        drained, self.drained = self.drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def pause_writing(self) -> None:
        if self.drained is None:
            self.drained = self.loop.create_future()

    def resume_writing(self) -> None:
        drained, self.drained = self.drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ---- used by the transport ----

    @property
    def reusable(self) -> bool:
        """Still open, and quiet: nothing arrived that no request asked for."""
        return not self.ended and not self.received and self.transport is not None and not self.transport.is_closing()

    async def read(self, timeout: float | None, limit: int = MAX_READ_BYTES) -> bytes:
        """What arrived since the last read, at most ``limit`` bytes of it (b"" once the server closed), waiting
        at most ``timeout`` seconds for something to arrive. What arrived in one piece is handed on in slices
        of it (no copy of what is not handed on yet), pieces that arrived apart joined up to ``limit``."""
        if not self.received:
            if self.ended:
                if self.failure is not None:
                    raise httpx2.ReadError(str(self.failure) or type(self.failure).__name__) from self.failure
                return b""
            waiter = self.waiter = self.loop.create_future()
            timer = self.loop.call_later(timeout, _expire, waiter) if timeout is not None else None
            try:
                await waiter
            finally:
                self.waiter = None
                if timer is not None:
                    timer.cancel()
            if not self.received:
                if self.ended:
                    return await self.read(timeout, limit)
                raise httpx2.ReadTimeout("timed out waiting for the server")
        received = self.received
        first = received[0]
        if len(first) >= limit:  # the rest is the next read's: the reader's work goes on in steps
            whole = first if isinstance(first, memoryview) else memoryview(first)  # slices of it copy nothing
            data: bytes | memoryview = whole[:limit]
            if len(whole) > limit:
                received[0] = whole[limit:]
            else:
                del received[0]
        else:  # what arrived in several pieces, joined up to the limit (never a copy of all that arrived)
            taken, count = len(first), 1
            while count < len(received) and taken + len(received[count]) <= limit:
                taken += len(received[count])
                count += 1
            data = first if count == 1 else b"".join(received[:count])
            del received[:count]
        self.size -= len(data)
        if self.paused_reading and self.size < READ_BUFFER_BYTES and self.transport is not None:
            self.paused_reading = False
            self.transport.resume_reading()
        return data if type(data) is bytes else bytes(data)

    async def write(self, data: bytes, timeout: float | None) -> None:
        if self.ended or self.transport is None or self.transport.is_closing():
            raise httpx2.WriteError("the server closed the connection")
        try:
            self.transport.write(data)
        except OSError as error:
            raise httpx2.WriteError(str(error)) from error
        drained = self.drained
        if drained is not None:  # the send buffer is full (a large upload): wait for the server to take it
            timer = self.loop.call_later(timeout, _expire, drained) if timeout is not None else None
            try:
                await drained
            finally:
                if timer is not None:
                    timer.cancel()
            if self.drained is drained:
                raise httpx2.WriteTimeout("timed out sending the request")

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        self.ended = True


def _expire(future: asyncio.Future[None]) -> None:
    """A deadline passed: wake the waiter, which finds nothing new and raises the timeout."""
    if not future.done():
        future.set_result(None)


class PlainHTTPTransport(httpx2.AsyncBaseTransport):
    """HTTP/1.1 over plain TCP, keeping connections alive; anything else goes to ``fallback`` (httpx2's
    transport): https, and a request body of unknown length."""

    def __init__(self, fallback: httpx2.AsyncBaseTransport, max_idle: int = MAX_IDLE) -> None:
        self.fallback = fallback
        self.max_idle = max_idle
        self._idle: dict[tuple[str, int], list[_Wire]] = {}

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        url = request.url
        if url.scheme != "http" or "transfer-encoding" in request.headers:
            return await self.fallback.handle_async_request(request)
        timeouts = request.extensions.get("timeout") or {}
        body = await _body_of(request)
        head = _request_head(request, body)
        address = (url.host, url.port or 80)
        wire = self._checkout(address) or await _connect(address, timeouts.get("connect"))
        try:
            await wire.write(head + body, timeouts.get("write"))  # one write: one packet, one wake-up of the server
            status, reason, version, headers, rest = await _read_head(wire, timeouts.get("read"))
            stream = _Body(self, address, wire, rest, headers, version, request.method, status,
                           timeouts.get("read"))
        except BaseException:
            wire.close()  # what was sent or read is unknown: the connection cannot carry another request
            raise
        return httpx2.Response(status, headers=headers, stream=stream,
                               extensions={"http_version": version, "reason_phrase": reason, WHOLE_READS: True})

    def _checkout(self, address: tuple[str, int]) -> _Wire | None:
        idle = self._idle.get(address)
        while idle:
            wire = idle.pop()
            if wire.reusable:
                return wire
            wire.close()
        return None

    def _release(self, address: tuple[str, int], wire: _Wire) -> None:
        idle = self._idle.setdefault(address, [])
        if len(idle) < self.max_idle and wire.reusable:
            idle.append(wire)
        else:
            wire.close()

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for wire in idle:
                wire.close()
        self._idle.clear()
        await self.fallback.aclose()


async def _connect(address: tuple[str, int], timeout: float | None) -> _Wire:
    loop = asyncio.get_running_loop()
    try:
        _transport, wire = await asyncio.wait_for(
            loop.create_connection(lambda: _Wire(loop), address[0], address[1]), timeout)
    except asyncio.TimeoutError:
        raise httpx2.ConnectTimeout(f"no connection to {address[0]}:{address[1]} within {timeout} s") from None
    except OSError as error:
        raise httpx2.ConnectError(str(error)) from error
    return wire


async def _body_of(request: httpx2.Request) -> bytes:
    stream = request.stream
    if isinstance(stream, httpx2.ByteStream):
        return b"".join(stream)  # type: ignore[arg-type]
    return b"".join([part async for part in stream])  # type: ignore[union-attr]


def _request_head(request: httpx2.Request, body: bytes) -> bytes:
    lines = [request.method.encode("ascii"), b" ", request.url.raw_path, b" HTTP/1.1\r\n"]
    has_length = False
    for name, value in request.headers.raw:
        if name.lower() == b"content-length":
            has_length = True
        lines += (name, b": ", value, b"\r\n")
    if body and not has_length:
        lines += (b"Content-Length: ", str(len(body)).encode(), b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


async def _read_head(wire: _Wire, timeout: float | None) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]], bytes]:
    """The response's status, reason, HTTP version and headers, and the bytes after them (1xx answers skipped)."""
    buffer = b""
    while True:
        end = buffer.find(b"\r\n\r\n")
        while end == -1:
            if len(buffer) > MAX_HEAD_BYTES:
                raise httpx2.RemoteProtocolError("the response's headers are too long")
            data = await wire.read(timeout)
            if not data:
                raise httpx2.RemoteProtocolError("Server disconnected without sending a response."
                                                 if not buffer else "the server closed the connection in the "
                                                 "middle of the response's headers")
            buffer += data
            end = buffer.find(b"\r\n\r\n")
        head, buffer = buffer[:end], buffer[end + 4 :]
        lines = head.split(b"\r\n")
        status_line = lines[0].split(b" ", 2)
        if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/1.") or not status_line[1].isdigit():
            raise httpx2.RemoteProtocolError(f"not an HTTP/1.1 response: {lines[0][:80]!r}")
        status = int(status_line[1])
        headers = []
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon or not name or name != name.strip() or line[:1] in (b" ", b"\t"):
                raise httpx2.RemoteProtocolError(f"a malformed response header: {line[:80]!r}")
            headers.append((name, value.strip(b" \t")))
        if 100 <= status < 200 and status != 101:
            continue  # an interim answer (100 Continue, 103 Early Hints): the real one follows
        reason = status_line[2] if len(status_line) > 2 else b""
        return status, reason, status_line[0], headers, buffer


def _values(headers: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    return [value for key, value in headers if key.lower() == name]


_SIZE, _DATA, _DATA_END, _TRAILERS, _DONE = range(5)


class _Body(httpx2.AsyncByteStream):
    """A response's body by its framing (chunked, a length, or up to the close), each step what one read
    brought; the connection goes back to the pool when the body has been read to its end, else it is closed."""

    def __init__(self, owner: PlainHTTPTransport, address: tuple[str, int], wire: _Wire, buffered: bytes,
                 headers: list[tuple[bytes, bytes]], version: bytes, method: str, status: int,
                 timeout: float | None) -> None:
        self.owner, self.address, self.wire, self.buffered, self.timeout = owner, address, wire, buffered, timeout
        connection = b",".join(_values(headers, b"connection")).lower()
        self.keep = b"close" not in connection and (version == b"HTTP/1.1" or b"keep-alive" in connection)
        coding = b",".join(_values(headers, b"transfer-encoding")).lower()
        lengths = _values(headers, b"content-length")
        self.chunked = False
        self.left: int | None = None  # bytes of body (or of the current chunk) still to come
        self.state = _DATA
        if method == "HEAD" or status in (204, 304):
            self.left = 0
        elif coding:
            if coding.strip() != b"chunked":  # as h11: a transfer coding other than chunked is not read as text
                raise httpx2.RemoteProtocolError(f"unsupported Transfer-Encoding: {coding[:40]!r}")
            self.chunked, self.state, self.left = True, _SIZE, 0
        elif lengths:
            values = {value.strip() for value in b",".join(lengths).split(b",")}
            if len(values) != 1 or not next(iter(values)).isdigit():
                raise httpx2.RemoteProtocolError(f"a malformed Content-Length: {lengths[0][:40]!r}")
            self.left = int(values.pop())
        else:
            self.keep = False  # no length: the body is everything up to the close
        self.finished = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        wire, data = self.wire, self.buffered
        self.buffered = b""
        try:
            while not self.finished:
                if data:
                    out = self._dechunk(data) if self.chunked else self._take(data)
                    if out:
                        yield out
                    if self.finished:
                        break
                elif self.left == 0 and not self.chunked:
                    self._finish()
                    break
                data = await wire.read(self.timeout)
                if not data:
                    if self.left is None and not self.chunked:  # a body that runs to the close has ended
                        self._finish()
                        break
                    raise httpx2.RemoteProtocolError("peer closed connection without sending complete message body")
        except BaseException:
            self._abandon()
            raise

    def _take(self, data: bytes) -> bytes:
        """A body of known length (or up to the close): the bytes of it in ``data``."""
        left = self.left
        if left is not None:
            if len(data) >= left:
                if len(data) > left:
                    self.keep = False  # more than the body: the connection is out of step
                data = data[:left]
                self.left = 0
                self._finish()
            else:
                self.left = left - len(data)
        return data

    def _dechunk(self, data: bytes) -> bytes:
        """The chunk data in ``data`` (after what an earlier read left unfinished), joined."""
        if self.buffered:
            data, self.buffered = self.buffered + data, b""
        out: list[bytes] = []
        position, size, state = 0, len(data), self.state
        left = self.left or 0
        while position < size:
            if state == _DATA:
                taken = min(left, size - position)
                out.append(data[position : position + taken])
                position += taken
                left -= taken
                if left:
                    break
                state = _DATA_END
            elif state == _DATA_END:
                if size - position < 2:
                    break
                if data[position : position + 2] != b"\r\n":
                    raise httpx2.RemoteProtocolError("a chunk of the body did not end where its size said")
                position += 2
                state = _SIZE
            elif state == _SIZE:
                end = data.find(b"\r\n", position)
                if end == -1:
                    if size - position > MAX_CHUNK_LINE:
                        raise httpx2.RemoteProtocolError("a chunk's size line is too long")
                    break
                digits = data[position:end].split(b";", 1)[0].strip()
                if not digits or digits.strip(b"0123456789abcdefABCDEF"):
                    raise httpx2.RemoteProtocolError(f"a malformed chunk size: {data[position:end][:40]!r}")
                left = int(digits, 16)
                position = end + 2
                state = _DATA if left else _TRAILERS
            else:  # _TRAILERS: header lines after the last chunk, up to a blank one
                end = data.find(b"\r\n", position)
                if end == -1:
                    if size - position > MAX_HEAD_BYTES:
                        raise httpx2.RemoteProtocolError("the body's trailers are too long")
                    break
                blank = end == position
                position = end + 2
                if blank:
                    state = _DONE
                    break
        self.state, self.left = state, left
        if state == _DONE:
            if position < size:
                self.keep = False  # more than the body: the connection is out of step
            self._finish()
        elif position < size:
            self.buffered = data[position:]
        return out[0] if len(out) == 1 else b"".join(out)

    def _finish(self) -> None:
        if not self.finished:
            self.finished = True
            if self.keep:
                self.owner._release(self.address, self.wire)
            else:
                self.wire.close()

    def _abandon(self) -> None:
        if not self.finished:
            self.finished = True
            self.wire.close()

    async def aclose(self) -> None:
        self._abandon()  # a body left before its end: its connection cannot carry another request


__all__ = ["PlainHTTPTransport"]
