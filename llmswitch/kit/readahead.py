"""Reading a response body ahead, so that what one network read brought is handed over at once.

httpx2 hands a body over in the pieces its HTTP parser (h11) makes of it: one per HTTP chunk. A fast server's
chunks are small (a few KB) and many come in one network read (64 KB), so a relay handed them one at a time pays
its whole per-piece cost (decoding, its bookkeeping, a write and the client's wake-up) for each: some 40 writes
for a 2,000-token answer instead of about 10. :class:`ReadAhead` reads the pieces in a task of its own as they
come, and each step of its reader takes everything read so far, joined: the pieces of one network read
together, as they arrived, never waiting for more than there is.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

LIMIT_BYTES = 256 * 1024  # read ahead at most this far beyond the reader (a slow client holds the server back)
# The response extension of a transport whose body steps are already everything that arrived since the last one,
# read ahead by the event loop as it arrives (llmswitch.kit.http11): such a body needs no ReadAhead.
WHOLE_READS = "llmswitch.whole_reads"


class ReadAhead:
    """The bytes of ``chunks`` in the pieces that arrived together (an async iterator of bytes).

    A failure reading comes after the bytes read before it, as reading ``chunks`` directly would give them.
    :meth:`aclose` stops the reading task (and must be called before the response it reads is closed)."""

    __slots__ = ("_chunks", "_limit", "_read", "_size", "_ended", "_failure", "_loop", "_wake", "_room", "_task")

    def __init__(self, chunks: AsyncIterator[bytes], limit: int = LIMIT_BYTES) -> None:
        self._chunks, self._limit = chunks, limit
        self._read: list[bytes] = []
        self._size = 0
        self._ended = False
        self._failure: Exception | None = None
        self._loop = asyncio.get_running_loop()
        self._wake: asyncio.Future[None] | None = None  # the reader, waiting for bytes
        self._room: asyncio.Future[None] | None = None  # the task, waiting for the reader to take some
        self._task = asyncio.ensure_future(self._read_ahead())

    async def _read_ahead(self) -> None:
        try:
            async for chunk in self._chunks:
                self._read.append(chunk)
                self._size += len(chunk)
                self._wake_reader()
                if self._size >= self._limit:
                    self._room = self._loop.create_future()
                    await self._room
        except Exception as exc:  # the reader's to raise, after the bytes before it
            self._failure = exc
        finally:
            self._ended = True
            self._wake_reader()
            close = getattr(self._chunks, "aclose", None)
            if close is not None:  # stopped early (closed, or a failure): the source lets go of what it holds
                try:
                    await close()
                except Exception:
                    pass

    def _wake_reader(self) -> None:
        wake, self._wake = self._wake, None
        if wake is not None and not wake.done():
            wake.set_result(None)

    def __aiter__(self) -> ReadAhead:
        return self

    async def __anext__(self) -> bytes:
        while not self._read:
            if self._ended:
                failure, self._failure = self._failure, None
                if failure is not None:
                    raise failure
                raise StopAsyncIteration
            self._wake = self._loop.create_future()
            await self._wake
        read = self._read
        chunk = read[0] if len(read) == 1 else b"".join(read)
        read.clear()
        self._size = 0
        room, self._room = self._room, None
        if room is not None and not room.done():
            room.set_result(None)
        return chunk

    async def aclose(self) -> None:
        """Stop reading ahead (a no-op once the body was read to its end)."""
        if not self._task.done():
            self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
