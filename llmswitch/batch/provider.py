"""``--via provider``: a batch sent to the provider's own batch service, at its batch price.

The core's half of the batch hooks (:mod:`llmswitch.hookspecs`): each line is encoded by the plugin
(``batch_line``), the lines are split into jobs within the backend's :class:`~llmswitch.types.BatchLimits`,
each job is submitted (``batch_submit``) and its id committed to the checkpoint at once, so any process can
poll it later (``llmswitch batch status``). When a job has ended, its answers (``batch_results``) become
results like any other line's: charged to the ledger at the batch price, committed to the checkpoint, then
written to the run's OUTPUT. A line the provider never answered (the job expired, was cancelled or failed
whole) is a failed line; ``--retry-failed`` asks it again.

No backend is named here: whether a profile has a batch service is its plugin's ``BackendInfo.batch_limits``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmswitch import accounting
from llmswitch.batch.inputs import BatchItem
from llmswitch.batch.output import OutputWriter, read_existing
from llmswitch.batch.output_lock import OutputLock
from llmswitch.batch.results import BatchResult
from llmswitch.client import StreamState, plugin_failure
from llmswitch.errors import BatchNotAnsweredError, ConfigError, LLMSwitchError
from llmswitch.record import record
from llmswitch.router.plan import Attempt
from llmswitch.store.checkpoint import JobRecord, RunKey
from llmswitch.types import BatchAnswer, BatchLimits, ProviderJob

if TYPE_CHECKING:
    from llmswitch.client import Client, ResolvedProfile
    from llmswitch.ledger import Ledger
    from llmswitch.store.checkpoint import Checkpoint


COLLECT_AGAIN = "run `llmswitch batch status` again (the job waits at the provider; nothing was charged)"


def custom_id(line: int) -> str:
    """A request's id at the provider: its input line (unique in the input, and within every provider's rules)."""
    return f"line-{line}"


def limits_of(resolved: ResolvedProfile) -> BatchLimits:
    """The backend's batch limits, lowered by the profile's ``batch_max_requests``; refused when the backend has
    no batch service."""
    from llmswitch.router.bookkeeping import route_of

    if route_of(resolved) is not None:
        raise ConfigError(
            f"profile '{resolved.name}' is a route: its lines are spread over its members one call at a time, "
            "and a provider's batch service takes a job for one profile",
            remedy="leave out --via provider to run the route line by line, or name one member profile with -p",
        )
    info = resolved.handle.info
    if info.batch_limits is None or "batch_submit" not in resolved.handle.hooks:
        raise ConfigError(
            f"profile '{resolved.name}' (backend {info.name}) has no provider batch service, so --via provider "
            "cannot send it",
            remedy="leave out --via provider to ask it line by line, or use a profile whose backend has one "
            "(`llmswitch plugins` lists them)",
        )
    own = resolved.settings.get("batch_max_requests")
    if own is not None:
        return BatchLimits(min(int(own), info.batch_limits.max_requests), info.batch_limits.max_bytes)
    return info.batch_limits


def split_jobs(lines: Sequence[dict[str, Any]], limits: BatchLimits) -> list[list[dict[str, Any]]]:
    """Consecutive runs of ``lines``, each within ``limits`` (requests, and bytes as JSON lines)."""
    jobs: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = 0
    for line in lines:
        length = len(json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode()) + 1
        if length > limits.max_bytes:
            raise ConfigError(f"request {line.get('custom_id')} alone is {length:,} bytes, more than the "
                              f"{limits.max_bytes:,} a batch job may hold",
                              remedy="shorten that line, or leave out --via provider")
        if current and (len(current) >= limits.max_requests or size + length > limits.max_bytes):
            jobs.append(current)
            current, size = [], 0
        current.append(line)
        size += length
    if current:
        jobs.append(current)
    return jobs


@record(slots=False)
class Submitted:
    jobs: list[ProviderJob]
    refused: list[BatchResult]  # lines the plugin could not encode: failed at once, never sent


def submit(resolved: ResolvedProfile, key: RunKey, pending: Sequence[tuple[int, BatchItem]], *,
           checkpoint: Checkpoint, input_name: str, output: str, ordered: bool = False) -> Submitted:
    """Encode ``pending``, split it into jobs, submit each and commit its id before the next. ``ordered``: the
    jobs' results are written in input order (:func:`write_in_order`), whichever job ends first."""
    limits = limits_of(resolved)
    lines: list[dict[str, Any]] = []
    ids: dict[str, list[Any]] = {}
    refused: list[BatchResult] = []
    for index, item in pending:
        try:
            lines.append(resolved.batch_hook("batch_line", custom_id(item.line), item.request(resolved)))
        except LLMSwitchError as error:
            refused.append(BatchResult(item.id, item.line, index, profile=resolved.name, error=error))
            continue
        ids[custom_id(item.line)] = [item.id, item.line]
    jobs: list[ProviderJob] = []
    for chunk in split_jobs(lines, limits):
        job: ProviderJob = resolved.batch_hook("batch_submit", chunk)
        checkpoint.add_job(JobRecord(job.id, key, resolved.target.model, resolved.target.backend, input_name,
                                     output, {line["custom_id"]: ids[line["custom_id"]] for line in chunk},
                                     job.status, ordered=ordered))
        jobs.append(job)
    return Submitted(jobs, refused)


@dataclass
class Collected:
    """What a poll of one job found: the job, and the lines written (none while it runs)."""

    job: ProviderJob
    results: list[BatchResult]


def poll(client: Client, record: JobRecord, *, checkpoint: Checkpoint, ledger: Ledger) -> Collected:
    """Ask the provider about one job; once it has ended, collect its answers into the checkpoint and OUTPUT."""
    resolved = client.resolve(record.key.profile, model=record.model or None)
    job: ProviderJob = resolved.batch_hook("batch_retrieve", record.job_id)
    checkpoint.update_job(record.job_id, job.status)
    if not job.ended:
        return Collected(job, [])
    # OUTPUT is another run's while it writes it; taken before anything is charged, so a refused collection
    # (OutputBusyError) costs nothing and the next poll collects the job whole.
    with OutputLock(record.output, then=COLLECT_AGAIN):
        return collect(resolved, record, job, checkpoint=checkpoint, ledger=ledger)


def collect(resolved: ResolvedProfile, record: JobRecord, job: ProviderJob, *, checkpoint: Checkpoint,
            ledger: Ledger) -> Collected:
    """An ended job's answers charged, committed to the checkpoint, then written to OUTPUT (held by the caller)."""
    price = accounting.price_of(resolved).batch
    results: dict[str, BatchResult] = {}
    for answer in answers(resolved, record.job_id):
        entry = record.lines.get(answer.custom_id)
        if entry is not None:
            results[answer.custom_id] = result_of(resolved, answer, entry, price, ledger)
    for missing, entry in record.lines.items():
        if missing not in results:
            error = BatchNotAnsweredError(
                f"batch job {record.job_id} ended ({job.status}{': ' + job.detail if job.detail else ''}) "
                f"without an answer for line {entry[1]}",
                remedy="--retry-failed asks it again (line by line, or in a new job with --via provider)")
            results[missing] = BatchResult(entry[0], entry[1], entry[1], profile=resolved.name, error=error)
    in_order = sorted(results.values(), key=lambda result: result.line)
    for result in in_order:
        checkpoint.save(record.key, result.key, result.line, result.record(), failed=not result.ok)
    if record.ordered:
        write_in_order(checkpoint, record.key, record.output, collected=record.job_id)
    else:
        written = read_existing(Path(record.output)).keys  # a half-written last line is repaired first
        with OutputWriter(record.output, written=written) as writer:
            for result in in_order:
                if result.key not in writer.written:
                    writer.write(result.record())
    checkpoint.finish_job(record.job_id, job.status)  # after the writes: a kill before this polls it again
    return Collected(job, in_order)


def write_in_order(checkpoint: Checkpoint, key: RunKey, output: str, *, collected: str | None = None) -> int:
    """``--ordered`` over provider jobs, which end in any order: write the run's results that OUTPUT lacks, in
    input order, up to the first line still in a job not collected (``collected``: the job being collected
    now, whose results are committed). The rest wait in the checkpoint for the job before them; return how
    many wait."""
    open_jobs = [job for job in checkpoint.jobs(key=key, open_only=True) if job.job_id != collected]
    first_open = min((entry[1] for job in open_jobs for entry in job.lines.values()), default=None)
    written = read_existing(Path(output)).keys  # a half-written last line is repaired first
    waiting = 0
    with OutputWriter(output, written=written) as writer:
        for item_key, document in checkpoint.results(key):  # in input order
            if first_open is not None and int(document.get("line") or 0) >= first_open:
                waiting += item_key not in writer.written
            elif item_key not in writer.written:
                writer.write(document)
    return waiting


def answers(resolved: ResolvedProfile, job_id: str) -> Iterator[BatchAnswer]:
    """The plugin's ``batch_results``, a failure while iterating mapped like any hook's."""
    try:
        yield from resolved.batch_hook("batch_results", job_id)
    except LLMSwitchError:
        raise
    except Exception as exc:
        raise plugin_failure(resolved.handle, "batch_results", exc) from exc


def result_of(resolved: ResolvedProfile, answer: BatchAnswer, entry: list[Any], price: Any,
              ledger: Ledger) -> BatchResult:
    """One answer as a line's result, charged to the ledger at the batch price as a call is charged."""
    state = StreamState(resolved, hook="batch_results")
    response = answer.response
    if response is not None:
        state.parts.append(response.text)
        state.usage, state.finish_reason, state.model = response.usage, response.finish_reason, response.model
    state.error = answer.error  # no latency: the provider ran it some time within the job
    cost = accounting.record_call(resolved, None, state, ledger=ledger, price=price)
    return BatchResult(entry[0], entry[1], entry[1], text=state.text, finish_reason=state.finish_reason,
                       usage=state.usage, cost=cost, model=state.model or resolved.target.model,
                       profile=resolved.name, attempts=(Attempt(resolved.name, accounting.outcome_of(state), None),),
                       error=state.error)


def cancel(client: Client, record: JobRecord, *, checkpoint: Checkpoint) -> ProviderJob:
    """Ask the provider to stop a job; what it already answered is collected by the next :func:`poll`."""
    resolved = client.resolve(record.key.profile, model=record.model or None)
    job: ProviderJob = resolved.batch_hook("batch_cancel", record.job_id)
    checkpoint.update_job(record.job_id, job.status)
    return job
