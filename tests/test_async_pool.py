"""The async clients' connections, both kinds: :mod:`llmswitch.kit.http11` (a plain-HTTP server without a proxy)
and httpx2's pool over :mod:`llmswitch.kit.sockets` (TLS, proxies). Each finds an idle connection the server hung
up, so the next request goes on a new connection instead of failing, and sends a request in one write."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import httpx2
import pytest

from llmswitch import kit
from llmswitch.kit.clients import _async_transport, async_client
from llmswitch.kit.http11 import PlainHTTPTransport
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


def client_of(kind: str, url: str) -> httpx2.AsyncClient:
    """The client a profile at ``url`` gets (plain HTTP: kit.http11), or one with httpx2's pool over
    kit.sockets, which clients of TLS servers and of servers behind a proxy get."""
    if kind == "plain":
        client = async_client(kit.Endpoint(url, "p", "tiny", "the server", timeout=5))
        assert isinstance(client._transport, PlainHTTPTransport)  # type: ignore[attr-defined]
        return client
    limits = httpx2.Limits(max_connections=None, max_keepalive_connections=64)
    return httpx2.AsyncClient(transport=_async_transport(limits, True), timeout=5)


def idle_connections(client: httpx2.AsyncClient) -> int:
    transport = client._transport  # type: ignore[attr-defined]
    if isinstance(transport, PlainHTTPTransport):
        return sum(map(len, transport._idle.values()))
    connections = transport._pool.connections  # type: ignore[attr-defined]
    assert all(isinstance(each._connection._network_stream, SocketKeepingStream) for each in connections)
    return len(connections)


@pytest.mark.parametrize("kind", ["plain", "httpx2"])
def test_an_idle_connection_the_server_hung_up_is_not_reused(
        kind: str, hanging_up_server: tuple[str, list[int], threading.Event]) -> None:
    url, connections, hang_up = hanging_up_server

    async def main() -> list[int]:
        client = client_of(kind, url)
        first = await client.get(url + "/a")
        assert idle_connections(client) == 1
        hang_up.set()  # the server closes the idle connection...
        await asyncio.sleep(0.2)
        second = await client.get(url + "/b")  # ...which the client finds closed (EOF) and drops
        await client.aclose()
        return [first.status_code, second.status_code]

    assert asyncio.run(main()) == [200, 200]
    assert len(connections) == 2


@pytest.mark.parametrize("kind", ["plain", "httpx2"])
def test_a_requests_head_and_body_go_out_in_one_write(kind: str) -> None:
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
        client = client_of(kind, url)
        answers = [await client.post(url + "/chat", json={"q": "hi"}) for _ in range(2)]
        await client.aclose()
        return [answer.status_code for answer in answers]

    try:
        assert asyncio.run(main()) == [200, 200]
    finally:
        listener.close()
    assert len(first_reads) == 2
    assert all(read.startswith(b"POST /chat") and read.endswith(b'{"q":"hi"}') for read in first_reads), first_reads
