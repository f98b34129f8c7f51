"""A local server that speaks Ollama's REST API wire format, and fails the way a real one does.

It serves ``GET /api/version``, ``GET /api/tags`` and ``POST /api/chat`` (one JSON object, or an NDJSON
stream: one ``{"message": {"content": ...}, "done": false}`` line per piece, then a ``done`` line with
``done_reason``, ``prompt_eval_count`` and ``eval_count``) over a real socket on 127.0.0.1. Set
``server.state.scenario`` to make it fail:

===================  ==========================================================================================
``ok``               answer normally
``proxy_auth``       401 (an authenticating proxy in front of Ollama) unless ``Authorization`` is
                     ``options["authorization"]``
``rate_limit``       429 with ``Retry-After: <options["retry_after"]>`` (default 7), as a proxy sends it
``server_error``     500 ``{"error": ...}`` (what Ollama sends when a model does not fit in memory)
``unavailable``      503 ``{"error": "server busy, ..."}`` (Ollama's queue is full: ``OLLAMA_MAX_QUEUE``)
``bad_request``      400 ``{"error": ...}``
``reset``            TCP reset before any response
``slow_first_byte``  wait ``options["delay"]`` seconds (default 5) before the status line (a model loading)
``cut``              stream a few lines, then drop the connection mid-body
``garbage``          stream a few lines, then a line that is not JSON
``error_line``       stream a few lines, then ``{"error": "..."}`` (what Ollama sends when the runner dies)
``no_done``          stream a few lines, then end the body cleanly without a ``done`` line
``stall``            stream a few lines, then go quiet for ``options["delay"]`` seconds
``generate_lines``   stream ``/api/generate``'s lines (``response``, no ``message``) and its ``done`` line: what a
                     proxy translating to another Ollama endpoint sends
``not_ollama``       every path answers 404 ``404 page not found`` (some other server on the port)
===================  ==========================================================================================

A model that is not in ``options["models"]`` (``llama3.2`` counts as ``llama3.2:latest``) gets Ollama's 404
``model "x" not found, try pulling it first``. The answer is ``options["answer"]`` when set, else
``options["tokens"]`` deterministic words (see :func:`words`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from tests.servers.http import LocalServer, ProtocolHandler, serve_until_killed, words

DEFAULT_MODELS = ("llama3.2:latest", "qwen3:0.6b")
VERSION = "0.12.3"
CREATED_AT = "2025-11-24T00:00:00.000000000Z"
TOKEN_NS = 21_739_131  # a line's time after the one before: about 46 tokens a second


def created_at(number: int) -> str:
    """The time stamp of the ``number``-th line, as Ollama writes it (Go's RFC 3339 with nanoseconds, trailing
    zeros dropped): every line's differs, in length too, as from a real server."""
    seconds, nanoseconds = divmod(number * TOKEN_NS, 1_000_000_000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    fraction = f".{nanoseconds:09d}".rstrip("0") if nanoseconds else ""
    return f"2025-11-24T{hours:02d}:{minutes:02d}:{seconds:02d}{fraction}Z"


def line(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode() + b"\n"


class OllamaHandler(ProtocolHandler):
    """Ollama's /api routes, with failure scenarios."""

    # ---- helpers ----------------------------------------------------------------------------------

    @property
    def options(self) -> dict[str, Any]:
        return self.state.options

    def served_models(self) -> tuple[str, ...]:
        return tuple(self.options.get("models", DEFAULT_MODELS))

    def resolve_model(self, model: str) -> str | None:
        full = model if ":" in model else f"{model}:latest"
        return full if full in self.served_models() else None

    def answer_pieces(self) -> list[str]:
        answer = self.options.get("answer")
        if answer is not None:
            return [answer[i : i + 4] for i in range(0, len(answer), 4)] or [""]
        return list(words(int(self.options.get("tokens", 5))))

    def prompt_tokens(self, body: dict[str, Any]) -> int:
        messages = body.get("messages") or []
        return sum(len(str(m.get("content", "")).split()) for m in messages) + 4 * len(messages)

    def send_text(self, status: int, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def fail_before_answer(self, scenario: str) -> bool:
        """Answer with a failure if the scenario calls for one; True when a response was sent."""
        if scenario == "reset":
            self.reset_connection()
            return True
        if scenario == "not_ollama":
            self.send_text(404, "404 page not found")
            return True
        if scenario == "slow_first_byte":
            self.hang(float(self.options.get("delay", 5.0)))
        if scenario == "proxy_auth" and self.headers.get("Authorization") != self.options.get("authorization"):
            self.send_json(401, {"error": "unauthorized"})
            return True
        if scenario == "unavailable":
            self.send_json(503, {"error": "server busy, please try again.  maximum pending requests exceeded"})
            return True
        if scenario == "rate_limit":
            self.send_json(429, {"error": "too many requests"},
                           headers={"Retry-After": str(self.options.get("retry_after", 7))})
            return True
        return False

    # ---- routes -----------------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.read_json()  # records the request (headers included)
        if self.fail_before_answer(self.state.scenario):
            return
        if self.path == "/api/version":
            self.send_json(200, {"version": VERSION})
        elif self.path == "/api/tags":
            models = [{"name": m, "model": m, "modified_at": CREATED_AT, "size": 1_000_000, "digest": "0" * 64,
                       "details": {"format": "gguf", "family": "llama", "parameter_size": "1B",
                                   "quantization_level": "Q4_K_M"}} for m in self.served_models()]
            self.send_json(200, {"models": models})
        else:
            self.send_text(404, "404 page not found")

    def do_POST(self) -> None:  # noqa: N802
        body = self.read_json()
        scenario = self.state.scenario
        if self.fail_before_answer(scenario):
            return
        if self.path != "/api/chat":
            self.send_text(404, "404 page not found")
            return
        if not isinstance(body, dict):
            self.send_json(400, {"error": "invalid request body"})
            return
        if scenario == "bad_request":
            self.send_json(400, {"error": "json: cannot unmarshal string into Go struct field .keep_alive"})
            return
        model = str(body.get("model", ""))
        served = self.resolve_model(model)
        if served is None:
            self.send_json(404, {"error": f'model "{model}" not found, try pulling it first'})
            return
        if scenario == "server_error":
            self.send_json(500, {"error": "model requires more system memory (8.0 GiB) than is available (2.0 GiB)"})
            return
        if body.get("stream", True):
            self.send_stream(body, model, scenario)
        else:
            self.send_chat(body, model)

    # ---- answers ----------------------------------------------------------------------------------

    def final(self, body: dict[str, Any], model: str, pieces: list[str]) -> dict[str, Any]:
        return {
            "model": model, "created_at": created_at(len(pieces)), "done": True,
            "done_reason": self.options.get("done_reason", "stop"),
            "total_duration": 1_000_000, "load_duration": 100_000, "prompt_eval_count": self.prompt_tokens(body),
            "prompt_eval_duration": 200_000, "eval_count": len(pieces), "eval_duration": 700_000,
        }

    def send_chat(self, body: dict[str, Any], model: str) -> None:
        pieces = self.answer_pieces()
        payload = self.final(body, model, pieces)
        payload["message"] = {"role": "assistant", "content": "".join(pieces)}
        self.send_json(200, payload)

    def stream_events(self, body: dict[str, Any], model: str, scenario: str) -> Iterator[bytes]:
        pieces = self.answer_pieces()
        if scenario == "generate_lines":
            for number, piece in enumerate(pieces):
                yield line({"model": model, "created_at": created_at(number), "response": piece, "done": False})
            yield line(self.final(body, model, pieces))
            return
        for number, piece in enumerate(pieces):
            if number == 3 and scenario in ("cut", "garbage", "error_line", "no_done", "stall"):
                if scenario == "garbage":
                    yield b"{this is not json\n"
                elif scenario == "error_line":
                    yield line({"error": "an error was encountered while running the model: unexpected EOF"})
                elif scenario == "stall":
                    yield self.STALL
                return
            yield line({"model": model, "created_at": created_at(number),
                        "message": {"role": "assistant", "content": piece}, "done": False})
        final = self.final(body, model, pieces)
        final["message"] = {"role": "assistant", "content": ""}
        yield line(final)

    def send_stream(self, body: dict[str, Any], model: str, scenario: str) -> None:
        self.send_event_stream(lambda: self.stream_events(body, model, scenario),
                               "application/x-ndjson", scenario, (model, self.prompt_tokens(body)))


def ollama_server() -> LocalServer:
    """A new (not yet started) Ollama-protocol server; use it as a context manager."""
    return LocalServer(OllamaHandler)


def main(argv: list[str] | None = None) -> None:
    """Serve until killed: ``python -m tests.servers.ollama_server --tokens 20000`` (benchmarks)."""
    serve_until_killed(OllamaHandler, argv)


if __name__ == "__main__":
    main()
