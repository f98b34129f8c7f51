"""Running a turn and handing its text to the UI in batches: in a worker thread, or on Textual's own loop.

A backend with async hooks (``astream``) is iterated on the app's event loop (:func:`arun_turn`): no thread per
turn. A backend with only sync hooks is iterated in a worker thread (:func:`run_turn`). Both share the rules:
text is batched (:class:`Batcher`: a batch is posted when ``interval`` seconds have passed since the last one,
by a timer if nothing else arrives, and at the end), because posting every delta would flood the UI (a fast local model yields thousands a
second); cancelling sets an event checked between events (and, on the loop, cancels the task, so a stalled
stream stops at once); the turn is then finished, which keeps the partial text and records it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from llmswitch.conversation import AsyncTurn, Turn
from llmswitch.errors import LLMSwitchError, PluginError
from llmswitch.types import StreamError, StreamEvent, TextDelta

BATCH_INTERVAL_S = 1 / 30  # about one screen refresh: faster posting cannot show more


@dataclass
class TurnRun:
    """One answer being produced: the cancel switch, and when it has fully stopped."""

    prompt: str
    cancel: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    turn: Turn | AsyncTurn | None = None
    error: LLMSwitchError | None = None  # a failure before any event (budget, missing key, plugin)
    task: Any = None  # the asyncio task of an answer streamed on the app's loop, to cancel it at once

    @property
    def cancelled(self) -> bool:
        return self.cancel.is_set()


Later = Callable[[float, Callable[[], None]], object]  # "call this in so many seconds", on the app's loop


def later_on(loop: Any) -> Later:
    """A :data:`Later` usable from any thread, running the call on ``loop`` (the app's)."""
    return lambda delay, callback: loop.call_soon_threadsafe(loop.call_later, delay, callback)


class Batcher:
    """The state both runners share: pending text, when it was last posted, whether to stop.

    Text that arrives less than ``interval`` after the last post waits for the next one, and ``later`` posts
    it when the interval is up even if nothing else arrives: a server that goes quiet after a few quick
    chunks must not keep them off the screen (they are what the reader waits on). ``clock`` reads the time
    (a test stops it, so "within the interval" does not depend on how busy the machine is)."""

    def __init__(self, run: TurnRun, on_text: Callable[[str], object], interval: float,
                 later: Later | None = None, clock: Callable[[], float] = time.perf_counter) -> None:
        self.run, self.on_text, self.interval, self.later, self.clock = run, on_text, interval, later, clock
        self.pending: list[str] = []
        self.last_post = clock()
        self._lock = threading.Lock()  # the runner and a timer on the loop may both post
        self._scheduled = False

    def take(self, event: StreamEvent) -> bool:
        """Note one event; False when the loop should stop (cancelled, or the stream failed)."""
        if self.run.cancel.is_set():
            return False
        if type(event) is TextDelta:
            with self._lock:
                self.pending.append(event.text)
                waited = self.clock() - self.last_post
                if waited >= self.interval:
                    self._post()
                elif not self._scheduled and self.later is not None:
                    self._scheduled = True
                    self.later(self.interval - waited, self._post_due)
        elif type(event) is StreamError:
            return False
        return True

    def _post(self) -> None:
        self.on_text("".join(self.pending))
        self.pending.clear()
        self.last_post = self.clock()

    def _post_due(self) -> None:
        with self._lock:
            self._scheduled = False
            if self.pending and not self.run.cancel.is_set():
                self._post()

    def flush(self) -> None:
        with self._lock:
            if self.pending and not self.run.cancel.is_set():
                self._post()


def start_failure(error: Exception) -> LLMSwitchError:
    if isinstance(error, LLMSwitchError):
        return error
    return PluginError(f"unexpected failure starting the answer: {type(error).__name__}: {error}",
                       remedy="run with LLMSWITCH_DEBUG=1 for the traceback, and report it")


def run_turn(
    run: TurnRun,
    start: Callable[[str], Turn],
    on_text: Callable[[str], object],
    on_done: Callable[[TurnRun], object],
    *,
    interval: float = BATCH_INTERVAL_S,
    later: Later | None = None,
) -> None:
    """Start the turn with ``start(prompt)`` and iterate it in this (worker) thread, calling ``on_text`` with
    batches of text and ``on_done`` once at the end whatever happens. The callbacks must be safe to call
    from a thread (``post_message`` is); ``later`` (see :func:`later_on`) posts text left waiting."""
    try:
        try:
            turn = run.turn = start(run.prompt)
        except Exception as error:  # noqa: BLE001 - a bug must show as a message, not end the app
            run.error = start_failure(error)
            return
        batcher = Batcher(run, on_text, interval, later)
        events = iter(turn)
        try:
            for event in events:
                if not batcher.take(event):
                    break
        finally:
            events.close()  # type: ignore[attr-defined]  # a generator: closing marks the result interrupted
            turn.finish()
            batcher.flush()
    finally:
        run.done.set()
        on_done(run)


async def arun_turn(
    run: TurnRun,
    start: Callable[[str], Awaitable[AsyncTurn]],
    on_text: Callable[[str], object],
    on_done: Callable[[TurnRun], object],
    *,
    interval: float = BATCH_INTERVAL_S,
) -> None:
    """:func:`run_turn` on the running event loop, for a backend with async hooks."""
    import asyncio

    run.task = asyncio.current_task()
    try:
        try:
            turn = run.turn = await start(run.prompt)
        except Exception as error:  # noqa: BLE001
            run.error = start_failure(error)
            return
        batcher = Batcher(run, on_text, interval, asyncio.get_running_loop().call_later)
        try:
            async with turn:  # closes the stream and records the turn however the loop ends
                async for event in turn:
                    if not batcher.take(event):
                        break
        except asyncio.CancelledError:
            pass  # Esc on a stalled stream: the connection is closed and the partial text kept
        finally:
            batcher.flush()
    finally:
        run.done.set()
        on_done(run)
