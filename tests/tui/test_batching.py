"""Text is handed to the screen in batches, and a batch left waiting is posted even when nothing follows it.

The batcher's clock is stopped here: "within the interval" is then true however long a busy machine takes
between two steps of a test, and each test waits for the state it needs (a post, a timer that ran) with a
generous deadline instead of sleeping a fixed time."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

from llmswitch.tui.streaming import Batcher, TurnRun, later_on
from llmswitch.types import TextDelta

pytestmark = pytest.mark.anyio
INTERVAL = 0.2
DEADLINE_S = 30  # only ends a stuck test; each wait returns as soon as its state is reached


def stopped_clock(at: float = 1000.0) -> Callable[[], float]:
    """A clock that never moves: every take falls within the interval of the last post."""
    return lambda: at


async def until(condition: Callable[[], object]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {condition}"
        await asyncio.sleep(0.01)


async def test_text_that_arrives_just_after_a_post_is_shown_when_the_interval_is_up() -> None:
    posted: list[str] = []
    batcher = Batcher(TurnRun("q"), posted.append, INTERVAL, asyncio.get_running_loop().call_later,
                      clock=stopped_clock())
    batcher.last_post = 0.0  # long ago: the first delta is posted at once
    batcher.take(TextDelta("a"))
    batcher.take(TextDelta("b"))  # within the interval: waits for the next post
    batcher.take(TextDelta("c"))
    assert posted == ["a"]
    await until(lambda: posted != ["a"])  # then the server goes quiet: the timer posts what waits
    assert posted == ["a", "bc"]


async def test_from_a_worker_thread_the_waiting_text_is_posted_on_the_loop() -> None:
    posted: list[tuple[str, bool]] = []
    loop_thread = threading.current_thread()
    batcher = Batcher(TurnRun("q"), lambda text: posted.append((text, threading.current_thread() is loop_thread)),
                      INTERVAL, later_on(asyncio.get_running_loop()), clock=stopped_clock())

    def worker() -> None:
        for text in ("x", "y"):
            batcher.take(TextDelta(text))  # both within the interval of creating the batcher

    await asyncio.to_thread(worker)
    assert posted == []
    await until(lambda: posted)
    assert posted == [("xy", True)]


async def test_a_cancelled_answer_posts_nothing_more() -> None:
    posted: list[str] = []
    timers_run: list[float] = []
    loop = asyncio.get_running_loop()

    def later(delay: float, callback: Callable[[], None]) -> object:
        def run_and_note() -> None:
            callback()
            timers_run.append(delay)
        return loop.call_later(delay, run_and_note)

    run = TurnRun("q")
    batcher = Batcher(run, posted.append, INTERVAL, later, clock=stopped_clock())
    batcher.take(TextDelta("late"))
    run.cancel.set()
    await until(lambda: timers_run)  # the timer that would have posted "late" has run
    batcher.flush()
    assert posted == []
