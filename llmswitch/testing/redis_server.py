"""A real ``redis-server`` for tests: on a free port of 127.0.0.1, no persistence, in a temporary directory.

Used by llmswitch's tests of shared router state (``[router] state = "redis://..."``), and by a plugin's tests
that want the same. It speaks to the server over a plain socket (``PING``), so it needs no Redis client.

    with RedisServer(tmp_path) as server:
        url = server.url            # redis://127.0.0.1:PORT/0
        server.stop()               # a Redis that dies mid-run
        server.start()              # ... and comes back on the same port

The ``redis_server`` pytest fixture (in :mod:`llmswitch.testing.fixtures`) gives each test its own server; it
skips when ``redis-server`` is not installed, which CI turns into a failure (``apt-get install redis-server``).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

INSTALL_HINT = "install it with `sudo apt-get install redis-server` (Debian, Ubuntu) or your system's package"


def redis_server_binary() -> str | None:
    """The path of ``redis-server`` on PATH, or None when it is not installed."""
    return shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ping(port: int, timeout: float = 0.5) -> bool:
    """True when a Redis server answers PING on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process: no RDB snapshots, no AOF, its working directory under ``directory``."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        binary = redis_server_binary()
        if binary is None:
            raise FileNotFoundError(f"redis-server is not installed: {INSTALL_HINT}")
        self.binary = binary
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it answers PING (on another free port if this one was taken)."""
        for attempt in range(5):
            self.process = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(self.directory), "--daemonize", "no", "--loglevel", "warning",
                 "--logfile", str(self.directory / "redis.log")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if ping(self.port):
                    return
                if self.process.poll() is not None:  # exited: most likely another process took the port
                    break
                time.sleep(0.01)
            self.stop()
            if attempt < 4:
                self.port = _free_port()
        log = self.directory / "redis.log"
        detail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(f"redis-server did not start on 127.0.0.1:{self.port}.\n{detail}")

    def stop(self) -> None:
        """Stop the server (a test of Redis going away mid-run calls this directly)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()  # abruptly, as a crash or a lost host would
        self.process.wait(timeout=10)
        self.process = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()
