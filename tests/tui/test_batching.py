"""Text is handed to the screen in batches, and a batch left waiting is posted even when nothing follows it."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from llmswitch.tui.streaming import Batcher, TurnRun, later_on
from llmswitch.types import TextDelta

pytestmark = pytest.mark.anyio
INTERVAL = 0.2


async def test_text_that_arrives_just_after_a_post_is_shown_when_the_interval_is_up() -> None:
    posted: list[str] = []
    batcher = Batcher(TurnRun("q"), posted.append, INTERVAL, asyncio.get_running_loop().call_later)
    batcher.last_post = 0.0  # long ago: the first delta is posted at once
    batcher.take(TextDelta("a"))
    batcher.take(TextDelta("b"))  # within the interval: waits for the next post
    batcher.take(TextDelta("c"))
    assert posted == ["a"]
    deadline = time.monotonic() + 10
    while posted == ["a"] and time.monotonic() < deadline:  # then the server goes quiet
        await asyncio.sleep(0.01)
    assert posted == ["a", "bc"]


async def test_from_a_worker_thread_the_waiting_text_is_posted_on_the_loop() -> None:
    posted: list[tuple[str, bool]] = []
    loop_thread = threading.current_thread()
    batcher = Batcher(TurnRun("q"), lambda text: posted.append((text, threading.current_thread() is loop_thread)),
                      INTERVAL, later_on(asyncio.get_running_loop()))

    def worker() -> None:
        for text in ("x", "y"):
            batcher.take(TextDelta(text))  # both within the interval of creating the batcher

    await asyncio.to_thread(worker)
    assert posted == []
    deadline = time.monotonic() + 10
    while not posted and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert posted == [("xy", True)]


async def test_a_cancelled_answer_posts_nothing_more() -> None:
    posted: list[str] = []
    run = TurnRun("q")
    batcher = Batcher(run, posted.append, INTERVAL, asyncio.get_running_loop().call_later)
    batcher.take(TextDelta("late"))
    run.cancel.set()
    await asyncio.sleep(INTERVAL * 2)
    batcher.flush()
    assert posted == []
