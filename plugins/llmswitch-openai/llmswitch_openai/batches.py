"""OpenAI's Batch API: the requests as a JSONL file (Files API, ``purpose=batch``), one job per file
(``/v1/batches``), the answers in an output file and the failures in an error file.

Only the wire format lives here; the core (``llmswitch batch --via provider``) splits a batch into jobs within
``info.BATCH_LIMITS``, keeps the job ids, polls and writes the results.
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
    LLMSwitchError,
    ProviderJob,
    Request,
    Target,
)
from llmswitch_openai.calls import endpoint
from llmswitch_openai.errors import BACKEND, error_for_status, server_name
from llmswitch_openai.wire import build_body, parse_completion

CHAT_URL = "/v1/chat/completions"
ENDED = frozenset({"completed", "failed", "expired", "cancelled"})


def batch_line(target: Target, custom_id: str, request: Request) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": CHAT_URL,
            "body": build_body(target, request, stream=False, include_usage=False)}


def batch_submit(target: Target, lines: Sequence[dict[str, Any]]) -> ProviderJob:
    where = endpoint(target)
    data = b"".join(json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n" for line in lines)
    upload = kit.Call(where, "POST", "files", form={"purpose": "batch"},
                      files={"file": ("llmswitch-batch.jsonl", data, "application/jsonl")}, content="a file object")
    uploaded = kit.request_json(upload)
    file_id = uploaded.get("id")
    if not isinstance(file_id, str):
        raise _unexpected(target, "the file upload", uploaded)
    created = kit.request_json(kit.Call(where, "POST", "batches", {
        "input_file_id": file_id, "endpoint": CHAT_URL, "completion_window": "24h",
        "metadata": {"created_by": "llmswitch"}}, content="a batch object"))
    return job_of(target, created)


def batch_retrieve(target: Target, job_id: str) -> ProviderJob:
    return job_of(target, _batch(target, job_id))


def batch_cancel(target: Target, job_id: str) -> ProviderJob:
    cancelled = kit.request_json(kit.Call(endpoint(target), "POST", f"batches/{job_id}/cancel",
                                          content="a batch object"))
    return job_of(target, cancelled)


def batch_results(target: Target, job_id: str) -> Iterator[BatchAnswer]:
    """The output file's answers, then the error file's failures (expired and cancelled requests included)."""
    document = _batch(target, job_id)
    for field in ("output_file_id", "error_file_id"):
        file_id = document.get(field)
        if not isinstance(file_id, str):
            continue
        call = kit.Call(endpoint(target), "GET", f"files/{file_id}/content", content="a JSONL file of results")
        for line in kit.request_jsonl(call):
            yield answer_of(target, line)


def _batch(target: Target, job_id: str) -> dict[str, Any]:
    return kit.request_json(kit.Call(endpoint(target), "GET", f"batches/{job_id}", content="a batch object"))


def job_of(target: Target, document: dict[str, Any]) -> ProviderJob:
    job_id, status = document.get("id"), document.get("status")
    if not isinstance(job_id, str) or not isinstance(status, str):
        raise _unexpected(target, "the batch", document)
    counts = document.get("request_counts") or {}
    detail = None
    errors = (document.get("errors") or {}).get("data") or []
    if errors:
        detail = "; ".join(_describe_problem(problem) for problem in errors[:3])
        if len(errors) > 3:
            detail += f"; and {len(errors) - 3} more"
    return ProviderJob(job_id, status, status in ENDED, int(counts.get("total") or 0),
                       int(counts.get("completed") or 0), int(counts.get("failed") or 0), detail)


def _describe_problem(problem: Any) -> str:
    if not isinstance(problem, dict):
        return str(problem)
    line = f" (line {problem['line']})" if problem.get("line") else ""
    return f"{problem.get('message') or problem.get('code')}{line}"


def answer_of(target: Target, line: dict[str, Any]) -> BatchAnswer:
    """One line of an output or error file."""
    custom_id = str(line.get("custom_id"))
    response = line.get("response")
    if isinstance(response, dict):
        status, body = int(response.get("status_code") or 0), response.get("body")
        if status == 200 and isinstance(body, dict):
            try:
                return BatchAnswer(custom_id, parse_completion(target, body))
            except LLMSwitchError as error:
                return BatchAnswer(custom_id, error=error)
        return BatchAnswer(custom_id, error=error_for_status(target, status, {}, json.dumps(body).encode()))
    failure = line.get("error") or {}
    code, message = failure.get("code"), failure.get("message") or "no message"
    if code == "batch_expired":
        return BatchAnswer(custom_id, error=BatchExpiredError(f"{server_name(target)} did not run this request "
                                                              f"before the batch expired: {message}"))
    if code == "batch_cancelled":
        return BatchAnswer(custom_id, error=BatchCancelledError(f"the batch was cancelled before {server_name(target)} "
                                                                f"ran this request: {message}"))
    return BatchAnswer(custom_id, error=BadResponseError(f"{server_name(target)} failed this request ({code}): "
                                                         f"{message}", backend=BACKEND))


def _unexpected(target: Target, what: str, document: Any) -> BadResponseError:
    from llmswitch_openai.errors import short

    return BadResponseError(f"{server_name(target)} answered {what} with something unexpected: "
                            f"{short(json.dumps(document), 120)}",
                            remedy="check base_url: the batch endpoints are OpenAI's (/v1/files, /v1/batches)",
                            backend=BACKEND)
