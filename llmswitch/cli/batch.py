"""``llmswitch batch``: every line of INPUT asked on a profile, answers to OUTPUT, resumable after a crash.

A thin layer over :mod:`llmswitch.batch`: options in, :class:`~llmswitch.batch.job.BatchJob` run, progress and
the summary on stderr. OUTPUT (``-``: stdout) carries only the results.
"""

from __future__ import annotations

import asyncio
import shlex
import signal
import sys
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import click

from llmswitch.cli.errors import EXIT_BACKEND, EXIT_INTERRUPTED, EXIT_OK, echo_status, quietly_echo
from llmswitch.terminal import is_terminal
from llmswitch.wording import counted

if TYPE_CHECKING:
    from llmswitch.batch.job import BatchJob, BatchOptions, Plan, Summary
    from llmswitch.client import Client


class BatchGroup(click.Group):
    """``batch INPUT ...`` runs a batch; ``batch status`` is the one subcommand (a file named so: ``./status``)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("-h", "--help")):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=BatchGroup)
def batch() -> None:
    """Ask every line of a file on a profile, concurrently; answers to a JSONL file; resumable.

    \b
    llmswitch batch questions.jsonl -p fast -o answers.jsonl --concurrency 20
    llmswitch batch questions.jsonl -p fast -o answers.jsonl --resume   # after a crash or Ctrl-C
    llmswitch batch status                                              # what earlier runs left
    """


@batch.command("run")
@click.argument("input_path", metavar="INPUT")
@click.option("-p", "--profile", "profile_name", metavar="NAME", help="Profile to ask (default: default_profile).")
@click.option("-o", "--output", "output", metavar="OUTPUT", required=True,
              help="Where the results go, one JSON line each (- for stdout).")
@click.option("-m", "--model", metavar="MODEL", help="Model to ask instead of the profile's.")
@click.option("--concurrency", type=click.IntRange(min=1), default=8, show_default=True,
              help="Lines asked at once.")
@click.option("--resume", is_flag=True, help="Finish an earlier run of this INPUT: ask only the lines without a result.")
@click.option("--retry-failed", is_flag=True, help="Like --resume, and ask again the lines that failed.")
@click.option("--restart", is_flag=True, help="Forget an earlier run of this INPUT and overwrite OUTPUT.")
@click.option("--max-cost", type=float, metavar="USD",
              help="Refuse to start if the estimate is above USD; stop before spending more.")
@click.option("--ordered", is_flag=True, help="Write results in input order (default: as they complete).")
@click.option("--format", "input_format", type=click.Choice(["jsonl", "csv", "text"]),
              help="INPUT's format (default: from its extension or its first line).")
@click.option("--prompt-column", metavar="NAME", help="CSV: the column holding the prompt.")
@click.option("--via", type=click.Choice(["provider"]), metavar="provider",
              help="Send the batch to the provider's own batch service (its batch price; results within 24 h); "
              "`llmswitch batch status` collects them.")
@click.option("--wait", is_flag=True, help="With --via provider: poll until every job has ended, then collect.")
@click.option("--poll-interval", type=click.FloatRange(min=0), default=30.0, show_default=True, metavar="SECONDS",
              help="With --wait: seconds between polls.")
@click.pass_context
def run(ctx: click.Context, input_path: str, profile_name: str | None, output: str, model: str | None,
        concurrency: int, resume: bool, retry_failed: bool, restart: bool, max_cost: float | None,
        ordered: bool, input_format: Any, prompt_column: str | None, via: str | None, wait: bool,
        poll_interval: float) -> int:
    """Ask every line of INPUT (JSONL, CSV or plain text; - for stdin) and write one JSON result a line.

    \b
    JSONL lines: {"id": 1, "prompt": "..."} or {"id": 1, "messages": [...]}, optionally with
    "system", "temperature", "top_p", "top_k", "max_tokens", "stop", "seed" and "options".
    Each result: id, text, finish_reason, usage, cost, model, profile, latency_s, attempts, error.

    Every result is committed to a checkpoint as it completes: after a crash, a kill or Ctrl-C,
    the same command with --resume asks only what is left. Exit 0 when every line was answered,
    1 when some failed (their error is in OUTPUT), 130 when interrupted.
    """
    from llmswitch.batch.job import BatchJob, BatchOptions
    from llmswitch.client import Client

    if restart and (resume or retry_failed):
        raise click.UsageError("--restart starts over; it cannot be combined with --resume or --retry-failed")
    if wait and via is None:
        raise click.UsageError("--wait goes with --via provider (a batch run line by line always waits)")
    options = BatchOptions(input_path, output, profile=profile_name, model=model, concurrency=concurrency,
                           resume=resume, retry_failed=retry_failed, restart=restart, max_cost=max_cost,
                           ordered=ordered, format=input_format, prompt_column=prompt_column,
                           via_provider=via == "provider")
    client = Client(ctx.obj.get("config"))
    with BatchJob(client, options) as job:  # OUTPUT stays locked until the run ends, however it ends
        return carry_out(client, job, wait=wait, poll_interval=poll_interval)


def carry_out(client: Client, job: BatchJob, *, wait: bool, poll_interval: float) -> int:
    """Prepare and run the batch (or submit it), then say how it went; the exit code."""
    options = job.options
    plan = job.prepare()
    announce(plan)
    if options.via_provider:
        return submit_to_provider(client, job, plan, wait=wait, poll_interval=poll_interval)
    stopped_by: list[int] = []
    try:
        summary = asyncio.run(run_job(job, plan, stopped_by))
    except (KeyboardInterrupt, asyncio.CancelledError):
        return interrupted(job, options, stopped_by)
    quietly_echo(summary.line())
    if summary.stopped:
        echo_status(f"error: {summary.stopped}")
        echo_status(f"  hint: the lines done are kept; to go on: {resume_command(options)}")
        return EXIT_BACKEND
    if summary.failed:
        echo_status(f"{counted(summary.failed, 'line')} failed (their error is in {describe_output(options)}); "
                    "--retry-failed asks them again")
        return EXIT_BACKEND
    return EXIT_OK


def submit_to_provider(client: Client, job: BatchJob, plan: Plan, *, wait: bool, poll_interval: float) -> int:
    submitted = job.submit(plan)
    backend = plan.resolved.target.backend
    if submitted.jobs:
        lines = sum(job.requests for job in submitted.jobs) or len(plan.pending) - len(submitted.refused)
        ids = ", ".join(provider_job.id for provider_job in submitted.jobs)
        echo_status(f"submitted {counted(len(submitted.jobs), 'job')} ({counted(lines, 'line')}) to {backend}: {ids}; `llmswitch batch status` collects the results into "
                    f"{job.options.output}")
    elif not plan.in_jobs:
        echo_status("nothing to submit: every line already has a result")
    if plan.in_jobs:
        echo_status(f"{counted(plan.in_jobs, 'line')} {'is' if plan.in_jobs == 1 else 'are'} in jobs submitted "
                    "earlier; `llmswitch batch status` collects them")
    if submitted.refused:
        echo_status(f"{counted(len(submitted.refused), 'line')} could not be sent (their error is in {job.options.output})")
    if not wait:
        return EXIT_BACKEND if submitted.refused else EXIT_OK
    from llmswitch.store.checkpoint import Checkpoint

    with Checkpoint() as checkpoint:
        records = checkpoint.jobs(key=plan.key, open_only=True)
    return show_status(client, records, wait=True, poll_interval=poll_interval, as_json=False)


@batch.command("status")
@click.argument("job_id", metavar="[JOB]", required=False)
@click.option("--wait", is_flag=True, help="Poll until every job shown has ended, collecting each as it ends.")
@click.option("--poll-interval", type=click.FloatRange(min=0), default=30.0, show_default=True, metavar="SECONDS",
              help="With --wait: seconds between polls.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per job on stdout.")
@click.pass_context
def status(ctx: click.Context, job_id: str | None, wait: bool, poll_interval: float, as_json: bool) -> int:
    """Poll provider batch jobs (--via provider) and collect the results of those that ended into their OUTPUT.

    Without JOB: every job not collected yet. Results are charged to the ledger at the batch price and written
    in the same format as a batch run line by line.
    """
    from llmswitch.client import Client
    from llmswitch.errors import ConfigError
    from llmswitch.store.checkpoint import Checkpoint

    with Checkpoint() as checkpoint:
        records = checkpoint.jobs(job_id=job_id) if job_id else checkpoint.jobs(open_only=True)
    if job_id and not records:
        raise ConfigError(f"no batch job {job_id!r} was submitted from this machine",
                          remedy="`llmswitch batch status` lists the jobs waiting")
    if not records:
        echo_status("no batch job is waiting (`llmswitch batch INPUT -p PROFILE -o OUTPUT --via provider` "
                    "submits one)")
        return EXIT_OK
    return show_status(Client(ctx.obj.get("config")), records, wait=wait, poll_interval=poll_interval,
                       as_json=as_json)


@batch.command("cancel")
@click.argument("job_id", metavar="JOB")
@click.pass_context
def cancel(ctx: click.Context, job_id: str) -> int:
    """Ask the provider to stop a batch job; `llmswitch batch status` then collects what it answered."""
    from llmswitch.batch.provider import cancel as cancel_job
    from llmswitch.client import Client
    from llmswitch.errors import ConfigError
    from llmswitch.store.checkpoint import Checkpoint

    with Checkpoint() as checkpoint:
        records = checkpoint.jobs(job_id=job_id)
        if not records:
            raise ConfigError(f"no batch job {job_id!r} was submitted from this machine",
                              remedy="`llmswitch batch status` lists the jobs waiting")
        provider_job = cancel_job(Client(ctx.obj.get("config")), records[0], checkpoint=checkpoint)
    print_jobs([(records[0], provider_job)], as_json=False)
    return EXIT_OK


def show_status(client: Client, records: list[Any], *, wait: bool, poll_interval: float, as_json: bool) -> int:
    """Poll each job (collecting those that ended), again every ``poll_interval`` with ``wait``, then show them."""
    import time

    from llmswitch.batch.output_lock import OutputBusyError
    from llmswitch.batch.provider import poll
    from llmswitch.ledger import Ledger
    from llmswitch.store.checkpoint import Checkpoint

    seen: dict[str, Any] = {}
    written: dict[str, int] = {}
    busy: dict[str, OutputBusyError] = {}  # job id -> why its OUTPUT could not be written
    failed = 0
    waiting = [record for record in records if not record.collected]
    with Checkpoint() as checkpoint, Ledger() as ledger:
        while True:
            for record in waiting:
                try:
                    collected = poll(client, record, checkpoint=checkpoint, ledger=ledger)
                except OutputBusyError as error:  # the other jobs are still collected; this one waits
                    busy[record.job_id] = error
                    continue
                seen[record.job_id] = collected.job
                if collected.job.ended:
                    written[record.output] = written.get(record.output, 0) + len(collected.results)
                    failed += sum(1 for result in collected.results if not result.ok)
            waiting = [record for record in waiting if record.job_id not in busy and not seen[record.job_id].ended]
            if not wait or not waiting:
                break
            time.sleep(poll_interval)
    print_jobs([(record, seen.get(record.job_id)) for record in records], as_json=as_json, busy=set(busy))
    for output, count in written.items():
        echo_status(f"{counted(count, 'line')} written to {output}" + (f" ({failed} failed; --retry-failed asks them again)"
                                                              if failed else ""))
    if busy:
        raise next(iter(busy.values()))  # exit 2, naming the run that holds OUTPUT
    return EXIT_BACKEND if failed else EXIT_OK


def print_jobs(rows: list[tuple[Any, Any]], *, as_json: bool, busy: Collection[str] = ()) -> None:
    """One row per job: the provider's status and counts as last seen (None: the record's own). ``busy``: jobs
    not collected because another run holds their OUTPUT."""
    if as_json:
        import json

        for record, job in rows:
            click.echo(json.dumps({
                "job": record.job_id, "profile": record.key.profile, "backend": record.backend,
                "status": job_status(record, job, busy), "lines": len(record.lines),
                "succeeded": job.succeeded if job is not None else None,
                "failed": job.failed if job is not None else None,
                "collected": job is not None and job.ended or record.collected, "output": record.output,
                "output_busy": record.job_id in busy, "detail": job.detail if job is not None else None}))
        return
    from llmswitch.cli.tables import console, table

    grid = table("JOB", "PROFILE", "STATUS", "LINES", "SUCCEEDED", "FAILED", "OUTPUT",
                 right=("LINES", "SUCCEEDED", "FAILED"))
    for record, job in rows:
        grid.add_row(record.job_id, record.key.profile, job_status(record, job, busy),
                     str(len(record.lines)), str(job.succeeded) if job is not None else "",
                     str(job.failed) if job is not None else "", record.output)
    console().print(grid)


def job_status(record: Any, job: Any, busy: Collection[str]) -> str:
    if record.job_id in busy:
        return "ended, not collected: OUTPUT busy"
    return str(job.status if job is not None else record.status)


def announce(plan: Plan) -> None:
    if plan.repaired:
        echo_status("note: OUTPUT's last line was half-written (a crash); it was cut off and is written again")
    if plan.retrying:
        echo_status(f"note: {counted(plan.retrying, 'failed line')} {'is' if plan.retrying == 1 else 'are'} asked "
                    "again")
    if plan.done_before:
        echo_status(f"resuming: {plan.done_before:,} of {counted(plan.total, 'line')} already have a result")
    if plan.estimate.lines:
        echo_status(f"estimate: {plan.estimate.describe()}")


async def run_job(job: BatchJob, plan: Plan, stopped_by: list[int]) -> Summary:
    """The run, with SIGTERM and SIGHUP stopping it the way Ctrl-C does (the calls in flight are cancelled,
    everything finished is kept)."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def stop(signum: int) -> None:
        stopped_by.append(signum)
        task.cancel()

    for number in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if number is not None:
            loop.add_signal_handler(number, stop, number)
    from llmswitch.kit import aclose_clients

    try:
        return await job.run(plan, progress_for_stderr())
    finally:
        await aclose_clients()


def interrupted(job: BatchJob, options: BatchOptions, stopped_by: list[int]) -> int:
    summary = job.summary
    if summary is not None:
        quietly_echo(summary.line())
    done = f"{summary.done:,} of {counted(summary.total, 'line')}" if summary is not None else "the lines finished"
    cause = f"stopped by {signal.Signals(stopped_by[0]).name}" if stopped_by else "interrupted"
    quietly_echo(f"{cause}: {done} done and kept (the calls in flight were cancelled)")
    quietly_echo(f"  to finish: {resume_command(options)}")
    return 128 + stopped_by[0] if stopped_by else EXIT_INTERRUPTED


def resume_command(options: BatchOptions) -> str:
    words = ["llmswitch", "batch", options.input]
    if options.profile:
        words += ["-p", options.profile]
    if options.model:
        words += ["-m", options.model]
    words += ["-o", options.output, "--resume"]
    if options.ordered:
        words.append("--ordered")
    if options.max_cost is not None:
        words += ["--max-cost", str(options.max_cost)]
    command = " ".join(shlex.quote(word) for word in words)
    return command + (" (with the same input on stdin)" if options.input == "-" else "")


def describe_output(options: BatchOptions) -> str:
    return "the output" if options.output == "-" else options.output


def progress_for_stderr() -> Any:
    """A live progress bar on a terminal; nothing until the summary line otherwise."""
    if not is_terminal(sys.stderr):
        return None
    from llmswitch.cli.batch_progress import BarProgress

    return BarProgress()
