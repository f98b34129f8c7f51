"""A server that answers every request with a redirect to another origin (``options["to"]``, a base URL),
keeping the path (so the new address is ``to`` + the requested path): what a hijacked DNS name, a captive portal or a moved proxy looks like.

``options["status"]`` is the redirect status (default 307, which tells a client to re-send the body too).
"""

from __future__ import annotations

from tests.servers.http import LocalServer, ProtocolHandler


class RedirectingHandler(ProtocolHandler):
    def do_GET(self) -> None:
        self._redirect()

    def do_POST(self) -> None:
        self._redirect()

    def _redirect(self) -> None:
        self.read_json()  # records the request
        self.send_response(int(self.state.options.get("status", 307)))
        self.send_header("Location", str(self.state.options["to"]).rstrip("/") + self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()


def redirecting_server() -> LocalServer:
    return LocalServer(RedirectingHandler)
