"""A fault-injecting proxy for protocol tests: put it in front of any protocol server and script its failures.

The proxy forwards each request to the real protocol server (yours, on :class:`~llmswitch.testing.server.
LocalServer`) and relays the answer, or fails the way servers, proxies and networks do, whatever the wire
format. That is what lets :mod:`llmswitch.testing.conformance` check every HTTP backend against the same
list of failures without knowing its protocol. Set ``proxy.state.scenario`` to one of :data:`FAULTS`:

===================  =======================================================================================
``ok``               relay the answer (``options["interval"]``: seconds between relayed lines)
``status_401``       401, ``status_403``, ``status_404``, ``status_500``, ``status_503``: a JSON error body
                     (``{"error": {"message": ..., "type": ...}}``) whose message quotes the key
                     ``options["key"]`` in full when the request carried it, as careless servers do
``status_429``       429 with ``Retry-After: 7``
``bad_gateway``      502 with an HTML page (a proxy in front of a dead server)
``html_page``        200 with an HTML page (a captive portal)
``empty``            200 with an empty body
``reset``            a TCP reset before any answer
``cut``              the first lines of the real answer, then the connection dropped
``garbage``          the first lines of the real answer, then bytes of no protocol, then a clean end
``stall``            the first lines of the real answer, then silence for ``options["delay"]`` s (default 3)
===================  =======================================================================================

``state.requests`` records what the client sent (the proxy's own copy, before forwarding); ``state.disconnected``
is set when the client goes away while an answer is being relayed (a closed stream).
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import time
from typing import Any
from urllib.parse import urlsplit

from llmswitch.testing.server import LocalServer, ProtocolHandler

STATUS_FAULTS = {"status_401": 401, "status_403": 403, "status_404": 404, "status_429": 429,
                 "status_500": 500, "status_503": 503}
RELAY_FAULTS = ("cut", "garbage", "stall")
FAULTS = (*STATUS_FAULTS, "bad_gateway", "html_page", "empty", "reset", *RELAY_FAULTS)
RETRY_AFTER_S = 7
GARBAGE = b"\x00\xff\xfe<<not any protocol>>\xc3\x28\n\n"
HOP_BY_HOP = {"host", "content-length", "connection", "transfer-encoding", "accept-encoding", "keep-alive"}


class FaultProxyHandler(ProtocolHandler):
    """Forward to ``options["upstream"]`` (a URL), or fail as the scenario says."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.handle_any()

    def do_POST(self) -> None:  # noqa: N802
        self.handle_any()

    def do_PUT(self) -> None:  # noqa: N802
        self.handle_any()

    def do_DELETE(self) -> None:  # noqa: N802
        self.handle_any()

    def handle_any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        self.record(raw)
        scenario = self.state.scenario
        if scenario == "reset":
            self.reset_connection()
        elif scenario in STATUS_FAULTS:
            self.send_status_fault(STATUS_FAULTS[scenario])
        elif scenario in ("bad_gateway", "html_page"):
            status = 502 if scenario == "bad_gateway" else 200
            self.send_page(status, b"<html><head><title>Sign in</title></head><body><h1>Not an API</h1></body></html>")
        elif scenario == "empty":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.relay(raw, scenario)

    def record(self, raw: bytes) -> None:
        from llmswitch.testing.server import Recorded

        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        headers = {key.lower(): value for key, value in self.headers.items()}
        self.state.requests.append(Recorded(self.command, self.path, headers, body))

    def send_status_fault(self, status: int) -> None:
        key = str(self.state.options.get("key") or "")
        sent = self.state.requests[-1]
        if key not in str(sent.headers) + str(sent.body):
            key = ""  # a server can quote back only a key it was sent
        message = f"request refused with status {status}; the key sent was {key}" if key else f"status {status}"
        headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 429 else None
        self.send_json(status, {"error": {"message": message, "type": "conformance_fault", "code": status}},
                       headers=headers)

    # ---- relaying -------------------------------------------------------------------------------------

    def fetch_upstream(self, raw: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        upstream = urlsplit(str(self.state.options["upstream"]))
        connection = http.client.HTTPConnection(upstream.hostname or "127.0.0.1", upstream.port, timeout=30)
        try:
            headers = {key: value for key, value in self.headers.items() if key.lower() not in HOP_BY_HOP}
            connection.request(self.command, self.path, body=raw or None, headers=headers)
            answer = connection.getresponse()
            return answer.status, answer.getheaders(), answer.read()
        finally:
            connection.close()

    def relay(self, raw: bytes, scenario: str) -> None:
        status, headers, body = self.fetch_upstream(raw)
        lines = body.splitlines(keepends=True)
        content_type = next((value for key, value in headers if key.lower() == "content-type"), "")
        streamed = status == 200 and ("event-stream" in content_type or "ndjson" in content_type
                                      or any(key.lower() == "transfer-encoding" for key, _ in headers))
        if not streamed and scenario not in RELAY_FAULTS:
            self.send_response(status)
            for key, value in headers:
                if key.lower() not in HOP_BY_HOP:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.start_chunked(content_type or "application/octet-stream", status)
        if scenario in RELAY_FAULTS:
            # Enough of the real answer for a stream to have started (its first event or two), then the fault.
            for line in lines[: max(1, min(4, len(lines) // 2))]:
                self.write_chunk(line)
            self.wfile.flush()
            if scenario == "garbage":
                self.write_chunk(GARBAGE)
                self.end_chunked()
            elif scenario == "stall":
                self.hang(float(self.state.options.get("delay", 3.0)))
                self.cut_connection()
            else:
                self.cut_connection()
            return
        interval = float(self.state.options.get("interval", 0))
        for line in lines:
            if interval:
                if self.client_left():
                    self.state.disconnected.set()
                    self.close_connection = True
                    return
                time.sleep(interval)
            self.write_chunk(line)
            self.wfile.flush()
        self.end_chunked()

    def client_left(self) -> bool:
        """True once the client closed its end (readable, and nothing to read)."""
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""  # look without taking
        except OSError:
            return True


def fault_proxy(upstream: str) -> LocalServer:
    """A new (not yet started) fault proxy in front of ``upstream`` (``http://127.0.0.1:PORT``)."""
    server = LocalServer(FaultProxyHandler)
    server.state.options["upstream"] = upstream
    return server
