"""A local server that speaks Anthropic's Messages API wire format, and fails the way the real one does.

It serves ``GET /v1/models``, ``POST /v1/messages`` (a JSON message, or an SSE stream with ``event:`` lines:
``message_start``, ``content_block_start``, ``ping``, ``content_block_delta``..., ``content_block_stop``,
``message_delta`` with usage, ``message_stop``) and ``POST /v1/messages/count_tokens``, over a real socket
on 127.0.0.1. Set ``server.state.scenario`` to make it fail:

===================  ==========================================================================================
``ok``               answer normally
``auth``             401 ``authentication_error``
``require_key``      401 unless the request carries ``options["key"]`` (``x-api-key`` or ``Authorization: Bearer``)
``forbidden``        403 ``permission_error``
``rate_limit``       429 ``rate_limit_error`` with ``Retry-After: <options["retry_after"]>`` (default 7)
``server_error``     500 ``api_error``
``overloaded``       529 ``overloaded_error`` (with ``Retry-After: <options["overloaded_retry_after"]>`` when set)
``flaky``            529 for the first ``options["failures"]`` (default 1) requests, then answer normally
``bad_gateway``      502 with an HTML body (a proxy in front of a dead server)
``html_page``        200 with an HTML body (a captive portal, or a proxy's login page)
``reset``            TCP reset before any response
``slow_first_byte``  wait ``options["delay"]`` seconds (default 5) before the status line
``cut``              stream a few deltas, then drop the connection mid-body
``garbage``          stream a few deltas, then a ``data:`` line that is not JSON
``error_event``      stream a few deltas, then ``event: error`` with ``overloaded_error`` (what Anthropic sends)
``no_stop``          stream a few deltas, then end the body cleanly without ``message_stop``
``stall``            stream a few deltas, then go quiet for ``options["delay"]`` seconds
``foreign``          stream OpenAI's chat.completion chunks (no ``event:`` names) and end: another protocol
``no_count``         ``/v1/messages/count_tokens`` answers 404 (a proxy that lacks it)
``invalid``          400 ``invalid_request_error`` about the request itself (roles must alternate)
``billing``          402 ``billing_error`` (no credit left)
``no_sampling``      400 ``invalid_request_error`` when the body sets temperature, top_p or top_k (Sonnet 5 and later)
===================  ==========================================================================================

``rate_limit`` and ``overloaded`` say their wait as an HTTP date with ``options["retry_after_date_s"]``, and in
milliseconds too with ``options["retry_after_ms"]`` (``ProtocolHandler.wait_headers``).

A model that neither is in ``options["models"]`` nor is an alias of one (``claude-sonnet-4-5`` for
``claude-sonnet-4-5-20250929``) gets Anthropic's 404 ``not_found_error``. The answer text is
``options["answer"]`` when set, else ``options["tokens"]`` deterministic words (see :func:`words`).
``options["thinking"]`` adds a thinking block before the text, as extended thinking does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from tests.servers.http import LocalServer, ProtocolHandler, serve_until_killed, words

DEFAULT_MODELS = ("claude-sonnet-5-5", "claude-haiku-4-5-20251001", "claude-sonnet-4-5-20250929", "claude-opus-4-5-20251101")


def error_body(kind: str, message: str) -> dict[str, Any]:
    """Anthropic's error envelope."""
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_local"}


def sse(event: str, payload: dict[str, Any]) -> bytes:
    """One server-sent event as Anthropic writes it: an ``event:`` line, a ``data:`` line, a blank line."""
    return b"event: " + event.encode() + b"\ndata: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def text_delta(text: str, index: int = 0) -> bytes:
    return sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                       "delta": {"type": "text_delta", "text": text}})


class AnthropicHandler(ProtocolHandler):
    """Anthropic's Messages API, with failure scenarios."""

    # ---- helpers ----------------------------------------------------------------------------------

    @property
    def options(self) -> dict[str, Any]:
        return self.state.options

    def served_models(self) -> tuple[str, ...]:
        return tuple(self.options.get("models", DEFAULT_MODELS))

    def resolve_model(self, model: str) -> str | None:
        """The served model a name refers to (itself, or the dated snapshot an alias stands for)."""
        for served in self.served_models():
            if served == model or served.startswith(model + "-"):
                return served
        return None

    def answer_pieces(self) -> list[str]:
        answer = self.options.get("answer")
        if answer is not None:
            return [answer[i : i + 4] for i in range(0, len(answer), 4)] or [""]
        return list(words(int(self.options.get("tokens", 5))))

    def input_tokens(self, body: dict[str, Any]) -> int:
        messages = body.get("messages") or []
        text = " ".join(str(m.get("content", "")) for m in messages) + " " + str(body.get("system") or "")
        return len(text.split()) + 3 * len(messages)

    def sent_key(self) -> str | None:
        key = self.headers.get("x-api-key")
        if key:
            return key
        authorization = self.headers.get("Authorization") or ""
        return authorization[len("Bearer ") :] if authorization.startswith("Bearer ") else None

    def fail_before_answer(self, scenario: str) -> bool:
        """Answer with a failure if the scenario calls for one; True when a response was sent."""
        if scenario == "reset":
            self.reset_connection()
            return True
        if scenario == "slow_first_byte":
            self.hang(float(self.options.get("delay", 5.0)))
        if scenario == "auth" or (scenario == "require_key" and self.sent_key() != self.options.get("key")):
            self.send_json(401, error_body("authentication_error", "invalid x-api-key"))
            return True
        if scenario == "forbidden":
            self.send_json(403, error_body("permission_error", "Your API key does not have permission to use the "
                                                              "specified resource."))
            return True
        if scenario == "rate_limit":
            self.send_json(
                429,
                error_body("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
                headers=self.wait_headers(self.options.get("retry_after", 7)),
            )
            return True
        if scenario == "server_error":
            self.send_json(500, error_body("api_error", "Internal server error"))
            return True
        if scenario == "overloaded" or (
            scenario == "flaky" and self.options.setdefault("_failed", 0) < int(self.options.get("failures", 1))
        ):
            headers = self.wait_headers(self.options.get("overloaded_retry_after"))
            if scenario == "flaky":
                self.options["_failed"] += 1
                headers["retry-after-ms"] = "10"  # the SDK's retry then waits 10 ms, not its 0.5 s backoff
            self.send_json(529, error_body("overloaded_error", "Overloaded"), headers=headers)
            return True
        if scenario in ("bad_gateway", "html_page"):
            page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
            self.send_response(502 if scenario == "bad_gateway" else 200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
            return True
        return False

    # ---- routes -----------------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.read_json()  # records the request (headers included)
        if self.fail_before_answer(self.state.scenario):
            return
        if self.path.split("?")[0].rstrip("/") != "/v1/models":
            self.send_json(404, error_body("not_found_error", f"Not found: {self.path}"))
            return
        data = [
            {"type": "model", "id": m, "display_name": m, "created_at": "2025-09-29T00:00:00Z"}
            for m in self.served_models()
        ]
        self.send_json(200, {"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
                             "last_id": data[-1]["id"] if data else None})

    def do_POST(self) -> None:  # noqa: N802
        body = self.read_json()
        scenario = self.state.scenario
        path = self.path.split("?")[0].rstrip("/")
        if self.fail_before_answer(scenario):
            return
        if path not in ("/v1/messages", "/v1/messages/count_tokens") or (
            path == "/v1/messages/count_tokens" and scenario == "no_count"
        ):
            self.send_json(404, error_body("not_found_error", f"Not found: {self.path}"))
            return
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            self.send_json(400, error_body("invalid_request_error", "messages: Field required"))
            return
        served = self.resolve_model(str(body.get("model", "")))
        if served is None:
            self.send_json(404, error_body("not_found_error", f"model: {body.get('model')}"))
            return
        if path == "/v1/messages/count_tokens":
            self.send_json(200, {"input_tokens": int(self.options.get("count", self.input_tokens(body)))})
            return
        if scenario == "invalid":
            self.send_json(400, error_body("invalid_request_error",
                                           "messages: roles must alternate between \"user\" and \"assistant\""))
            return
        if scenario == "billing":
            self.send_json(402, error_body("billing_error", "Your credit balance is too low."))
            return
        sampling = [name for name in ("temperature", "top_p", "top_k") if name in body]
        if scenario == "no_sampling" and sampling:
            self.send_json(400, error_body("invalid_request_error",
                                           f"{sampling[0]}: is not supported for this model; use the default"))
            return
        if "max_tokens" not in body:
            self.send_json(400, error_body("invalid_request_error", "max_tokens: Field required"))
            return
        if body.get("stream"):
            self.send_stream(body, served, scenario)
        else:
            self.send_message(body, served)

    # ---- answers ----------------------------------------------------------------------------------

    def send_message(self, body: dict[str, Any], model: str) -> None:
        self.send_json(200, self.message(body, model))

    def message(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        """A whole answer, as ``POST /v1/messages`` returns it."""
        pieces = self.answer_pieces()
        content: list[dict[str, Any]] = []
        if self.options.get("thinking"):
            content.append({"type": "thinking", "thinking": "Let me think.", "signature": "c2ln"})
        content.append({"type": "text", "text": "".join(pieces)})
        return {
            "id": "msg_local",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": self.options.get("stop_reason", "end_turn"),
            "stop_sequence": None,
            "usage": {"input_tokens": self.input_tokens(body), "output_tokens": len(pieces),
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
        }

    def stream_events(self, body: dict[str, Any], model: str, scenario: str) -> Iterator[bytes]:
        pieces = self.answer_pieces()
        if scenario == "foreign":
            for piece in pieces:
                chunk = {"object": "chat.completion.chunk", "model": model,
                         "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                yield b"data: " + json.dumps(chunk).encode() + b"\n\n"
            return
        yield sse("message_start", {"type": "message_start", "message": {
            "id": "msg_local", "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": self.input_tokens(body), "output_tokens": 1,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
        }})
        index = 0
        if self.options.get("thinking"):
            yield sse("content_block_start", {"type": "content_block_start", "index": 0,
                                              "content_block": {"type": "thinking", "thinking": ""}})
            yield sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                              "delta": {"type": "thinking_delta", "thinking": "Let me think."}})
            yield sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                              "delta": {"type": "signature_delta", "signature": "c2ln"}})
            yield sse("content_block_stop", {"type": "content_block_stop", "index": 0})
            index = 1
        yield sse("content_block_start", {"type": "content_block_start", "index": index,
                                          "content_block": {"type": "text", "text": ""}})
        yield sse("ping", {"type": "ping"})
        for number, piece in enumerate(pieces):
            if number == 3 and scenario in ("cut", "garbage", "error_event", "no_stop", "stall"):
                if scenario == "garbage":
                    yield b"event: content_block_delta\ndata: {this is not json\n\n"
                elif scenario == "error_event":
                    yield sse("error", error_body("overloaded_error", "Overloaded"))
                elif scenario == "stall":
                    yield self.STALL
                return
            yield text_delta(piece, index)
        yield sse("content_block_stop", {"type": "content_block_stop", "index": index})
        yield sse("message_delta", {"type": "message_delta",
                                    "delta": {"stop_reason": self.options.get("stop_reason", "end_turn"),
                                              "stop_sequence": None},
                                    "usage": {"output_tokens": len(pieces)}})
        yield sse("message_stop", {"type": "message_stop"})

    def send_stream(self, body: dict[str, Any], model: str, scenario: str) -> None:
        self.send_event_stream(lambda: self.stream_events(body, model, scenario),
                               "text/event-stream; charset=utf-8", scenario, (model, self.input_tokens(body)))


def anthropic_server() -> LocalServer:
    """A new (not yet started) Anthropic-protocol server; use it as a context manager."""
    return LocalServer(AnthropicHandler)


def main(argv: list[str] | None = None) -> None:
    """Serve until killed: ``python -m tests.servers.anthropic_server --tokens 20000`` (benchmarks)."""
    serve_until_killed(AnthropicHandler, argv)


if __name__ == "__main__":
    main()
