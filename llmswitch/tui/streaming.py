"""Running a turn in a worker thread and handing its text to the UI in batches.

Backend hooks are synchronous generators, so a turn is iterated in a thread. Posting every delta would
flood the UI's message queue (a fast local model yields thousands a second), so text is batched: a batch is
posted when ``interval`` seconds have passed since the last one, and at the end. Cancelling sets an event
that is checked between events; the turn is then closed, which keeps the partial text and records it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from llmswitch.conversation import Turn
from llmswitch.errors import LLMSwitchError, PluginError
from llmswitch.types import StreamError, TextDelta

BATCH_INTERVAL_S = 1 / 30  # about one screen refresh: faster posting cannot show more


@dataclass
class TurnRun:
    """One answer being produced: the cancel switch, and when it has fully stopped."""

    prompt: str
    cancel: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    turn: Turn | None = None
    error: LLMSwitchError | None = None  # a failure before any event (budget, missing key, plugin)

    @property
    def cancelled(self) -> bool:
        return self.cancel.is_set()


def run_turn(
    run: TurnRun,
    start: Callable[[str], Turn],
    on_text: Callable[[str], object],
    on_done: Callable[[TurnRun], object],
    *,
    interval: float = BATCH_INTERVAL_S,
) -> None:
    """Start the turn with ``start(prompt)`` and iterate it, calling ``on_text`` with batches of text and
    ``on_done`` once at the end whatever happens. Runs in a worker thread; the callbacks must be safe to call
    from one (``post_message`` is)."""
    try:
        try:
            run.turn = start(run.prompt)
        except LLMSwitchError as error:
            run.error = error
            return
        except Exception as error:  # noqa: BLE001 - a bug must show as a message, not end the app
            run.error = PluginError(f"unexpected failure starting the answer: {type(error).__name__}: {error}",
                                    remedy="run with LLMSWITCH_DEBUG=1 for the traceback, and report it")
            return
        pending: list[str] = []
        last_post = time.perf_counter()
        events = iter(run.turn)
        try:
            for event in events:
                if run.cancel.is_set():
                    break
                if type(event) is TextDelta:
                    pending.append(event.text)
                    now = time.perf_counter()
                    if now - last_post >= interval:
                        on_text("".join(pending))
                        pending.clear()
                        last_post = now
                elif type(event) is StreamError:
                    break
        finally:
            events.close()  # type: ignore[attr-defined]  # a generator: closing marks the result interrupted
            run.turn.finish()
            if pending and not run.cancel.is_set():
                on_text("".join(pending))
    finally:
        run.done.set()
        on_done(run)
