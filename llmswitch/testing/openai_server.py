"""A local server that speaks OpenAI's chat-completions wire format, and fails the way real servers do.

Shipped for plugin authors: an OpenAI-style backend tests against it (``llmswitch plugins new --http`` writes
such tests), behind :func:`llmswitch.testing.faults.fault_proxy` for protocol-independent failures.

It serves ``GET /v1/models`` and ``POST /v1/chat/completions`` (a JSON answer, or an SSE stream with a usage
chunk when ``stream_options.include_usage`` is set), over a real socket on 127.0.0.1. Set
``server.state.scenario`` to make it fail:

==========================  ==================================================================================
``ok``                      answer normally
``auth``                    401 with OpenAI's ``invalid_api_key`` error body
``forbidden``               403 (a key without access to the model / project)
``require_key``             401 unless the request carries ``Authorization: Bearer <options["key"]>``
``rate_limit``              429 with ``Retry-After: <options["retry_after"]>`` (default 7)
``invalid``                 400 ``invalid_request_error`` about the request itself (``param`` is ``messages``)
``server_error``            500 with an error body (its message is ``options["error_message"]`` when set)
``unavailable``             503 with ``Retry-After: <options["unavailable_retry_after"]>`` (default 1)
``html_page``               200 with an HTML page (a captive portal, a proxy's login page)
``bad_gateway``             502 with an HTML body (what a proxy in front of a dead server sends)
``reset``                   TCP reset before any response
``cut``                     stream a few chunks, then drop the connection without ``[DONE]``
``stall``                   stream a few chunks, then go quiet for ``options["delay"]`` seconds (default 5)
``garbage``                 stream a few chunks, then a ``data:`` line that is not JSON
``slow_first_byte``         wait ``options["delay"]`` seconds (default 5) before the status line
``reject_stream_options``   400 whenever the body has ``stream_options`` (older vLLM, some proxies)
``error_event``             stream a few chunks, then an in-stream ``{"error": ...}`` event (vLLM, OpenRouter)
``foreign``                 stream JSON events of another API (``{"response": ..., "done": ...}``), then ``[DONE]``;
                            a whole answer is one such object
``litellm``                 a LiteLLM proxy: a model it does not route gets 400 with LiteLLM's envelope
                            (``"Invalid model name passed in model=..."``, ``param`` the string ``"None"``)
``context_overflow``        what llama-cpp-python's server does with a prompt longer than its context: 400 with
                            ``context_length_exceeded`` for a whole answer; a stream that ends before any event
                            (with ``options["refuse_streams"]``, a stream gets the 400 too, as OpenAI and vLLM do)
==========================  ==================================================================================

``rate_limit`` and ``unavailable`` say their wait as an HTTP date instead with ``options["retry_after_date_s"]``,
and in milliseconds too with ``options["retry_after_ms"]`` (see
:meth:`~llmswitch.testing.server.ProtocolHandler.wait_headers`).

``options["no_stream_usage"]`` leaves usage out of streams, as llama.cpp's server does (it reports usage only for a
whole answer). A model that is not in ``options["models"]`` gets OpenAI's 404 ``model_not_found`` answer. The answer text is
``options["answer"]`` when set, else ``options["tokens"]`` deterministic words (see :func:`words`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from llmswitch.testing.server import LocalServer, ProtocolHandler, serve_until_killed, words

DEFAULT_MODELS = ("gpt-4o-mini", "test-model")
CREATED = 1_700_000_000


def error_body(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    """OpenAI's error envelope."""
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def chunk_line(model: str, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
    """One SSE event carrying a ``chat.completion.chunk``."""
    chunk = {
        "id": "chatcmpl-local",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }
    return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"


def usage_line(model: str, prompt_tokens: int, completion_tokens: int) -> bytes:
    chunk = {
        "id": "chatcmpl-local",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "choices": [],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
    return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"


class OpenAIHandler(ProtocolHandler):
    """The OpenAI chat-completions protocol, with failure scenarios."""

    # ---- helpers ----------------------------------------------------------------------------------

    @property
    def options(self) -> dict[str, Any]:
        return self.state.options

    def served_models(self) -> tuple[str, ...]:
        return tuple(self.options.get("models", DEFAULT_MODELS))

    def answer_pieces(self) -> list[str]:
        answer = self.options.get("answer")
        if answer is not None:
            return [answer[i : i + 4] for i in range(0, len(answer), 4)] or [""]
        return list(words(int(self.options.get("tokens", 5))))

    def prompt_tokens(self, body: dict[str, Any]) -> int:
        messages = body.get("messages") or []
        return sum(len(str(m.get("content", "")).split()) for m in messages) + 3 * len(messages)

    def fail_before_answer(self, scenario: str, body: Any) -> bool:
        """Answer with a failure if the scenario calls for one; True when a response was sent."""
        if scenario == "reset":
            self.reset_connection()
            return True
        if scenario == "slow_first_byte":
            self.hang(float(self.options.get("delay", 5.0)))
        if scenario == "auth" or (
            scenario == "require_key"
            and self.headers.get("Authorization") != f"Bearer {self.options.get('key', '')}"
        ):
            self.send_json(
                401,
                error_body("Incorrect API key provided: sk-...abcd.", "invalid_request_error", "invalid_api_key"),
            )
            return True
        if scenario == "forbidden":
            self.send_json(403, error_body("You do not have access to this project.", "invalid_request_error"))
            return True
        if scenario == "rate_limit":
            retry_after = str(self.options.get("retry_after", 7))
            self.send_json(
                429,
                error_body("Rate limit reached for requests.", "requests", "rate_limit_exceeded"),
                headers=self.wait_headers(retry_after),
            )
            return True
        if scenario == "unavailable":
            self.send_json(503, error_body("The engine is currently overloaded.", "server_error"),
                           headers=self.wait_headers(self.options.get("unavailable_retry_after", 1)))
            return True
        if scenario == "invalid":
            self.send_json(400, {"error": {"message": "Invalid value for 'messages[0].role': 'robot'.",
                                           "type": "invalid_request_error", "param": "messages", "code": None}})
            return True
        if scenario == "server_error":
            message = self.options.get("error_message", "The server had an error processing your request.")
            self.send_json(500, error_body(message, "server_error"))
            return True
        if scenario == "html_page":  # a captive portal or a proxy's login page, with status 200
            self.send_page(200, b"<html><head><title>Sign in to the Wi-Fi</title></head><body>Accept the terms"
                                b"</body></html>")
            return True
        if scenario == "bad_gateway":
            self.send_page(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>")
            return True
        return False

    # ---- routes -----------------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.read_json()  # records the request (headers included)
        if self.fail_before_answer(self.state.scenario, None):
            return
        if self.path.rstrip("/") != "/v1/models":
            self.send_json(404, error_body(f"Unknown path {self.path}", "invalid_request_error"))
            return
        data = [{"id": m, "object": "model", "created": CREATED, "owned_by": "local"} for m in self.served_models()]
        self.send_json(200, {"object": "list", "data": data})

    def do_POST(self) -> None:  # noqa: N802
        body = self.read_json()
        scenario = self.state.scenario
        if self.fail_before_answer(scenario, body):
            return
        if self.path.rstrip("/") != "/v1/chat/completions":
            self.send_json(404, error_body(f"Unknown path {self.path}", "invalid_request_error"))
            return
        if not isinstance(body, dict):
            self.send_json(400, error_body("We could not parse the JSON body of your request.", "invalid_request_error"))
            return
        if scenario == "reject_stream_options" and "stream_options" in body:
            self.send_json(
                400,
                error_body("Unrecognized request argument supplied: stream_options", "invalid_request_error"),
            )
            return
        model = str(body.get("model", ""))
        if model not in self.served_models() and scenario == "litellm":
            message = (f"400: {{'error': '/chat/completions: Invalid model name passed in model={model}. Call "
                       "`/v1/models` to view available models for your key.'}")
            self.send_json(400, {"error": {"message": message, "type": "None", "param": "None", "code": "400"}})
            return
        if model not in self.served_models():
            self.send_json(
                404,
                error_body(
                    f"The model `{model}` does not exist or you do not have access to it.",
                    "invalid_request_error",
                    "model_not_found",
                ),
            )
            return
        if scenario == "context_overflow":
            self.overflow_context(body)
            return
        if scenario == "foreign":
            self.send_foreign(body)
            return
        if body.get("stream"):
            self.send_stream(body, model, scenario)
        else:
            self.send_completion(body, model)

    # ---- answers ----------------------------------------------------------------------------------

    def send_foreign(self, body: dict[str, Any]) -> None:
        """Another API's answer (Ollama's /api/generate shape) where chat completions were expected."""
        pieces = self.answer_pieces()
        if not body.get("stream"):
            self.send_json(200, {"response": "".join(pieces), "done": True})
            return
        events = [b"data: " + json.dumps({"response": piece, "done": False}).encode() + b"\n\n" for piece in pieces]
        self.stream_lines([*events, b"data: [DONE]\n\n"], "text/event-stream")

    def overflow_context(self, body: dict[str, Any]) -> None:
        """llama-cpp-python's answers to a prompt that does not fit its context window (n_ctx)."""
        n_ctx = int(self.options.get("n_ctx", 2048))
        requested = self.prompt_tokens(body) + n_ctx
        if body.get("stream") and not self.options.get("refuse_streams"):
            self.start_chunked("text/event-stream")  # the server fails inside its generator: no event at all
            self.end_chunked()
            return
        message = (f"This model's maximum context length is {n_ctx} tokens. However, you requested {requested} "
                   f"tokens ({requested - 16} in the messages, 16 in the completion). Please reduce the length "
                   "of the messages or completion.")
        self.send_json(400, error_body(message, "invalid_request_error", "context_length_exceeded"))

    def send_completion(self, body: dict[str, Any], model: str) -> None:
        self.hang(float(self.options.get("answer_delay", 0.0)))  # a model that takes its time (benchmarks)
        pieces = self.answer_pieces()
        text = "".join(pieces)
        self.send_json(
            200,
            {
                "id": "chatcmpl-local",
                "object": "chat.completion",
                "created": CREATED,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "refusal": None},
                        "logprobs": None,
                        "finish_reason": self.options.get("finish_reason", "stop"),
                    }
                ],
                "usage": {
                    "prompt_tokens": self.prompt_tokens(body),
                    "completion_tokens": len(pieces),
                    "total_tokens": self.prompt_tokens(body) + len(pieces),
                },
            },
        )

    def stream_events(self, body: dict[str, Any], model: str, scenario: str) -> Iterator[bytes]:
        pieces = self.answer_pieces()
        yield chunk_line(model, {"role": "assistant", "content": ""})
        for index, piece in enumerate(pieces):
            if index == 3 and scenario == "stall":
                yield self.STALL
            if index == 3 and scenario in ("cut", "garbage", "error_event"):
                if scenario == "garbage":
                    yield b"data: {this is not json\n\n"
                elif scenario == "error_event":
                    error = error_body("The model crashed while generating.", "server_error")
                    yield b"data: " + json.dumps(error).encode() + b"\n\n"
                return
            yield chunk_line(model, {"content": piece})
        yield chunk_line(model, {}, self.options.get("finish_reason", "stop"))
        stream_options = body.get("stream_options") or {}
        if stream_options.get("include_usage") and not self.options.get("no_stream_usage"):
            yield usage_line(model, self.prompt_tokens(body), len(pieces))
        yield b"data: [DONE]\n\n"

    def send_stream(self, body: dict[str, Any], model: str, scenario: str) -> None:
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self.send_event_stream(lambda: self.stream_events(body, model, scenario),
                               "text/event-stream", scenario, (model, include_usage, self.prompt_tokens(body)))


def openai_server() -> LocalServer:
    """A new (not yet started) OpenAI-protocol server; use it as a context manager."""
    return LocalServer(OpenAIHandler)


def main(argv: list[str] | None = None) -> None:
    """Serve until killed: ``python -m llmswitch.testing.openai_server --tokens 20000`` (benchmarks)."""
    serve_until_killed(OpenAIHandler, argv)


if __name__ == "__main__":
    main()
