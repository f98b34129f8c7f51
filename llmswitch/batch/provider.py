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
from llmswitch.batch.results import Attempt, BatchResult
from llmswitch.client import StreamState, plugin_failure
from llmswitch.errors import BatchNotAnsweredError, ConfigError, LLMSwitchError
from llmswitch.store.checkpoint import JobRecord, RunKey
from llmswitch.types import BatchAnswer, BatchLimits, ProviderJob

if TYPE_CHECKING:
    from llmswitch.client import Client, ResolvedProfile
    from llmswitch.ledger import Ledger
    from llmswitch.store.checkpoint import Checkpoint


def custom_id(line: int) -> str:
    """A request's id at the provider: its input line (unique in the input, and within every provider's rules)."""
    return f"line-{line}"


def limits_of(resolved: ResolvedProfile) -> BatchLimits:
    """The backend's batch limits, lowered by the profile's ``batch_max_requests``; refused when the backend has
    no batch service."""
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


@dataclass(frozen=True)
class Submitted:
    jobs: list[ProviderJob]
    refused: list[BatchResult]  # lines the plugin could not encode: failed at once, never sent


def submit(resolved: ResolvedProfile, key: RunKey, pending: Sequence[tuple[int, BatchItem]], *,
           checkpoint: Checkpoint, input_name: str, output: str) -> Submitted:
    """Encode ``pending``, split it into jobs, submit each and commit its id before the next."""
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
                                     job.status))
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
    ordered = sorted(results.values(), key=lambda result: result.line)
    output = Path(record.output)
    written = read_existing(output).keys  # a half-written last line is repaired first
    with OutputWriter(record.output, written=written) as writer:
        for result in ordered:
            document = result.record()
            checkpoint.save(record.key, result.key, result.line, document, failed=not result.ok)
            if result.key not in writer.written:
                writer.write(document)
    checkpoint.finish_job(record.job_id, job.status)
    return Collected(job, ordered)


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
                       profile=resolved.name, attempts=(Attempt(resolved.name, accounting.outcome_of(state)),),
                       error=state.error)


def cancel(client: Client, record: JobRecord, *, checkpoint: Checkpoint) -> ProviderJob:
    """Ask the provider to stop a job; what it already answered is collected by the next :func:`poll`."""
    resolved = client.resolve(record.key.profile, model=record.model or None)
    job: ProviderJob = resolved.batch_hook("batch_cancel", record.job_id)
    checkpoint.update_job(record.job_id, job.status)
    return job
