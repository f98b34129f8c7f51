"""Anthropic's Message Batches API: one job per ``POST /v1/messages/batches`` (its ``requests`` list), the results
as JSONL, each ``succeeded``, ``errored``, ``canceled`` or ``expired``.

Only the wire format lives here; the core (``llmswitch batch --via provider``) splits a batch into jobs within
``info.BATCH_LIMITS``, keeps the job ids, polls and writes the results. The results are read from the documented
path under the profile's base URL, never from the ``results_url`` an answer names: the key goes only where the
profile sends it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from llmswitch import kit
from llmswitch.kit import (
    BadResponseError,
    BatchAnswer,
    BatchCancelledError,
    BatchExpiredError,
    ProviderJob,
    Request,
    Target,
)
from llmswitch_anthropic.calls import endpoint
from llmswitch_anthropic.errors import from_error_body, server_name
from llmswitch_anthropic.info import NAME
from llmswitch_anthropic.wire import build_body, parse_message

BATCHES_PATH = "v1/messages/batches"


def batch_line(target: Target, custom_id: str, request: Request) -> dict[str, Any]:
    return {"custom_id": custom_id, "params": build_body(target, request, stream=False)}


def batch_submit(target: Target, lines: Sequence[dict[str, Any]]) -> ProviderJob:
    created = kit.request_json(kit.Call(endpoint(target), "POST", BATCHES_PATH, {"requests": list(lines)},
                                        content="a message batch"))
    return job_of(target, created)


def batch_retrieve(target: Target, job_id: str) -> ProviderJob:
    return job_of(target, kit.request_json(kit.Call(endpoint(target), "GET", f"{BATCHES_PATH}/{job_id}",
                                                    content="a message batch")))


def batch_cancel(target: Target, job_id: str) -> ProviderJob:
    return job_of(target, kit.request_json(kit.Call(endpoint(target), "POST", f"{BATCHES_PATH}/{job_id}/cancel",
                                                    content="a message batch")))


def batch_results(target: Target, job_id: str) -> Iterator[BatchAnswer]:
    call = kit.Call(endpoint(target), "GET", f"{BATCHES_PATH}/{job_id}/results", content="batch results (JSONL)")
    for line in kit.request_jsonl(call):
        yield answer_of(target, line)


def job_of(target: Target, document: dict[str, Any]) -> ProviderJob:
    job_id, status = document.get("id"), document.get("processing_status")
    if not isinstance(job_id, str) or not isinstance(status, str):
        raise _unexpected(target, "the message batch", document)
    counts = {key: int(value or 0) for key, value in (document.get("request_counts") or {}).items()}
    failed = counts.get("errored", 0) + counts.get("canceled", 0) + counts.get("expired", 0)
    return ProviderJob(job_id, status, status == "ended", sum(counts.values()), counts.get("succeeded", 0), failed)


def answer_of(target: Target, line: dict[str, Any]) -> BatchAnswer:
    custom_id = str(line.get("custom_id"))
    result = line.get("result") or {}
    kind = result.get("type")
    if kind == "succeeded":
        try:
            return BatchAnswer(custom_id, parse_message(result.get("message"), target, 0.0))
        except BadResponseError as error:
            return BatchAnswer(custom_id, error=error)
    if kind == "errored":
        return BatchAnswer(custom_id, error=from_error_body(target, None, result.get("error")))
    if kind == "expired":
        return BatchAnswer(custom_id, error=BatchExpiredError(
            f"{server_name(target)} did not run this request before the message batch expired (24 hours)"))
    if kind == "canceled":
        return BatchAnswer(custom_id, error=BatchCancelledError(
            f"the message batch was cancelled before {server_name(target)} ran this request"))
    return BatchAnswer(custom_id, error=_unexpected(target, "a batch result", line))


def _unexpected(target: Target, what: str, document: Any) -> BadResponseError:
    shown = kit.excerpt(json.dumps(document), 120)
    return BadResponseError(f"{server_name(target)} answered {what} with something unexpected: {shown}",
                            remedy="check base_url: the Message Batches API is Anthropic's (/v1/messages/batches)",
                            backend=NAME)
