"""The async connection pool's network backend (:mod:`llmswitch.kit.sockets`): its cheap check for a server that
hung up an idle connection still finds it, so the next request goes on a new connection instead of failing."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest

from llmswitch import kit
from llmswitch.kit.clients import async_client
from llmswitch.kit.sockets import SocketKeepingStream

ANSWER = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n{}'


@pytest.fixture
def hanging_up_server() -> Iterator[tuple[str, list[int], threading.Event]]:
    """Answers one request per connection, then hangs up once told to (``hang_up``); counts connections."""
    listener = socket.create_server(("127.0.0.1", 0))
    connections: list[int] = []
    hang_up = threading.Event()

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            connections.append(1)
            with connection:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += connection.recv(65536)
                connection.sendall(ANSWER)
                hang_up.wait(10)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", connections, hang_up
    hang_up.set()
    listener.close()


def test_an_idle_connection_the_server_hung_up_is_not_reused(
        hanging_up_server: tuple[str, list[int], threading.Event]) -> None:
    url, connections, hang_up = hanging_up_server
    endpoint = kit.Endpoint(url, "p", "tiny", "the server", timeout=5)

    async def main() -> list[int]:
        client = async_client(endpoint)
        first = await client.get(url + "/a")
        (connection,) = client._transport._pool.connections  # type: ignore[attr-defined]
        assert isinstance(connection._connection._network_stream, SocketKeepingStream)
        hang_up.set()  # the server closes the idle connection...
        await asyncio.sleep(0.2)
        second = await client.get(url + "/b")  # ...which the pool finds readable (EOF) and drops
        await client.aclose()
        return [first.status_code, second.status_code]

    assert asyncio.run(main()) == [200, 200]
    assert len(connections) == 2


def test_a_requests_head_and_body_go_out_in_one_write() -> None:
    """One ``send`` per request: the server's first read holds the whole request (head and JSON body)."""
    listener = socket.create_server(("127.0.0.1", 0))
    first_reads: list[bytes] = []

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            for _ in range(2):
                first = connection.recv(65536)
                first_reads.append(first)
                request = first
                while b"\r\n\r\n" not in request or len(request.split(b"\r\n\r\n", 1)[1]) < 10:
                    request += connection.recv(65536)
                connection.sendall(ANSWER)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"

    async def main() -> list[int]:
        client = async_client(kit.Endpoint(url, "p", "tiny", "the server", timeout=5))
        answers = [await client.post(url + "/chat", json={"q": "hi"}) for _ in range(2)]
        await client.aclose()
        return [answer.status_code for answer in answers]

    try:
        assert asyncio.run(main()) == [200, 200]
    finally:
        listener.close()
    assert len(first_reads) == 2
    assert all(read.startswith(b"POST /chat") and read.endswith(b'{"q":"hi"}') for read in first_reads), first_reads
