"""kit.readahead.ReadAhead: what a body's source gives together comes at once, in order, failures after the bytes
before them, never reading more than its limit ahead, and stopped when closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from llmswitch.kit.readahead import ReadAhead


class Source:
    """Pieces in groups: each group is given without waiting (as h11 gives the chunks of one network read), and
    the next one only once the test lets it (``more``), as a network read would wait for the server."""

    def __init__(self, groups: list[list[bytes]], failure: Exception | None = None) -> None:
        self.groups, self.failure = groups, failure
        self.given = 0
        self.more = asyncio.Event()
        self.closed = False

    async def __call__(self) -> AsyncIterator[bytes]:
        try:
            for index, group in enumerate(self.groups):
                if index:
                    await self.more.wait()
                    self.more.clear()
                for piece in group:
                    self.given += 1
                    yield piece
            if self.failure is not None:
                raise self.failure
        finally:
            self.closed = True


def test_what_came_together_comes_at_once_and_what_came_apart_comes_apart() -> None:
    async def main() -> list[bytes]:
        source = Source([[b"a", b"b", b"c"], [b"d"], [b"e", b"f"]])
        ahead = ReadAhead(source())
        got = [await ahead.__anext__()]
        for _ in range(2):
            source.more.set()
            got.append(await ahead.__anext__())
        with pytest.raises(StopAsyncIteration):
            await ahead.__anext__()
        await ahead.aclose()
        return got

    assert asyncio.run(main()) == [b"abc", b"d", b"ef"]


def test_a_failure_comes_after_the_bytes_read_before_it() -> None:
    async def main() -> tuple[list[bytes], BaseException | None]:
        source = Source([[b"a", b"b"]], failure=ConnectionError("the server hung up"))
        ahead, got = ReadAhead(source()), []
        try:
            async for piece in ahead:
                got.append(piece)
        except ConnectionError as error:
            return got, error
        finally:
            await ahead.aclose()
        return got, None

    got, failure = asyncio.run(main())
    assert got == [b"ab"] and str(failure) == "the server hung up"


def test_it_reads_no_further_ahead_than_its_limit_and_stops_when_closed() -> None:
    """A reader that does not take (a slow client) holds the server back once ``limit`` bytes wait; closing it
    stops the reading task and closes the source (the connection)."""

    async def main() -> tuple[int, int, bool]:
        source = Source([[b"x" * 10] * 100])
        ahead = ReadAhead(source(), limit=35)
        await asyncio.sleep(0.05)
        waiting = source.given  # 4 pieces (40 bytes) are past the limit: it waits for the reader
        first = await ahead.__anext__()
        await asyncio.sleep(0.05)
        after = source.given
        await ahead.aclose()
        return waiting, len(first) + 10 * (after - waiting), source.closed

    waiting, taken_and_read_since, closed = asyncio.run(main())
    assert waiting == 4
    assert taken_and_read_since == 40 + 40  # the reader took 40 bytes: 40 more were read, then it waited again
    assert closed
