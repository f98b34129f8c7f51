"""kit.http11: the async client's own HTTP/1.1 for plain-TCP servers, against scripted servers on real sockets.

Each server here reads real requests from a real socket and answers with the bytes a test gives it, so every
framing (chunked with extensions and trailers, a length, up to the close, no body), every way of failing (a cut,
a reset, silence, garbage) and connection reuse are what a client meets on the wire."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmswitch.kit.http11 import PlainHTTPTransport, _Body
from llmswitch.kit.readahead import WHOLE_READS

Answer = Callable[[socket.socket, bytes], bool]  # writes an answer to a request; False: close the connection


class ScriptedServer:
    """A TCP server on 127.0.0.1: reads each request (head and Content-Length body), calls ``answer``."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.requests: list[bytes] = []
        self.disconnects = 0
        self._threads: list[threading.Thread] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(connection,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, connection: socket.socket) -> None:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = b""
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = connection.recv(65536)
                    if not data:
                        self.disconnects += 1
                        return
                    buffer += data
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(buffer) < length:
                    data = connection.recv(1 << 20)
                    if not data:
                        self.disconnects += 1
                        return
                    buffer += data
                body, buffer = buffer[:length], buffer[length:]
                self.requests.append(head + b"\r\n\r\n" + body)
                if not self.answer(connection, body):
                    return
        except OSError:
            self.disconnects += 1
        finally:
            connection.close()

    def close(self) -> None:
        self.listener.close()


@contextmanager
def scripted(answer: Answer) -> Iterator[ScriptedServer]:
    server = ScriptedServer(answer)
    try:
        yield server
    finally:
        server.close()


def sends(*parts: bytes, pause: float = 0.0, keep: bool = True) -> Answer:
    """An answer written in ``parts`` (a pause between them, so that they arrive as separate reads)."""

    def answer(connection: socket.socket, body: bytes) -> bool:
        for index, part in enumerate(parts):
            if index and pause:
                time.sleep(pause)
            connection.sendall(part)
        return keep

    return answer


def chunked(*pieces: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


OK_CHUNKED = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


async def fetch(client: httpx2.AsyncClient, url: str, **kwargs: Any) -> tuple[httpx2.Response, list[bytes]]:
    async with client.stream(kwargs.pop("method", "POST"), url, **kwargs) as response:
        parts = [part async for part in response.aiter_raw()]
    return response, parts


def client(**kwargs: Any) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=PlainHTTPTransport(fallback=httpx2.AsyncHTTPTransport()), **kwargs)


def test_a_chunked_answer_in_pieces_with_extensions_and_trailers_is_read_whole_and_reused() -> None:
    body = chunked(b"data: one\n\n", b"data: two\n\n").replace(b"b\r\ndata: two", b"b;name=value\r\ndata: two")
    body = body[:-2] + b"X-Trailer: yes\r\n\r\n"
    with scripted(sends(OK_CHUNKED + body[:7], body[7:20], body[20:], pause=0.02)) as server:
        async def main() -> list[Any]:
            async with client() as http:
                first = await fetch(http, server.url + "/v1/x", json={"a": 1})
                second = await fetch(http, server.url + "/v1/x", json={"a": 2})
                return [first, second]

        (response, parts), (_again, parts_again) = run(main())
    assert response.status_code == 200 and response.headers["content-type"] == "text/event-stream"
    assert response.extensions[WHOLE_READS] is True and response.http_version == "HTTP/1.1"
    assert b"".join(parts) == b"".join(parts_again) == b"data: one\n\ndata: two\n\n"
    assert server.connections == 1  # the second request went on the same connection
    request = server.requests[1]
    assert request.startswith(b"POST /v1/x HTTP/1.1\r\n") and b"\r\nHost: 127.0.0.1:" in request
    assert json.loads(request.split(b"\r\n\r\n", 1)[1]) == {"a": 2}


def test_every_framing_of_a_body() -> None:
    answers = {
        "/length": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        "/empty": b"HTTP/1.1 204 No Content\r\n\r\n",
        "/continue": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    }

    def answer(connection: socket.socket, body: bytes) -> bool:
        connection.sendall(answers[json.loads(body)["path"]])
        return True

    with scripted(answer) as server:
        async def main() -> dict[str, Any]:
            async with client() as http:
                return {path: await fetch(http, server.url, json={"path": path}) for path in answers}

        found = run(main())
    assert b"".join(found["/length"][1]) == b"hello"
    assert found["/empty"][0].status_code == 204 and found["/empty"][1] == []
    assert found["/continue"][0].status_code == 200 and b"".join(found["/continue"][1]) == b"ok"
    assert server.connections == 1

    with scripted(sends(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nup to the close", keep=False)) as server:
        async def to_the_close() -> tuple[list[bytes], list[bytes]]:
            async with client() as http:
                return (await fetch(http, server.url))[1], (await fetch(http, server.url))[1]

        first, second = run(to_the_close())
    assert b"".join(first) == b"".join(second) == b"up to the close"
    assert server.connections == 2  # a body that runs to the close takes its connection with it


def test_an_idle_connection_the_server_closed_is_not_used_again() -> None:
    with scripted(sends(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", keep=False)) as server:
        async def main() -> list[bytes]:
            async with client() as http:
                bodies = []
                for _ in range(3):
                    bodies.append(b"".join((await fetch(http, server.url))[1]))
                    await asyncio.sleep(0.05)  # the server's close arrives while the connection is idle
                return bodies

        assert run(main()) == [b"ok"] * 3
    assert server.connections == 3


def test_a_body_left_before_its_end_closes_its_connection() -> None:
    pieces = [b"data: %d\n\n" % index for index in range(50)]
    with scripted(sends(OK_CHUNKED, *[chunked(piece)[:-5] for piece in pieces], pause=0.01)) as server:
        async def main() -> None:
            async with client() as http:
                async with http.stream("POST", server.url) as response:
                    async for _part in response.aiter_raw():
                        break
                await asyncio.sleep(0.3)

        run(main())
        assert server.disconnects == 1  # the server saw the client leave


@pytest.mark.parametrize(("answer", "error", "words"), [
    (sends(OK_CHUNKED + b"5\r\nhel", keep=False), httpx2.RemoteProtocolError, "peer closed connection"),
    (sends(b"", keep=False), httpx2.RemoteProtocolError, "Server disconnected without sending a response"),
    (sends(b"SSH-2.0-OpenSSH_9.6\r\n\r\n"), httpx2.RemoteProtocolError, "not an HTTP/1.1 response"),
    (sends(b"HTTP/1.1 200 OK\r\n" + b"X: " + b"y" * 70_000), httpx2.RemoteProtocolError, "headers are too long"),
    (sends(OK_CHUNKED + b"zz\r\n"), httpx2.RemoteProtocolError, "malformed chunk size"),
    (sends(OK_CHUNKED + b"2\r\nabc\r\n"), httpx2.RemoteProtocolError, "did not end where its size said"),
    (sends(b"HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\nabc"), httpx2.RemoteProtocolError, "Content-Length"),
    (sends(b"HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\nabc"), httpx2.RemoteProtocolError, "Content-Length"),
    (sends(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"), httpx2.RemoteProtocolError,
     "unsupported Transfer-Encoding"),
    (sends(OK_CHUNKED + b"5\r\nhello\r\n", pause=0), httpx2.ReadTimeout, "timed out"),
])
def test_a_broken_answer_is_the_httpx2_error_httpcore2_gives(answer: Answer, error: type[Exception],
                                                              words: str) -> None:
    with scripted(answer) as server:
        async def main() -> None:
            async with client(timeout=httpx2.Timeout(0.5)) as http:
                await fetch(http, server.url)

        with pytest.raises(error, match=words):
            run(main())


def test_a_reset_is_a_read_error_and_a_refused_connection_a_connect_error() -> None:
    def reset(connection: socket.socket, body: bytes) -> bool:
        connection.sendall(OK_CHUNKED + b"5\r\nhello\r\n")
        time.sleep(0.05)
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        return False

    with scripted(reset) as server:
        async def main() -> list[bytes]:
            parts: list[bytes] = []
            async with client() as http, http.stream("POST", server.url) as response:
                try:
                    async for part in response.aiter_raw():
                        parts.append(part)
                except httpx2.ReadError:
                    return parts
            raise AssertionError("no ReadError")

        assert b"".join(run(main())) == b"hello"  # what came before the reset was delivered first

    port = socket.create_server(("127.0.0.1", 0))
    address = port.getsockname()
    port.close()

    async def refused() -> None:
        async with client() as http:
            await http.get(f"http://127.0.0.1:{address[1]}/")

    with pytest.raises(httpx2.ConnectError) as raised:
        run(refused())
    assert isinstance(raised.value.__cause__, ConnectionRefusedError)  # transport_errors reads the OS's words


def test_a_large_upload_and_a_large_answer_read_slowly_arrive_whole() -> None:
    answer_bytes = bytes(range(256)) * 8192  # 2 MiB, far past the read buffer: reading pauses and resumes

    def echo_size(connection: socket.socket, body: bytes) -> bool:
        connection.sendall(b"HTTP/1.1 200 OK\r\nX-Got: %d\r\nContent-Length: %d\r\n\r\n" % (len(body),
                                                                                         len(answer_bytes)))
        connection.sendall(answer_bytes)
        return True

    upload = b"u" * (5 << 20)
    with scripted(echo_size) as server:
        async def main() -> tuple[httpx2.Response, bytes]:
            async with client() as http, http.stream("POST", server.url, content=upload) as response:
                parts = []
                async for part in response.aiter_raw():
                    parts.append(part)
                    await asyncio.sleep(0.001)  # a slow reader
                return response, b"".join(parts)

        response, received = run(main())
    assert response.headers["x-got"] == str(len(upload))
    assert received == answer_bytes


def test_https_and_bodies_of_unknown_length_go_to_the_fallback() -> None:
    seen: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(str(request.url))
        return httpx2.Response(200, text="fallback")

    async def main() -> list[str]:
        transport = PlainHTTPTransport(fallback=httpx2.MockTransport(handler))
        async with httpx2.AsyncClient(transport=transport) as http:

            async def parts() -> Any:
                yield b"streamed"

            return [(await http.get("https://example.test/a")).text,
                    (await http.post("http://example.test/b", content=parts())).text]

    assert run(main()) == ["fallback", "fallback"]
    assert seen == ["https://example.test/a", "http://example.test/b"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=40), min_size=0, max_size=8), st.lists(st.integers(0, 400),
                                                                                      max_size=8))
def test_chunked_bodies_cut_anywhere_decode_to_their_data(pieces: list[bytes], cuts: list[int]) -> None:
    """The chunked decoder, fed a body cut into reads at any byte (inside a size line, a CRLF, the data, the
    trailers), gives the data and finishes exactly at the body's end."""
    raw = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\nTrailer: x\r\n\r\n"
    points = sorted({cut % (len(raw) + 1) for cut in cuts})
    reads = [raw[start:end] for start, end in zip([0, *points], [*points, len(raw)], strict=True) if end > start]

    class Pool:
        released = 0

        def _release(self, address: Any, wire: Any) -> None:
            self.released += 1

    pool = Pool()
    body = _Body(pool, ("h", 1), None, b"", [(b"Transfer-Encoding", b"chunked")],  # type: ignore[arg-type]
                 b"HTTP/1.1", "POST", 200, None)
    data = []
    for index, read in enumerate(reads):
        assert not body.finished, index
        data.append(body._dechunk(read))
    assert b"".join(data) == b"".join(pieces)
    assert body.finished and pool.released == 1
