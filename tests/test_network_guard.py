"""The suite's own guard (pytest-socket, configured in pyproject.toml): tests reach only this machine."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest


def test_a_socket_to_another_host_fails_the_test() -> None:
    from pytest_socket import SocketConnectBlockedError

    with pytest.raises(SocketConnectBlockedError, match="10.1.2.3"):
        socket.create_connection(("10.1.2.3", 9), timeout=0.5)


def test_loopback_and_unix_sockets_work(tmp_path: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        socket.create_connection(server.getsockname()).close()
    path = str(tmp_path / "s")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(path)
        server.listen()
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(path)
