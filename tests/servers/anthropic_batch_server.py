"""Anthropic's Message Batches API as documented, on top of the Messages server.

- ``POST /v1/messages/batches`` (``{"requests": [{"custom_id", "params"}]}``) creates a batch, ``in_progress``;
  more than ``options["max_requests"]`` (100,000) requests or ``options["max_bytes"]`` (256 MB) is refused
  with 413 ``request_too_large``; a request without ``max_tokens`` or with a repeated ``custom_id``, 400;
- ``GET /v1/messages/batches/{id}`` ends it after ``options["polls"]`` polls (default 1): ``ended``, with
  ``results_url``;
- ``POST /v1/messages/batches/{id}/cancel``: ``canceling``; the next poll ends it with ``options["cancel_done"]``
  (default 1) requests done and the rest ``canceled``;
- ``GET /v1/messages/batches/{id}/results``: JSONL, one ``{"custom_id", "result": {"type": ...}}`` a request.

``options["fail_custom_ids"]``: those requests are ``errored`` (``invalid_request_error``);
``options["expire_after"]``: the batch expires after that many requests, the rest ``expired``.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from tests.servers.anthropic_server import AnthropicHandler, error_body
from tests.servers.http import LocalServer

MAX_REQUESTS = 100_000
MAX_BYTES = 256 * 1024 * 1024
BATCHES = "/v1/messages/batches"


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")


class AnthropicBatchHandler(AnthropicHandler):
    @property
    def batches(self) -> dict[str, Any]:
        return self.options.setdefault("_batches", {})

    def do_GET(self) -> None:  # noqa: N802
        path = self.path.split("?")[0].rstrip("/")
        if not path.startswith(BATCHES + "/"):
            super().do_GET()
            return
        self.read_json()
        parts = path[len(BATCHES) + 1:].split("/")
        batch = self.batches.get(parts[0])
        if batch is None:
            self.send_json(404, error_body("not_found_error", f"batch {parts[0]} not found"))
        elif len(parts) == 1:
            self.advance(batch)
            self.send_json(200, batch["public"])
        elif parts[1:] == ["results"] and batch["public"]["processing_status"] == "ended":
            data = b"".join(json.dumps(line).encode() + b"\n" for line in batch["results"])
            self.send_response(200)
            self.send_header("Content-Type", "application/binary")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            self.send_json(404, error_body("not_found_error", f"Not found: {self.path}"))

    def do_POST(self) -> None:  # noqa: N802
        path = self.path.split("?")[0].rstrip("/")
        if path == BATCHES:
            self.create()
        elif path.startswith(BATCHES + "/") and path.endswith("/cancel"):
            self.read_json()
            batch = self.batches.get(path[len(BATCHES) + 1:].split("/")[0])
            if batch is None:
                self.send_json(404, error_body("not_found_error", "batch not found"))
                return
            if batch["public"]["processing_status"] == "in_progress":
                batch["public"].update(processing_status="canceling", cancel_initiated_at=now_iso())
            self.send_json(200, batch["public"])
        else:
            super().do_POST()

    def create(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > int(self.options.get("max_bytes", MAX_BYTES)):
            self.rfile.read(length)
            self.send_json(413, error_body("request_too_large", "Request exceeds the maximum allowed number of bytes."))
            return
        body = self.read_json()
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            self.send_json(400, error_body("invalid_request_error", "requests: Field required"))
            return
        if len(requests) > int(self.options.get("max_requests", MAX_REQUESTS)):
            self.send_json(413, error_body("request_too_large", f"A batch holds at most "
                                           f"{self.options.get('max_requests', MAX_REQUESTS)} requests."))
            return
        seen: set[str] = set()
        for index, request in enumerate(requests):
            custom_id = request.get("custom_id") if isinstance(request, dict) else None
            params = request.get("params") if isinstance(request, dict) else None
            if not isinstance(custom_id, str) or custom_id in seen or not isinstance(params, dict) \
                    or "max_tokens" not in params:
                self.send_json(400, error_body("invalid_request_error", f"requests.{index}: invalid request"))
                return
            seen.add(custom_id)
        batch_id = f"msgbatch_{len(self.batches) + 1:04d}"
        public = {
            "id": batch_id, "type": "message_batch", "processing_status": "in_progress",
            "request_counts": {"processing": len(requests), "succeeded": 0, "errored": 0, "canceled": 0,
                               "expired": 0},
            "ended_at": None, "created_at": now_iso(), "expires_at": now_iso(), "archived_at": None,
            "cancel_initiated_at": None, "results_url": None,
        }
        self.batches[batch_id] = {"public": public, "requests": requests, "polls": 0, "results": []}
        self.send_json(200, public)

    def advance(self, batch: dict[str, Any]) -> None:
        public = batch["public"]
        if public["processing_status"] == "canceling":
            self.end(batch, int(self.options.get("cancel_done", 1)), "canceled")
        elif public["processing_status"] == "in_progress":
            batch["polls"] += 1
            if batch["polls"] >= int(self.options.get("polls", 1)):
                expire_after = self.options.get("expire_after")
                self.end(batch, int(expire_after) if expire_after is not None else None, "expired")

    def end(self, batch: dict[str, Any], done: int | None, rest: str) -> None:
        failing = set(self.options.get("fail_custom_ids", ()))
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        results = []
        for index, request in enumerate(batch["requests"]):
            custom_id, params = request["custom_id"], request["params"]
            if done is not None and index >= done:
                result: dict[str, Any] = {"type": rest}
            elif custom_id in failing:
                result = {"type": "errored", "error": error_body("invalid_request_error", "messages: bad content")}
            else:
                served = self.resolve_model(str(params.get("model", "")))
                if served is None:
                    result = {"type": "errored", "error": error_body("not_found_error",
                                                                      f"model: {params.get('model')}")}
                else:
                    result = {"type": "succeeded", "message": self.message(params, served)}
            counts[result["type"]] += 1
            results.append({"custom_id": custom_id, "result": result})
        batch["results"] = results
        batch["public"].update(processing_status="ended", request_counts=counts, ended_at=now_iso(),
                               results_url=f"https://api.anthropic.com{BATCHES}/{batch['public']['id']}/results")


def anthropic_batch_server() -> LocalServer:
    return LocalServer(AnthropicBatchHandler)
