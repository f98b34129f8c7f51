"""Running a sync hook under the async API and an async hook under the sync API.

- :func:`iterate_in_thread`: a sync generator driven from async code. A worker thread owns the generator and
  hands each event to the event loop; when the consumer stops (cancelled task, ``aclose``, an error), the
  thread stops at the next event and closes the generator there, so its ``finally`` (closing a connection,
  stopping generation) runs in the thread that ran it. The event loop never blocks on the plugin.
- :class:`Portal`: async code driven from sync code. One event loop in one daemon thread for the process
  (async clients and their connection pools live on it and are reused across calls); sync callers submit
  coroutines and wait for them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_END = object()


async def iterate_in_thread(start: Callable[[], Iterator[T]]) -> AsyncIterator[T]:
    """Iterate ``start()`` (called in the worker thread too) without blocking the running loop."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[Any, BaseException | None]] = asyncio.Queue()
    stop = threading.Event()

    def put(item: Any, error: BaseException | None = None) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (item, error))
        except RuntimeError:  # the loop is closed: nobody is listening any more
            stop.set()

    def produce() -> None:
        iterator: Iterator[T] | None = None
        try:
            iterator = start()
            for item in iterator:
                if stop.is_set():
                    break
                put(item)
                if stop.is_set():
                    break
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            put(_END, exc)
            return
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                try:
                    close()  # the generator's finally runs here, in its own thread
                except Exception:
                    pass
        put(_END)

    thread = threading.Thread(target=produce, name="llmswitch-stream", daemon=True)
    thread.start()
    try:
        while True:
            item, error = await queue.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item
    finally:
        stop.set()


class Portal:
    """One background event loop for sync callers of async hooks."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            with self._lock:
                if self._loop is None:
                    loop = asyncio.new_event_loop()
                    threading.Thread(target=loop.run_forever, name="llmswitch-portal", daemon=True).start()
                    self._loop = loop
        return self._loop

    def run(self, awaitable: Awaitable[T]) -> T:
        """Wait for a coroutine on the portal's loop; Ctrl-C cancels it there."""

        async def wrapper() -> T:
            return await awaitable

        future = asyncio.run_coroutine_threadsafe(wrapper(), self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def iterate(self, start: Callable[[], AsyncIterator[T]]) -> Iterator[T]:
        """Iterate an async iterator from sync code; closing the generator closes (``aclose``) the source."""
        source = self.run(_call(start))
        try:
            while True:
                try:
                    item = self.run(source.__anext__())
                except StopAsyncIteration:
                    return
                yield item
        finally:
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                try:
                    self.run(aclose())
                except Exception:
                    pass


async def _call(start: Callable[[], T]) -> T:
    return start()  # on the portal's loop: an async generator binds to the loop that first iterates it


portal = Portal()
