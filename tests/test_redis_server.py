"""The test Redis (llmswitch.testing.redis_server): a real server, private to the test, that can die and return."""

from __future__ import annotations

import socket
from pathlib import Path

from llmswitch.testing.redis_server import RedisServer, ping


def _command(port: int, *words: str) -> bytes:
    """One command in RESP over a plain socket, and the start of its reply."""
    request = f"*{len(words)}\r\n".encode() + b"".join(f"${len(w)}\r\n{w}\r\n".encode() for w in words)
    with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
        connection.sendall(request)
        return connection.recv(4096)


def test_the_fixture_runs_a_private_redis_without_persistence(redis_server: RedisServer, tmp_path: Path) -> None:
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert ping(redis_server.port)
    assert _command(redis_server.port, "SET", "k", "v") == b"+OK\r\n"
    assert _command(redis_server.port, "GET", "k") == b"$1\r\nv\r\n"
    # Nothing is written to disk: no snapshots, no append-only file, and the server works in the test's dir.
    assert b"save\r\n$0\r\n\r\n" in _command(redis_server.port, "CONFIG", "GET", "save")
    assert b"appendonly\r\n$2\r\nno" in _command(redis_server.port, "CONFIG", "GET", "appendonly")
    assert str(tmp_path).encode() in _command(redis_server.port, "CONFIG", "GET", "dir")
    assert b"bind\r\n$9\r\n127.0.0.1" in _command(redis_server.port, "CONFIG", "GET", "bind")


def test_a_server_stopped_mid_run_refuses_connections_and_comes_back_empty_on_the_same_port(
    redis_server: RedisServer,
) -> None:
    port = redis_server.port
    _command(port, "SET", "k", "v")
    redis_server.stop()
    assert not ping(port)
    redis_server.start()
    assert redis_server.port == port
    assert _command(port, "GET", "k") == b"$-1\r\n"  # nothing persisted


def test_each_server_gets_its_own_port(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "a") as first, RedisServer(tmp_path / "b") as second:
        assert first.port != second.port
        assert ping(first.port) and ping(second.port)
    assert not ping(first.port) and not ping(second.port)
