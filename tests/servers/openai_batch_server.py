"""OpenAI's Batch API as documented, on top of the chat-completions server: Files upload, ``/v1/batches``.

- ``POST /v1/files`` (multipart: ``purpose=batch`` and the JSONL ``file``) stores the file;
- ``POST /v1/batches`` (``input_file_id``, ``endpoint``, ``completion_window``) creates a job, ``validating``;
- ``GET /v1/batches/{id}`` moves it on each poll: ``validating`` -> ``in_progress`` -> ``completed`` (after
  ``options["polls"]`` polls in progress, default 1), writing the output and error files when it ends;
- ``POST /v1/batches/{id}/cancel``: ``cancelling``, then ``cancelled`` with the lines done so far;
- ``GET /v1/files/{id}/content``: a file's bytes.

Validation follows the documented limits: more than ``options["max_requests"]`` (50,000) lines or
``options["max_bytes"]`` (200 MB) makes the job ``failed`` with ``errors.data``, as do lines that are not
requests to the job's endpoint. Scenarios (``server.state.options``):

==========================  ==================================================================================
``fail_custom_ids``         these requests fail: their line in the error file has status 400 and an error body
``expire_after``            the job expires after this many requests: the rest are ``batch_expired`` errors
``cancel_done``             how many requests are done when a cancelled job stops (default 1)
==========================  ==================================================================================

Each answer is the chat server's (``options["answer"]`` or ``options["tokens"]`` words), with usage.
"""

from __future__ import annotations

import json
import time
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from tests.servers.http import LocalServer, Recorded
from tests.servers.openai_server import CREATED, OpenAIHandler, error_body

MAX_REQUESTS = 50_000
MAX_BYTES = 200 * 1024 * 1024


class OpenAIBatchHandler(OpenAIHandler):
    """Chat completions plus the Files and Batches endpoints."""

    @property
    def store(self) -> dict[str, Any]:
        return self.options.setdefault("_store", {"files": {}, "batches": {}})

    def next_id(self, prefix: str) -> str:
        count = self.options["_ids"] = int(self.options.get("_ids", 0)) + 1
        return f"{prefix}-{count:04d}"

    # ---- routes -----------------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802
        parts = self.path.strip("/").split("/")
        if parts[:2] == ["v1", "batches"] and len(parts) == 3:
            self.read_json()
            batch = self.store["batches"].get(parts[2])
            if batch is None:
                self.send_json(404, error_body(f"No batch found with id '{parts[2]}'.", "invalid_request_error"))
                return
            self.advance(batch)
            self.send_json(200, batch)
            return
        if parts[:2] == ["v1", "files"] and len(parts) == 4 and parts[3] == "content":
            self.read_json()
            data = self.store["files"].get(parts[2], {}).get("data")
            if data is None:
                self.send_json(404, error_body(f"No such File object: {parts[2]}", "invalid_request_error"))
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        super().do_GET()

    def do_POST(self) -> None:  # noqa: N802
        path = self.path.rstrip("/")
        if path == "/v1/files":
            self.upload()
        elif path == "/v1/batches":
            self.create(self.read_json())
        elif path.startswith("/v1/batches/") and path.endswith("/cancel"):
            self.read_json()
            batch = self.store["batches"].get(path.split("/")[3])
            if batch is None:
                self.send_json(404, error_body("No batch found.", "invalid_request_error"))
                return
            if batch["status"] in ("validating", "in_progress", "finalizing"):
                batch.update(status="cancelling", cancelling_at=int(time.time()))
            self.send_json(200, batch)
        else:
            super().do_POST()

    # ---- files ------------------------------------------------------------------------------------

    def upload(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        content_type = self.headers.get("Content-Type", "")
        message = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
        fields: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            fields[str(name)] = (part.get_filename(), part.get_payload(decode=True))
        purpose = fields.get("purpose", (None, b""))[1]
        self.state.requests.append(Recorded("POST", self.path, {k.lower(): v for k, v in self.headers.items()},
                                            {"purpose": purpose, "file_bytes": len(fields.get("file", (0, b""))[1])}))
        if "file" not in fields or purpose != b"batch":
            self.send_json(400, error_body("'purpose' must be 'batch' and a 'file' is required.",
                                           "invalid_request_error"))
            return
        filename, data = fields["file"]
        file_id = self.next_id("file")
        self.store["files"][file_id] = {"data": data}
        self.send_json(200, {"id": file_id, "object": "file", "bytes": len(data), "created_at": CREATED,
                             "filename": filename, "purpose": "batch"})

    def add_file(self, lines: list[dict[str, Any]]) -> str | None:
        if not lines:
            return None
        file_id = self.next_id("file")
        data = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
        self.store["files"][file_id] = {"data": data}
        return file_id

    # ---- batches ----------------------------------------------------------------------------------

    def create(self, body: Any) -> None:
        if not isinstance(body, dict) or body.get("endpoint") != "/v1/chat/completions" \
                or body.get("completion_window") != "24h":
            self.send_json(400, error_body("endpoint must be /v1/chat/completions and completion_window 24h",
                                           "invalid_request_error"))
            return
        source = self.store["files"].get(body.get("input_file_id"))
        if source is None:
            self.send_json(400, error_body("Invalid 'input_file_id'.", "invalid_request_error"))
            return
        now = int(time.time())
        batch_id = self.next_id("batch")
        batch: dict[str, Any] = {
            "id": batch_id, "object": "batch", "endpoint": body["endpoint"], "errors": None,
            "input_file_id": body["input_file_id"], "completion_window": "24h", "status": "validating",
            "output_file_id": None, "error_file_id": None, "created_at": now, "in_progress_at": None,
            "expires_at": now + 86400, "finalizing_at": None, "completed_at": None, "failed_at": None,
            "expired_at": None, "cancelling_at": None, "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0}, "metadata": body.get("metadata"),
            "_polls": 0,
        }
        self.store["batches"][batch_id] = batch
        self.send_json(200, {key: value for key, value in batch.items() if not key.startswith("_")})

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        if isinstance(payload, dict):
            payload = {key: value for key, value in payload.items() if not str(key).startswith("_")}
        super().send_json(status, payload, headers)

    def advance(self, batch: dict[str, Any]) -> None:
        """One poll's worth of progress."""
        now = int(time.time())
        status = batch["status"]
        if status == "validating":
            problems = self.validate(batch)
            if problems:
                batch.update(status="failed", failed_at=now, errors={"object": "list", "data": problems})
                return
            lines = self.input_lines(batch)
            batch.update(status="in_progress", in_progress_at=now,
                         request_counts={"total": len(lines), "completed": 0, "failed": 0})
        elif status == "in_progress":
            batch["_polls"] += 1
            if batch["_polls"] >= int(self.options.get("polls", 1)):
                expire_after = self.options.get("expire_after")
                if expire_after is not None:
                    self.finish(batch, int(expire_after), "expired", "batch_expired",
                                "This request could not be executed before the completion window expired.")
                else:
                    self.finish(batch, None, "completed", "", "")
        elif status == "cancelling":
            self.finish(batch, int(self.options.get("cancel_done", 1)), "cancelled", "batch_cancelled",
                        "This request was not executed because the batch was cancelled.")

    def input_lines(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        data = self.store["files"][batch["input_file_id"]]["data"]
        return [json.loads(line) for line in data.splitlines() if line.strip()]

    def validate(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        data = self.store["files"][batch["input_file_id"]]["data"]
        max_requests = int(self.options.get("max_requests", MAX_REQUESTS))
        max_bytes = int(self.options.get("max_bytes", MAX_BYTES))
        if len(data) > max_bytes:
            return [{"code": "file_too_large", "message": f"The input file is larger than {max_bytes} bytes.",
                     "param": None, "line": None}]
        problems = []
        lines = data.splitlines()
        if len(lines) > max_requests:
            return [{"code": "too_many_requests",
                     "message": f"The input file has {len(lines)} requests; the limit is {max_requests}.",
                     "param": None, "line": None}]
        seen: set[str] = set()
        for number, raw in enumerate(lines, start=1):
            try:
                line = json.loads(raw)
            except ValueError:
                line = None
            if not isinstance(line, dict) or line.get("method") != "POST" \
                    or line.get("url") != batch["endpoint"] or not isinstance(line.get("body"), dict) \
                    or not line.get("custom_id") or line["custom_id"] in seen:
                problems.append({"code": "invalid_request", "message": "Not a valid batch request line.",
                                 "param": None, "line": number})
            else:
                seen.add(line["custom_id"])
        return problems

    def finish(self, batch: dict[str, Any], done: int | None, status: str, code: str, message: str) -> None:
        lines = self.input_lines(batch)
        failing = set(self.options.get("fail_custom_ids", ()))
        outputs, errors = [], []
        for index, line in enumerate(lines):
            request_id = f"batch_req_{batch['id']}_{index}"
            if done is not None and index >= done:
                errors.append({"id": request_id, "custom_id": line["custom_id"], "response": None,
                               "error": {"code": code, "message": message}})
            elif line["custom_id"] in failing:
                errors.append({"id": request_id, "custom_id": line["custom_id"], "error": None, "response": {
                    "status_code": 400, "request_id": f"req_{index}",
                    "body": error_body("Invalid value for 'messages'.", "invalid_request_error")}})
            else:
                outputs.append({"id": request_id, "custom_id": line["custom_id"], "error": None, "response": {
                    "status_code": 200, "request_id": f"req_{index}", "body": self.completion(line["body"])}})
        now = int(time.time())
        batch.update(status=status, output_file_id=self.add_file(outputs), error_file_id=self.add_file(errors),
                     request_counts={"total": len(lines), "completed": len(outputs), "failed": len(errors)})
        batch[{"completed": "completed_at", "expired": "expired_at", "cancelled": "cancelled_at"}[status]] = now

    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        pieces = self.answer_pieces()
        prompt_tokens = self.prompt_tokens(body)
        return {
            "id": "chatcmpl-batch", "object": "chat.completion", "created": CREATED, "model": body.get("model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(pieces)},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(pieces),
                      "total_tokens": prompt_tokens + len(pieces)},
        }


def openai_batch_server() -> LocalServer:
    return LocalServer(OpenAIBatchHandler)
