"""A tiny threaded HTTP/1.1 server on 127.0.0.1 for protocol tests, shipped for plugin authors too.

Each protocol server (OpenAI, Anthropic, Ollama in llmswitch's tests; yours in a plugin's) subclasses
:class:`ProtocolHandler` and speaks the real wire format over a real socket: status lines, headers, chunked
SSE or NDJSON bodies. Tests flip a ``scenario`` to make the server fail the way real ones do (401, 404, 429
with Retry-After, 500, a reset, a stream cut off mid-way, garbage bytes, a hang). The server notices a
client that goes away mid-answer (``state.disconnected``), so a test can check that stopping a stream really
closes the connection; the ``interval`` option paces a stream (seconds between events); ``hold_open`` holds a
stream's body open that many seconds after its last event. Each recorded request has its ``client_port``
(requests on one kept-alive connection share it).
"""

from __future__ import annotations

import atexit
import json
import socket
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float = field(default_factory=time.monotonic)  # when it arrived (a retry's wait is measured here)
    client_port: int = 0  # the client's end of the connection: requests on one connection share it


@dataclass
class ServerState:
    """What a server does (``scenario``) and what it saw. ``script`` scripts faults request by request: each
    request takes the next scenario from it (``["rate_limit", "ok"]``: a 429, then an answer), and the last
    one taken stays in force once it is empty."""

    scenario: str = "ok"
    script: list[str] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    disconnected: threading.Event = field(default_factory=threading.Event)  # a client left mid-answer


class ProtocolHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as real servers set it: without it the status line, headers and first chunk (separate small
    # writes) wait on the client's delayed ACK, adding ~40 ms to a first token that no real server adds.
    disable_nagle_algorithm = True
    state: ServerState  # set on the subclass made per server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError):
            # The client went away mid-answer (a cancelled stream, a timeout): what clients do.
            self.state.disconnected.set()
            self.close_connection = True

    # ---- reading --------------------------------------------------------------------------------

    def read_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
        self.state.requests.append(
            Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                     client_port=self.client_address[1])
        )
        if self.state.script:
            self.state.scenario = self.state.script.pop(0)
        return body

    # ---- writing --------------------------------------------------------------------------------

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = self.swap_bytes(json.dumps(payload).encode())
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def wait_headers(self, seconds: object | None) -> dict[str, str]:
        """The wait a failure asks for: ``Retry-After: <seconds>`` (None: no such header), or, when the options
        say so, ``Retry-After`` as an HTTP date ``options["retry_after_date_s"]`` seconds after this answer (the
        format has whole seconds, so the wait it gives is up to a second shorter), and ``retry-after-ms:
        <options["retry_after_ms"]>`` beside it (OpenAI and Anthropic send both; clients read that one first)."""
        headers: dict[str, str] = {}
        ahead = self.state.options.get("retry_after_date_s")
        if ahead is not None:
            from email.utils import formatdate

            headers["Retry-After"] = formatdate(time.time() + float(ahead), usegmt=True)
        elif seconds is not None:
            headers["Retry-After"] = str(seconds)
        if self.state.options.get("retry_after_ms") is not None:
            headers["retry-after-ms"] = str(self.state.options["retry_after_ms"])
        return headers

    def send_page(self, status: int, page: bytes) -> None:
        """An HTML page where an answer should be (a captive portal, a proxy's error page)."""
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def swap_bytes(self, data: bytes) -> bytes:
        """Apply the ``swap_bytes`` option ({b"~": b"\\xff"}) to what is sent: a way to put bytes that are not
        UTF-8 (or anything else JSON cannot carry) into an otherwise well-formed answer."""
        for old, new in self.state.options.get("swap_bytes", {}).items():
            data = data.replace(old, new)
        return data

    def start_chunked(self, content_type: str, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()

    def write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def stream_lines(self, lines: Iterable[bytes], content_type: str, batch: int = 64) -> None:
        """Send pre-encoded lines as a chunked body, ``batch`` lines per chunk (fast, still incremental)."""
        self.start_chunked(content_type)
        buffer: list[bytes] = []
        for line in lines:
            buffer.append(line)
            if len(buffer) >= batch:
                self.write_chunk(b"".join(buffer))
                buffer.clear()
        if buffer:
            self.write_chunk(b"".join(buffer))
        hold = float(self.state.options.get("hold_open", 0))
        if hold:  # the last event sent, the body's end held back (a server or proxy slow to finish its body)
            self.wfile.flush()
            self.hang(hold)
        self.end_chunked()

    def cut_connection(self) -> None:
        """Drop the connection mid-response (what a crashed server or proxy looks like)."""
        self.wfile.flush()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def reset_connection(self) -> None:
        """Send a TCP RST: the client sees 'connection reset by peer'."""
        import struct

        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def hang(self, seconds: float) -> None:
        time.sleep(seconds)

    # The marker a protocol's event generator yields where the server should go silent (a stalled stream).
    STALL = b"STALL"

    def send_event_stream(
        self, events: Callable[[], Iterable[bytes]], content_type: str, scenario: str, cache_key: Hashable
    ) -> None:
        """Send a streamed answer the way the scenario says.

        ``ok`` with the ``cache`` option (benchmarks) encodes each distinct stream once, so the server's own
        cost is only the send; ``cut`` and ``stall`` send what ``events`` yields up to the end or to
        :attr:`STALL` (then hang for the ``delay`` option) and drop the connection.
        """
        batch = int(self.state.options.get("batch", 64))
        if self.state.options.get("swap_bytes"):
            original = events
            events = lambda: map(self.swap_bytes, original())  # noqa: E731
        if scenario == "ok" and self.state.options.get("cache"):
            cache = self.state.options.setdefault("_encoded", {})
            if cache_key not in cache:
                cache[cache_key] = list(events())
            self.stream_lines(cache[cache_key], content_type, batch=batch)
            return
        if scenario == "keepalive":
            # Only keep-alives, never an answer: ``options["keepalive"]`` (default an SSE comment) every
            # ``options["interval"]`` seconds (0.3), ``options["keepalives"]`` times (100), then hang up.
            self.start_chunked(content_type)
            for _ in range(int(self.state.options.get("keepalives", 100))):
                self.write_chunk(self.state.options.get("keepalive", b": keep-alive\n\n"))
                self.wfile.flush()
                self.hang(float(self.state.options.get("interval", 0.3)))
            self.cut_connection()
            return
        if scenario in ("cut", "stall"):
            self.start_chunked(content_type)
            for event in events():
                if event == self.STALL:
                    self.wfile.flush()
                    self.hang(float(self.state.options.get("delay", 5.0)))
                    break
                self.write_chunk(event)
            self.cut_connection()
            return
        interval = float(self.state.options.get("interval", 0))
        if interval:
            self.start_chunked(content_type)
            for event in events():
                self.write_chunk(event)
                self.wfile.flush()
                time.sleep(interval)
            self.end_chunked()
            return
        self.stream_lines(events(), content_type, batch=batch)


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # many clients connecting at once (concurrency tests, benchmarks) are not refused


class LocalServer:
    """Run a handler class on 127.0.0.1:<free port> in a background thread; use as a context manager."""

    def __init__(self, handler: type[ProtocolHandler]) -> None:
        self.state = ServerState()
        self.handler = type(handler.__name__, (handler,), {"state": self.state})
        self.httpd = _Server(("127.0.0.1", 0), self.handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LocalServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def serve_until_killed(handler: type[ProtocolHandler], argv: list[str] | None = None) -> None:
    """``python -m tests.servers.X --tokens 20000``: serve on a free port, print the URL, wait (benchmarks)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=f"Serve {handler.__name__} on 127.0.0.1 until killed.")
    parser.add_argument("--tokens", type=int, default=5)
    parser.add_argument("--scenario", default="ok")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each whole (non-streamed) answer")
    args = parser.parse_args(argv)
    server = LocalServer(handler)
    server.state.scenario = args.scenario
    server.state.options.update(tokens=args.tokens, cache=True, answer_delay=args.delay)
    with server:
        print(server.url, flush=True)  # the parent reads the URL from the first line
        sys.stdout.close()
        threading.Event().wait()


def free_port() -> int:
    """A port nothing listens on now, for a server to bind next. For "connection refused" use
    :func:`refused_port`: this one is free only when returned, and may be taken by then."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_refusing: list[socket.socket] = []  # behind refused_port(): bound until the process ends


def refused_port() -> int:
    """A port on 127.0.0.1 that refuses connections for as long as this process lives (a dead server).

    It stays bound and never listens, so no other server can take it: a :func:`free_port` is closed again
    when returned, and on a busy machine another process's server may bind it before it is dialled, which
    turns "connection refused" into an answer."""
    if not _refusing:
        atexit.register(_release_refusing)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    _refusing.append(sock)
    return int(sock.getsockname()[1])


def _release_refusing() -> None:
    while _refusing:
        _refusing.pop().close()


def words(n: int) -> Iterator[str]:
    """n deterministic tokens of text for streaming tests and benchmarks."""
    for i in range(n):
        yield f"w{i % 1000} "
