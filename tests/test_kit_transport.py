"""The toolkit's transport: one error table, header checks, no retries, sync and async alike, on real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from llmswitch import AsyncClient, Client, kit
from llmswitch.errors import (
    BackendTimeoutError,
    BadResponseError,
    InvalidOptionError,
    LLMSwitchError,
    UnreachableError,
)
from llmswitch.testing import use_plugin
from llmswitch.testing.server import LocalServer, refused_port
from llmswitch.types import Target
from tests.helpers import write_config
from tests.plugin_guide import load_tiny
from tests.servers.openai_server import openai_server

ENDPOINT = kit.Endpoint("http://127.0.0.1:9/v1", "p", "tiny", "the server at http://127.0.0.1:9/v1", timeout=30,
                        unreachable_remedy="start it")


@pytest.fixture(scope="module")
def shared() -> Iterator[LocalServer]:
    with openai_server() as server:
        yield server


@pytest.fixture
def server(shared: LocalServer, config_file: Path) -> Iterator[LocalServer]:
    shared.state.scenario = "ok"
    shared.state.script.clear()  # a test's unused scripted faults must not answer the next test
    shared.state.requests.clear()
    shared.state.options.clear()
    with use_plugin(load_tiny(), "tiny"):
        # One request per call: these tests are about the transport; the router's retries are tested in
        # tests/test_router_*.py.
        write_config(config_file, f'[profiles.p]\nbackend = "tiny"\nbase_url = "{shared.url}/v1"\n'
                                  'model = "test-model"\ntimeout = 1.0\nmax_retries = 0\n')
        yield shared


def sync_call(prompt: str = "hi") -> None:
    resolved = Client().resolve("p")
    resolved.complete(resolved.request(prompt))


def async_call(prompt: str = "hi") -> None:
    resolved = AsyncClient().resolve("p")
    asyncio.run(resolved.acomplete(resolved.request(prompt)))


BOTH = pytest.mark.parametrize("call", [sync_call, async_call], ids=["sync", "async"])


@BOTH
def test_a_503_reaches_the_caller_after_exactly_one_request(server: LocalServer, call) -> None:
    server.state.scenario = "unavailable"
    with pytest.raises(BadResponseError) as caught:
        call()
    assert caught.value.status_code == 503
    assert len(server.state.requests) == 1  # no retry in the transport: the router owns retries


@BOTH
def test_a_reset_is_unreachable_with_a_remedy(server: LocalServer, call) -> None:
    server.state.scenario = "reset"
    with pytest.raises(UnreachableError) as caught:
        call()
    assert "reset the connection before answering" in caught.value.message and caught.value.remedy
    assert len(server.state.requests) == 1


@BOTH
def test_a_slow_first_byte_is_a_timeout_naming_the_setting(server: LocalServer, call) -> None:
    server.state.scenario = "slow_first_byte"
    server.state.options["delay"] = 3
    with pytest.raises(BackendTimeoutError) as caught:
        call()
    assert "did not start answering within 1 s" in caught.value.message
    assert "raise timeout in profile 'p'" in (caught.value.remedy or "")


@BOTH
def test_connection_refused_names_the_server_and_the_remedy(config_file: Path, call) -> None:
    with use_plugin(load_tiny(), "tiny"):
        write_config(config_file, f'[profiles.p]\nbackend = "tiny"\nbase_url = "http://127.0.0.1:{refused_port()}/v1"\n')
        with pytest.raises(UnreachableError) as caught:
            call()
    assert "(connection refused)" in caught.value.message and caught.value.remedy == "start the server"


@BOTH
def test_an_html_page_instead_of_an_answer_is_a_bad_response(server: LocalServer, call, monkeypatch) -> None:
    server.state.scenario = "bad_gateway"
    with pytest.raises(BadResponseError) as caught:
        call()
    assert caught.value.status_code == 502


@pytest.mark.parametrize(
    ("exc", "kind", "words"),
    [
        (httpx2.ConnectError("[Errno -2] Name or service not known"), UnreachableError, "cannot find the host"),
        (httpx2.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"), UnreachableError,
         "secure connection"),
        (httpx2.ConnectError("[Errno 111] Connection refused"), UnreachableError, "connection refused"),
        (httpx2.ConnectTimeout("timed out"), UnreachableError, "no answer within 10 s"),
        (httpx2.ReadTimeout("timed out"), BackendTimeoutError, "did not start answering within 30 s"),
        (httpx2.PoolTimeout("busy"), BackendTimeoutError, "stayed busy"),
        (httpx2.RemoteProtocolError("peer closed"), UnreachableError, "closed the connection without answering"),
        (httpx2.ReadError("reset by peer"), UnreachableError, "reset the connection before answering"),
        (httpx2.ProxyError("407"), UnreachableError, "the proxy refused"),
        (httpx2.UnsupportedProtocol("ftp"), InvalidOptionError, "cannot send a request"),
        (httpx2.DecodingError("bad gzip"), BadResponseError, "cannot be decoded"),
    ],
)
def test_the_table_maps_each_failure_to_the_most_specific_error(exc, kind, words: str) -> None:
    error = kit.transport_error(ENDPOINT, exc, answering=False)
    assert type(error) is kind and words in error.message and error.remedy


def test_during_the_answer_failures_say_the_text_is_kept() -> None:
    cut = kit.transport_error(ENDPOINT, httpx2.RemoteProtocolError("incomplete chunked read"), answering=True)
    stalled = kit.transport_error(ENDPOINT, httpx2.ReadTimeout("timed out"), answering=True)
    assert isinstance(cut, BadResponseError) and "cut off" in cut.message
    assert isinstance(stalled, BackendTimeoutError) and "in the middle of the answer" in stalled.message
    assert all("the text so far is kept" in (error.remedy or "") for error in (cut, stalled))


def test_a_key_in_a_failure_message_is_masked() -> None:
    error = kit.transport_error(ENDPOINT, httpx2.ConnectError("refused for sk-proj-SECRETSECRETSECRET1234"),
                                answering=False)
    assert "SECRETSECRETSECRET" not in error.message


@pytest.mark.parametrize("headers", [{"X-A": True}, {"X-A": {"b": 1}}, {"Bad Name": "v"}, {"X-A": "v\r\nX-B: 1"},
                                     "not a table"])
def test_header_tables_are_refused_unless_every_header_is_valid(headers: object) -> None:
    target = Target("p", "tiny", "m", options={"headers": headers})
    with pytest.raises(InvalidOptionError) as caught:
        kit.header_table(target)
    assert "profile 'p'" in caught.value.message and caught.value.remedy


def test_header_tables_keep_numbers_as_text() -> None:
    assert kit.header_table(Target("p", "tiny", "m", options={"headers": {"X-N": 3, "X-S": "s"}})) == \
        {"X-N": "3", "X-S": "s"}


def test_base_url_must_be_http() -> None:
    with pytest.raises(InvalidOptionError):
        kit.check_base_url(Target("p", "tiny", "m"), "127.0.0.1:8000", "http://127.0.0.1:8000/v1")
    assert kit.check_base_url(Target("p", "tiny", "m"), "http://h:1/v1/", "x") == "http://h:1/v1"


def test_pools_are_shared_per_configuration_and_never_across_keys() -> None:
    from llmswitch.kit.clients import sync_client

    other = kit.Endpoint(ENDPOINT.base_url, "p", "tiny", "x", headers={"Authorization": "Bearer b"})
    assert sync_client(ENDPOINT) is sync_client(kit.Endpoint(ENDPOINT.base_url, "q", "tiny", "y", timeout=30))
    assert sync_client(ENDPOINT) is not sync_client(other)


def test_configurations_that_differ_only_by_timeout_get_their_own_pools() -> None:
    from llmswitch.kit.clients import async_client, close_clients, sync_client

    close_clients()  # a pool full of other tests' clients would be emptied midway (it holds at most 16)
    quick = kit.Endpoint(ENDPOINT.base_url, "p", "tiny", "x", timeout=2.0, connect_timeout=1.0)
    patient = kit.Endpoint(ENDPOINT.base_url, "p", "tiny", "x", timeout=300.0, connect_timeout=1.0)
    slow_to_connect = kit.Endpoint(ENDPOINT.base_url, "p", "tiny", "x", timeout=2.0, connect_timeout=1.5)
    clients = [sync_client(quick), sync_client(patient), sync_client(slow_to_connect)]
    assert len({id(client) for client in clients}) == 3  # a shared pool would impose one profile's timeout
    assert [(c.timeout.read, c.timeout.connect) for c in clients] == [(2.0, 1.0), (300.0, 1.0), (2.0, 1.5)]
    assert sync_client(kit.Endpoint(ENDPOINT.base_url, "q", "tiny", "y", timeout=300.0, connect_timeout=1.0)) \
        is clients[1]

    async def both() -> tuple[object, object]:
        return async_client(quick), async_client(patient)

    first, second = asyncio.run(both())
    assert first is not second and first.timeout.read == 2.0 and second.timeout.read == 300.0  # type: ignore[attr-defined]


def test_every_failure_is_an_llmswitch_error() -> None:
    assert issubclass(UnreachableError, LLMSwitchError)


def test_the_profile_headers_replace_the_backends_whatever_their_case() -> None:
    target = Target("p", "tiny", "m", options={"headers": {"X-Api-Key": "proxy-key", "X-Title": "t"}})
    merged = kit.with_profile_headers(target, {"x-api-key": "provider-key", "Accept": "application/json"})
    assert merged == {"Accept": "application/json", "X-Api-Key": "proxy-key", "X-Title": "t"}


def test_a_plain_http_server_without_a_proxy_gets_a_client_that_loads_no_certificates(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Loading the system's certificates is a tenth of a one-shot chat; a client that never speaks TLS skips it
    (kit.clients.never_uses_tls), and its context trusts nothing, so TLS could never go unverified."""
    import ssl

    import httpcore2

    from llmswitch.kit.clients import _settings, sync_client

    loaded: list[object] = []
    real = httpcore2.default_ssl_context
    monkeypatch.setattr(httpcore2, "default_ssl_context", lambda **options: loaded.append(options) or real(**options))

    def endpoint(url: str) -> kit.Endpoint:
        return kit.Endpoint(url, "p", "tiny", "x", timeout=30)

    sync_client(endpoint("http://127.0.0.1:9/plain"))
    assert loaded == []
    context = _settings(endpoint("http://127.0.0.1:9/plain"))["verify"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] == 0
    sync_client(endpoint("https://127.0.0.1:9/tls"))
    assert len(loaded) == 1  # a TLS server: the system's certificates, as always
    monkeypatch.setenv("HTTPS_PROXY", "https://127.0.0.1:3128")
    sync_client(endpoint("http://127.0.0.1:9/behind-a-proxy"))
    assert len(loaded) > 1  # a proxy may be reached over TLS: made as usual (its transport too)
