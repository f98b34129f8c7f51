"""A whole batch run: input to OUTPUT, checkpointed, resumable, within a cost limit. The CLI is a layer on this.

    with BatchJob(client, BatchOptions("questions.jsonl", "answers.jsonl", profile="fast", concurrency=20)) as job:
        plan = job.prepare()            # locks OUTPUT, reads and checks the input, prices it; nothing sent yet
        summary = await job.run(plan)   # asks every line not done yet; each result committed, then written

The order of things is what makes a crash cost nothing: a result is committed to the checkpoint
(:mod:`llmswitch.store.checkpoint`) and only then written to OUTPUT. On ``--resume`` OUTPUT's half-written last
line (if any) is cut off, the results the checkpoint has and OUTPUT lacks are written, and only the lines
with no result are asked. Without ``--resume``, an input already started, or an OUTPUT that already holds
something, is refused rather than overwritten (``--restart`` starts over). One run at a time writes an OUTPUT
(:mod:`llmswitch.batch.output_lock`): a second one is refused, naming the first, until the job is closed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from llmswitch.batch.estimate import BatchEstimate, estimate_batch
from llmswitch.batch.inputs import BatchInput, BatchItem, Entry, InputFormat, read_input
from llmswitch.batch.output import STDOUT, OutputError, OutputWriter, drop_failed, read_existing
from llmswitch.batch.output_lock import OutputLock
from llmswitch.batch.results import BatchResult, Record, record_failed
from llmswitch.batch.runner import DEFAULT_CONCURRENCY, Runner
from llmswitch.errors import BudgetExceededError, ConfigError
from llmswitch.store.checkpoint import Checkpoint, RunKey
from llmswitch.wording import counted

if TYPE_CHECKING:
    from llmswitch.batch.provider import Submitted
    from llmswitch.client import Client, ResolvedProfile


class CostLimitError(BudgetExceededError):
    """``--max-cost`` refused the batch, or stopped it."""

    kind = "max_cost"


@dataclass
class BatchOptions:
    """What ``llmswitch batch`` was asked to do (see ``llmswitch batch --help``)."""

    input: str
    output: str
    profile: str | None = None
    model: str | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    resume: bool = False
    retry_failed: bool = False
    restart: bool = False
    max_cost: float | None = None
    ordered: bool = False
    format: InputFormat | None = None
    prompt_column: str | None = None
    via_provider: bool = False  # the provider's batch service instead of line by line


@dataclass
class Plan:
    """What a run will do, known before anything is sent."""

    batch: BatchInput
    resolved: ResolvedProfile
    key: RunKey
    pending: list[tuple[int, Entry]]  # (position in the input, line) still to ask
    replay: list[Record]  # results the checkpoint has and OUTPUT lacks
    written: set[str]  # ids OUTPUT already holds
    estimate: BatchEstimate
    done_before: int  # lines with a result from an earlier run
    failed_before: int = 0  # of which failed
    repaired: bool = False  # OUTPUT's half-written last line was cut off
    retrying: int = 0  # failed lines forgotten for --retry-failed
    in_jobs: int = 0  # lines in provider jobs not collected yet (--via provider)

    @property
    def total(self) -> int:
        return len(self.batch.entries)


@dataclass
class Summary:
    """How a run ended; ``stopped`` says why it ended early, if it did."""

    total: int
    done_before: int = 0
    answered: int = 0
    failed: int = 0
    cached: int = 0  # answered from the response cache
    cost_usd: float = 0.0
    unpriced: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    started: float = field(default_factory=time.perf_counter)
    elapsed_s: float = 0.0
    stopped: str | None = None
    interrupted: bool = False
    waiting: int = 0  # --ordered results kept in the checkpoint for want of a line before them

    @property
    def done(self) -> int:
        return self.done_before + self.answered

    def take(self, result: BatchResult) -> None:
        """Count one line that just finished."""
        self.answered += 1
        self.failed += not result.ok
        self.cached += result.cached
        cost = result.cost
        if cost is not None:
            if cost.usd is None and result.ok:
                self.unpriced += 1
            self.cost_usd += cost.usd or 0.0
            self.input_tokens += cost.input_tokens or 0
            self.output_tokens += cost.output_tokens or 0

    def line(self) -> str:
        from llmswitch.pricing import format_usd

        parts = [f"{self.done:,}/{counted(self.total, 'line')} done"]
        if self.done_before:
            parts.append(f"{self.done_before:,} from an earlier run")
        parts.append(f"{self.failed:,} failed")
        if self.cached:
            parts.append(f"{self.cached:,} from the response cache")
        cost = format_usd(self.cost_usd) + (f" (+{self.unpriced} unpriced)" if self.unpriced else "")
        parts.append(f"{self.input_tokens:,} in + {self.output_tokens:,} out tokens, {cost}")
        parts.append(f"{self.elapsed_s:.1f}s")
        return "batch: " + ", ".join(parts)


class Progress:
    """Told about the run as it goes; the CLI draws a progress bar or prints one line at the end."""

    def started(self, plan: Plan) -> None: ...

    def advanced(self, result: BatchResult, summary: Summary) -> None: ...

    def finished(self, summary: Summary) -> None: ...


class BatchJob:
    """One ``llmswitch batch`` run (see the module docstring)."""

    def __init__(self, client: Client, options: BatchOptions, *, stdin: Callable[[], bytes] | None = None) -> None:
        self.client = client
        self.options = options
        self.stdin = stdin or (lambda: sys.stdin.buffer.read())
        self.summary: Summary | None = None
        self._lock = OutputLock(options.output) if options.output != STDOUT else None

    def __enter__(self) -> BatchJob:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Give up OUTPUT's lock (taken by :meth:`prepare`), so another run may write it."""
        if self._lock is not None:
            self._lock.release()

    # ---- before anything is sent ----------------------------------------------------------------------

    def prepare(self) -> Plan:
        options = self.options
        if options.concurrency < 1:
            raise ConfigError(f"--concurrency {options.concurrency}: must be at least 1",
                              remedy="for example --concurrency 8")
        if options.output != STDOUT and Path(options.output).is_dir():
            raise OutputError(f"OUTPUT {options.output} is a folder; the results go to one file",
                              remedy=f"name a file, e.g. -o {Path(options.output) / 'answers.jsonl'}")
        if self._lock is not None:
            self._lock.acquire()  # before OUTPUT is read, repaired or removed; held until close()
        data = self.stdin() if options.input == STDOUT else None
        batch = read_input(options.input, data=data, format=options.format, prompt_column=options.prompt_column)
        resolved = self.client.resolve(options.profile, model=options.model)
        key = RunKey(batch.digest, resolved.name)
        output = options.output
        to_file = output != STDOUT
        resume = options.resume or options.retry_failed
        if options.via_provider:
            from llmswitch.batch.provider import limits_of

            limits_of(resolved)  # refused before anything else when the backend has no batch service
            if not to_file:
                raise ConfigError("--via provider needs an OUTPUT file: the results arrive later, maybe in "
                                  "another process", remedy="give -o a file name")
        with Checkpoint() as checkpoint:
            if options.restart:
                checkpoint.forget(key)
                if to_file:
                    Path(output).unlink(missing_ok=True)
            elif not resume:
                self._refuse_overwrite(checkpoint, key, batch)
            retrying = 0
            if options.retry_failed:
                retrying = checkpoint.forget(key, failed_only=True)
                if to_file and Path(output).exists():
                    retrying = max(retrying, drop_failed(Path(output)))
            existing = read_existing(Path(output)) if to_file and resume else None
            done = dict(checkpoint.results(key))
            waiting = {str(entry[0]) for job in checkpoint.jobs(key=key, open_only=True) for entry in job.lines.values()}
        written = existing.keys if existing is not None else set()
        known = set(done) | written
        pending = [(index, entry) for index, entry in enumerate(batch.entries)
                   if entry.key not in known and entry.key not in waiting]
        replay = [record for item_key, record in done.items() if item_key not in written]
        estimate = estimate_batch(resolved, [entry for _, entry in pending if isinstance(entry, BatchItem)],
                                  batch_price=options.via_provider)
        failed = {item_key for item_key, record in done.items() if record_failed(record)}
        if existing is not None:
            failed = (failed - (existing.keys - existing.failed)) | existing.failed
        plan = Plan(batch, resolved, key, pending, replay, written, estimate, done_before=len(known),
                    failed_before=len(failed & known), repaired=existing is not None and existing.repaired,
                    retrying=retrying, in_jobs=len(waiting))
        self._check_cost(plan)
        return plan

    def _refuse_overwrite(self, checkpoint: Checkpoint, key: RunKey, batch: BatchInput) -> None:
        output = self.options.output
        started = checkpoint.count(key)
        if started:
            earlier = next((run.output for run in checkpoint.runs() if run.key == key), None)
            wrote = f" (which wrote {earlier})" if earlier and earlier != output else ""
            total = len(batch.entries)
            some = f"{started:,} of the {counted(total, 'line')}" if started < total else \
                ("the line" if total == 1 else f"all {total:,} lines")
            raise ConfigError(
                f"{some} of {batch.name} already {'has' if started == 1 else 'have'} a "
                f"result on profile '{key.profile}' from an earlier run{wrote}",
                remedy="add --resume to finish that run (only the lines without a result are asked; the results "
                "it has are written to this OUTPUT too), or --restart to ask every line again",
            )
        if output != STDOUT and Path(output).exists() and Path(output).stat().st_size:
            raise OutputError(f"{output} already exists and is not empty",
                              remedy="choose another OUTPUT, remove it, or add --restart to overwrite it "
                              "(--resume if it holds this batch's results)")

    def _check_cost(self, plan: Plan) -> None:
        limit = self.options.max_cost
        if limit is None or not plan.estimate.lines:
            return
        from llmswitch.pricing import format_usd

        usd = plan.estimate.usd
        if usd is None:
            unknown = list(plan.estimate.unpriced.values())
            named = ", ".join(f"{u.model} ({u.profile}: {u.source})" for u in unknown)
            sections = " and ".join(f"[profiles.{u.profile}]" for u in unknown)
            raise CostLimitError(
                f"--max-cost {format_usd(limit)}: the price of {named} is unknown, so the batch was not started",
                remedy=f"set price_input_per_mtok and price_output_per_mtok in {sections}, or leave out --max-cost",
            )
        if usd > limit:
            raise CostLimitError(
                f"this batch could cost up to {format_usd(usd)} ({plan.estimate.describe()}), more than "
                f"--max-cost {format_usd(limit)}; nothing was sent",
                remedy="set max_tokens (per line or in the profile) to bound the answers, raise --max-cost, or "
                "split the input",
            )

    # ---- the run ----------------------------------------------------------------------------------------

    async def run(self, plan: Plan, progress: Progress | None = None) -> Summary:
        """Ask every pending line; returns the summary (also kept on ``self.summary`` if the run is cancelled)."""
        progress = progress or Progress()
        options = self.options
        summary = self.summary = Summary(plan.total, done_before=plan.done_before, failed=plan.failed_before)
        order = [entry.key for entry in plan.batch.entries] if options.ordered else []
        limit = CostGate(options.max_cost, plan.estimate) if options.max_cost is not None else None
        from llmswitch.ledger import Ledger

        try:
            with Checkpoint() as checkpoint, Ledger() as ledger, \
                    OutputWriter(options.output, ordered=options.ordered, order=order, written=plan.written) as writer:
                checkpoint.start_run(plan.key, input_name=plan.batch.name, output=options.output, lines=plan.total)
                for record in plan.replay:
                    writer.write(record)
                progress.started(plan)
                runner = Runner(plan.resolved, plan.pending, concurrency=options.concurrency,
                                gate=limit, ledger=ledger)
                try:
                    async for result in runner.results():
                        record = result.record()
                        checkpoint.save(plan.key, result.key, result.line, record, failed=not result.ok)
                        writer.write(record)  # after the commit: a kill between the two is repaired by --resume
                        summary.take(result)
                        progress.advanced(result, summary)
                except BaseException:
                    summary.interrupted = True
                    raise
                finally:
                    summary.elapsed_s = time.perf_counter() - summary.started
                    summary.waiting = writer.waiting
                    if runner.stop_reason is not None:
                        summary.stopped = runner.stop_reason.message
                    elif runner.stopped and limit is not None:
                        summary.stopped = limit.reason()
                    progress.finished(summary)
        finally:
            self.close()  # the run is over, however it ended: OUTPUT is free for the next run (a library
            # caller that never closes the job does not hold it until exit)
        return summary


    def submit(self, plan: Plan) -> Submitted:
        """``--via provider``: send the pending lines to the provider's batch service as jobs (their ids
        committed one by one); lines that cannot be sent are failed results at once."""
        from llmswitch.batch.provider import submit, write_in_order
        from llmswitch.batch.runner import problem_result

        items = [(index, entry) for index, entry in plan.pending if isinstance(entry, BatchItem)]
        summary = self.summary = Summary(plan.total, done_before=plan.done_before, failed=plan.failed_before)
        output, ordered = self.options.output, self.options.ordered
        with Checkpoint() as checkpoint:
            checkpoint.start_run(plan.key, input_name=plan.batch.name, output=output, lines=plan.total)
            submitted = submit(plan.resolved, plan.key, items, checkpoint=checkpoint, input_name=plan.batch.name,
                               output=output, ordered=ordered)
            failed = [problem_result(index, entry) for index, entry in plan.pending
                      if not isinstance(entry, BatchItem)] + submitted.refused
            for result in failed:
                checkpoint.save(plan.key, result.key, result.line, result.record(), failed=True)
                summary.take(result)
            if ordered:  # every line after the first one in a job waits for that job to be collected
                summary.waiting = write_in_order(checkpoint, plan.key, output)
            else:
                with OutputWriter(output, written=plan.written) as writer:
                    for record in [*plan.replay, *(result.record() for result in failed)]:
                        writer.write(record)
        return submitted


class CostGate:
    """``--max-cost`` while the batch runs: a line is sent only if what was spent, plus the worst case of every
    call in flight, plus its own worst case, stays within the limit.

    A line's worst case is its estimate (input counted, ``max_tokens`` out), or the dearest line answered so far
    when that cost more (a server that ignores ``max_tokens``): then only the first calls in flight can pass
    the limit, by what they cost beyond their estimate.
    """

    def __init__(self, limit: float, estimate: BatchEstimate) -> None:
        self.limit = limit
        self.worst = estimate.worst_usd
        self.dearest = 0.0
        self.spent = 0.0
        self.held: dict[str, float] = {}

    def admit(self, item: BatchItem) -> bool:
        worst = max(self.worst.get(item.key, 0.0), self.dearest)
        if self.spent + sum(self.held.values()) + worst > self.limit:
            return False
        self.held[item.key] = worst
        return True

    def settle(self, result: BatchResult) -> None:
        self.held.pop(result.key, None)
        usd = result.cost.usd if result.cost is not None and result.cost.usd is not None else 0.0
        self.spent += usd
        self.dearest = max(self.dearest, usd)

    def reason(self) -> str:
        from llmswitch.pricing import format_usd

        return (f"stopped by --max-cost {format_usd(self.limit)}: {format_usd(self.spent)} spent, and the next "
                "line could pass the limit")
