"""Asking every line of a batch, at most ``concurrency`` at a time, and yielding results as they complete.

A fixed set of worker tasks pulls lines from one iterator, so memory stays flat however long the input is
(nothing is created per line before it is asked). Each call is the chat path's: the profile's ``acomplete``
(or ``complete`` in a thread) through :meth:`ResolvedProfile.aanswer_whole`, checked and charged by the call
itself as every call is (:mod:`llmswitch.accounting`), its rows on the run's one ledger (:class:`RunLedger`
commits the rows of the calls that finish together in one transaction). This module
never retries: retries, rate limits and routes are the profile's own (the router's), and what they did is
in each result's ``attempts``.

Stopping: :meth:`Runner.stop` lets the calls in flight finish and starts no new one (``--max-cost``);
cancelling the task that iterates :meth:`Runner.results` cancels the calls in flight (Ctrl-C), each charged
to the ledger as interrupted, as chat does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Protocol

from llmswitch.accounting import Books
from llmswitch.batch.inputs import BatchItem, Entry, InputError
from llmswitch.batch.results import BatchResult
from llmswitch.errors import BudgetExceededError, InternalError, LLMSwitchError

if TYPE_CHECKING:
    from llmswitch.client import ResolvedProfile
    from llmswitch.ledger import Ledger, LedgerEntry
    from llmswitch.pricing import ModelPrice

DEFAULT_CONCURRENCY = 8


class Gate(Protocol):
    """Asked before each line is sent (False: the batch stops there), told as soon as it is answered."""

    def admit(self, item: BatchItem) -> bool: ...

    def settle(self, result: BatchResult) -> None: ...


def problem_result(index: int, entry: Entry) -> BatchResult:
    """A line that could not be read, as a failed result that was never sent."""
    assert not isinstance(entry, BatchItem)
    error = InputError(entry.message, remedy=f"fix line {entry.line} of the input")
    return BatchResult(entry.id, entry.line, index, error=error)


class RunLedger:
    """The ledger side of one run: each call's rows, as chat records them, committed together with the rows of
    the calls that finish in the same turn of the event loop (one transaction per burst of answers instead of
    one per line), and each member's price looked up once.

    The commit is scheduled the moment a row arrives, before the result it charges is handed on, so a row is
    in the ledger before its line is in the checkpoint or OUTPUT, as when each row had its own transaction.
    """

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.rows: list[LedgerEntry] = []
        self.prices: dict[str, ModelPrice] = {}

    def append(self, entry: LedgerEntry) -> None:
        if not self.rows:
            asyncio.get_running_loop().call_soon(self.commit)
        self.rows.append(entry)

    def commit(self) -> None:
        """Write the rows waiting; a ledger that cannot be written is logged, never raised (as for a call)."""
        rows, self.rows = self.rows, []
        if not rows:
            return
        try:
            self.ledger.append_all(rows)
        except LLMSwitchError as error:
            from llmswitch.lazy import logger
            from llmswitch.secrets import redact

            logger(__name__).warning("usage not recorded: %s", redact(error.message))

    @property
    def books(self) -> Books:
        """What each call of the run is charged with: these rows, the prices looked up once, checked already."""
        return Books(ledger=self, checked=True, inline=True, prices=self.prices)


async def answer(resolved: ResolvedProfile, item: BatchItem, index: int, books: RunLedger) -> BatchResult:
    """Ask one line and charge it; a failure is a result (with ``error``), never an exception.

    The result names the member that answered (``result.resolved``: the profile itself unless it is a route)
    and every attempt the router made (``result.attempts``); each failed attempt gets its ledger row, as in chat.
    """
    try:
        request = item.request(resolved)
        # Here, so that a refusal stops the batch before this line (a route's own budget covers its members).
        await resolved.acheck_before_sending(request)
        # Charged by the call when it ends (also when cancelled: as interrupted), on this loop: the run's rows
        # are committed from this thread only.
        result = resolved.aanswer_whole(request, books=books.books)
    except BudgetExceededError:
        raise  # every later line would be refused too: the batch stops
    except LLMSwitchError as error:
        return BatchResult(item.id, item.line, index, profile=resolved.name, error=error)
    async with result:
        async for _event in result:
            pass
    cost = result.cost
    answered_by = result.resolved
    return BatchResult(
        item.id, item.line, index, text=result.text, finish_reason=result.finish_reason, usage=result.usage,
        cost=cost, model=result.model or answered_by.target.model, profile=answered_by.name,
        latency_s=result.latency_s, attempts=tuple(result.attempts), error=result.error, cached=result.cached,
    )


class Runner:
    """One pass over ``entries`` (index, item or unreadable line) on ``resolved``.

    ``gate`` is asked before each line is sent; False stops the batch there (that line and the rest are not
    sent). ``ledger``: an open ledger for every call's rows (default: opened for the run).
    """

    def __init__(self, resolved: ResolvedProfile, entries: Iterable[tuple[int, Entry]], *,
                 concurrency: int = DEFAULT_CONCURRENCY, gate: Gate | None = None,
                 ledger: Ledger | None = None) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.resolved = resolved
        self.entries: Iterator[tuple[int, Entry]] = iter(entries)
        self.concurrency = concurrency
        self.gate = gate
        self.ledger = ledger
        self.stopped = False
        self.stop_reason: BudgetExceededError | None = None
        self.in_flight = 0

    def stop(self) -> None:
        """Start no new call; those in flight finish and are yielded."""
        self.stopped = True

    async def results(self) -> AsyncIterator[BatchResult]:
        if self.ledger is None:  # one ledger for the run: opening the file for every row costs more than a call
            from llmswitch.ledger import Ledger

            with Ledger() as self.ledger:
                async for result in self.results():
                    yield result
            return
        books = RunLedger(self.ledger)
        done: asyncio.Queue[BatchResult | None] = asyncio.Queue()
        workers = [asyncio.create_task(self._work(done, books)) for _ in range(self.concurrency)]
        running = len(workers)
        try:
            while running:
                finished = await done.get()
                if finished is None:
                    running -= 1
                else:
                    books.commit()  # its row (and those of the calls that ended with it), before it is handed on
                    yield finished
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            books.commit()  # the rows of calls cancelled just now (Ctrl-C), charged as interrupted

    async def _work(self, done: asyncio.Queue[BatchResult | None], books: RunLedger) -> None:
        try:
            for index, entry in self.entries:  # one iterator shared by every worker: each line is taken once
                if not isinstance(entry, BatchItem):
                    done.put_nowait(problem_result(index, entry))
                elif self.stopped or (self.gate is not None and not self.gate.admit(entry)):
                    self.stopped = True
                    return
                else:
                    self.in_flight += 1
                    try:
                        result = await answer(self.resolved, entry, index, books)
                        if self.gate is not None:
                            self.gate.settle(result)  # before this worker takes its next line
                        done.put_nowait(result)
                        # The consumer, woken by the put, runs first and commits the result before this worker
                        # sends its next line: a kill then costs only the calls in flight, never one that was
                        # answered as well (a request can reach the server within this same step).
                        await asyncio.sleep(0)
                    except BudgetExceededError as refused:
                        self.stop_reason, self.stopped = refused, True
                        return
                    except Exception as bug:  # a failed line, never a missing one (nor a dead worker)
                        done.put_nowait(BatchResult(entry.id, entry.line, index, profile=self.resolved.name,
                                                    error=InternalError.of(bug)))
                    finally:
                        self.in_flight -= 1
                if self.stopped:
                    return
        finally:
            done.put_nowait(None)


async def run(resolved: ResolvedProfile, prompts: Iterable[str | BatchItem], *,
              concurrency: int = DEFAULT_CONCURRENCY) -> AsyncIterator[BatchResult]:
    """Ask every prompt (a string, or a :class:`BatchItem` with its own id and settings) on ``resolved``,
    ``concurrency`` at a time; yield each :class:`BatchResult` as it completes. Strings get their position
    (from 1) as id."""
    entries = ((index, prompt if isinstance(prompt, BatchItem) else BatchItem(index + 1, index + 1, prompt))
               for index, prompt in enumerate(prompts))
    runner = Runner(resolved, entries, concurrency=concurrency)
    async for result in runner.results():
        yield result
    if runner.stop_reason is not None:
        raise runner.stop_reason
