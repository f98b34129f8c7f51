"""A server that refuses every request and echoes back the credentials it received, as some proxies do.

Every request gets HTTP ``options["status"]`` (default 400) and an error body every backend reads
(``{"type": "error", "error": {"type": ..., "message": ...}}`` is OpenAI's, Anthropic's and, through
``error.message``, Ollama's shape) whose message quotes the headers that carry credentials (and ``X-Title``, to show the echo arrived). A test checks that
what llmswitch shows, prints as JSON, stores or renders carries none of it in full.
"""

from __future__ import annotations

from tests.servers.http import LocalServer, ProtocolHandler

ECHOED = ("X-Title", "Authorization", "X-Api-Key", "X-Auth-Token")


class EchoingHandler(ProtocolHandler):
    def do_GET(self) -> None:
        self._refuse()

    def do_POST(self) -> None:
        self._refuse()

    def _refuse(self) -> None:
        self.read_json()  # records the request
        quoted = "; ".join(f"{name}={self.headers[name]}" for name in ECHOED if name in self.headers)
        message = f"invalid credentials: {quoted}"
        payload = {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
        self.send_json(int(self.state.options.get("status", 400)), payload)


def echoing_server() -> LocalServer:
    return LocalServer(EchoingHandler)
