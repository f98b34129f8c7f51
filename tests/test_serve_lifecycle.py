"""``llmswitch serve`` as a process and under load: a client that leaves, SIGTERM, 50 clients at once, keys
and the bind rule, all over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import tomli_w

from llmswitch.ledger import Ledger
from llmswitch.serve.keys import GatewayKeys, check_bind, hash_key, is_loopback
from llmswitch.testing.server import free_port
from tests.helpers import run_cli
from tests.servers.gateway import RunningGateway
from tests.servers.http import LocalServer
from tests.servers.openai_server import openai_server


@pytest.fixture
def upstream() -> Iterator[LocalServer]:
    with openai_server() as running:
        yield running


def wait_for(condition, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def ledger_rows() -> list:  # type: ignore[type-arg]
    with Ledger() as ledger:
        return ledger.entries()


def test_a_client_that_leaves_mid_stream_cancels_the_upstream_call_and_is_charged(
        config_file: Path, upstream: LocalServer) -> None:
    upstream.state.options.update(tokens=400, interval=0.02)
    config_file.write_text(tomli_w.dumps({"profiles": {"up": {
        "backend": "openai", "model": "test-model", "base_url": f"{upstream.url}/v1", "timeout": 10.0}}}))
    with RunningGateway() as gateway:
        client = openai.OpenAI(base_url=gateway.base_url, api_key="x", max_retries=0)
        stream = client.chat.completions.create(model="up", messages=[{"role": "user", "content": "go"}],
                                                stream=True)
        received = []
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
            if len(received) == 5:
                break
        stream.close()
        assert upstream.state.disconnected.wait(5), "the upstream never saw the gateway hang up"
        assert wait_for(lambda: len(ledger_rows()) == 1)
    row = ledger_rows()[0]
    assert row.outcome == "interrupted"
    assert row.tokens_estimated and row.output_tokens is not None and 1 <= row.output_tokens < 100  # what was used


def test_sigterm_lets_the_answer_in_flight_finish_then_exits_0(config_file: Path) -> None:
    config_file.write_text(tomli_w.dumps({"profiles": {"slow": {"backend": "echo", "chunk_size": 1, "delay": 0.05}}}))
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "llmswitch", "serve", "--port", str(port), "-p", "slow"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0, timeout=20)
        assert wait_for(lambda: _answers(client), timeout=30), process.stderr.read() if process.poll() else ""
        text = "twenty characters ok"  # 20 chunks, 1 s at 0.05 s each
        pieces: list[str] = []
        first = threading.Event()

        def ask() -> None:
            for chunk in client.chat.completions.create(model="slow", stream=True,
                                                        messages=[{"role": "user", "content": text}]):
                if chunk.choices and chunk.choices[0].delta.content:
                    pieces.append(chunk.choices[0].delta.content)
                    first.set()

        asking = threading.Thread(target=ask)
        asking.start()
        assert first.wait(10)
        process.send_signal(signal.SIGTERM)
        asking.join(20)
        assert "".join(pieces) == text  # the answer in flight was finished, not cut
        assert process.wait(20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _answers(client: openai.OpenAI) -> bool:
    try:
        return bool(client.models.list().data)
    except openai.APIConnectionError:
        return False


def test_fifty_concurrent_clients_all_get_their_own_answer(config_file: Path) -> None:
    """A bounded load test: 200 requests, 50 at a time, each answer the client's own text."""
    config_file.write_text("")
    with RunningGateway(profiles=["echo"]) as gateway:

        async def run() -> list[tuple[str, str]]:
            client = openai.AsyncOpenAI(base_url=gateway.base_url, api_key="x", max_retries=0, timeout=60)
            gate = asyncio.Semaphore(50)

            async def one(i: int) -> tuple[str, str]:
                async with gate:
                    stream = i % 2 == 0
                    prompt = f"request number {i}"
                    if stream:
                        chunks = await client.chat.completions.create(
                            model="echo", messages=[{"role": "user", "content": prompt}], stream=True)
                        text = "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
                    else:
                        answer = await client.chat.completions.create(
                            model="echo", messages=[{"role": "user", "content": prompt}])
                        text = answer.choices[0].message.content or ""
                    return prompt, text

            try:
                return await asyncio.gather(*(one(i) for i in range(200)))
            finally:
                await client.close()

        started = time.monotonic()
        results = asyncio.run(run())
        elapsed = time.monotonic() - started
    assert all(prompt == text for prompt, text in results)
    assert elapsed < 60
    assert len(ledger_rows()) == 200  # every call charged, none lost to contention


# ---- the port ------------------------------------------------------------------------------------------------


def test_a_port_in_use_is_a_sentence_with_a_remedy_and_no_banner(config_file: Path) -> None:
    import socket

    config_file.write_text("")
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        outcome = subprocess.run([sys.executable, "-m", "llmswitch", "serve", "--port", str(port)],
                                 capture_output=True, text=True, timeout=60, env=dict(os.environ))
    finally:
        holder.close()
    assert outcome.returncode == 2, outcome.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in outcome.stderr
    assert "pass another --port" in outcome.stderr
    assert "Errno" not in outcome.stderr and "Traceback" not in outcome.stderr
    assert "http://127.0.0.1" not in outcome.stderr  # no banner claiming it serves
    assert outcome.stdout == ""


def test_port_0_prints_the_port_it_really_listens_on(config_file: Path) -> None:
    import re

    config_file.write_text("")
    process = subprocess.Popen([sys.executable, "-m", "llmswitch", "serve", "--port", "0", "-p", "echo"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        assert process.stderr is not None
        banner = process.stderr.readline() + process.stderr.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+) .*base_url (http://127\.0\.0\.1:(\d+)/v1)", banner, re.S)
        assert found, banner
        assert found.group(1) == found.group(3) != "0"
        client = openai.OpenAI(base_url=found.group(2), api_key="x", max_retries=0, timeout=20)
        assert wait_for(lambda: _answers(client), timeout=30)
        answer = client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "port ok"}])
        assert answer.choices[0].message.content == "port ok"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0


def test_the_serve_log_never_shows_the_upstream_key_or_a_gateway_key(config_file: Path,
                                                                    upstream: LocalServer) -> None:
    upstream_key = "sk-proj-UPSTREAMKEYQUOTEDINTHELOG0000wxyz"
    config_file.write_text(tomli_w.dumps({"profiles": {"up": {
        "backend": "openai", "model": "test-model", "base_url": f"{upstream.url}/v1", "api_key": upstream_key,
        "max_retries": 0}}}))
    gateway_key = run_cli("serve", "--new-key").stdout.strip()
    assert gateway_key.startswith("lsw-")
    upstream.state.scenario = "server_error"  # an upstream whose error quotes every credential it could know
    upstream.state.options["error_message"] = (f"invalid key Bearer {upstream_key}; your client's key was "
                                               f"{gateway_key}")
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "llmswitch", "serve", "--port", str(port), "-p", "up"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=gateway_key, max_retries=0,
                               timeout=20)
        assert wait_for(lambda: _answers(client), timeout=30), process.stderr.read() if process.poll() else ""
        for stream in (False, True):
            with pytest.raises(openai.APIError):
                answer = client.chat.completions.create(model="up", stream=stream,  # type: ignore[call-overload]
                                                        messages=[{"role": "user", "content": "x"}])
                for _ in answer if stream else ():
                    pass
    finally:
        process.send_signal(signal.SIGTERM)
        _, log = process.communicate(timeout=30)
    assert process.returncode == 0, log
    assert log.count("profile up: ") == 2, log  # both failures were logged, with the upstream's words
    assert "invalid key Bearer sk-…wxyz" in log  # masked, as everywhere
    assert upstream_key not in log and upstream_key[8:-4] not in log
    assert gateway_key not in log and gateway_key[8:-4] not in log
    assert all(gateway_key not in str(request.headers) for request in upstream.state.requests)  # never forwarded


# ---- keys and the bind rule ---------------------------------------------------------------------------------


def test_serve_refuses_every_non_loopback_address_without_keys(config_file: Path) -> None:
    outcome = run_cli("serve", "--host", "0.0.0.0", "--port", str(free_port()))
    assert outcome.exit_code == 2
    assert "refusing to listen on 0.0.0.0 without gateway keys" in outcome.stderr
    assert "llmswitch serve --new-key" in outcome.stderr
    for host in ("127.0.0.1", "127.8.9.1", "::1", "localhost"):
        assert is_loopback(host)
        check_bind(host, GatewayKeys())
    for host in ("0.0.0.0", "::", "192.168.1.4", "example.com"):
        assert not is_loopback(host)
    check_bind("0.0.0.0", GatewayKeys(frozenset({hash_key("k")})))  # with keys it may


def test_new_key_is_shown_once_and_stored_only_as_a_hash(config_file: Path) -> None:
    config_file.write_text('default_profile = "echo"  # kept\n')
    outcome = run_cli("serve", "--new-key")
    assert outcome.exit_code == 0, outcome
    key = outcome.stdout.strip()
    assert key.startswith("lsw-") and len(key) > 40
    text = config_file.read_text()
    assert key not in text and hash_key(key) in text and "# kept" in text
    second = run_cli("serve", "--new-key").stdout.strip()
    from llmswitch.config import read_config

    keys = GatewayKeys.load(read_config(config_file), {})
    assert keys.accepts(key) and keys.accepts(second) and not keys.accepts(key + "x") and not keys.accepts(None)


def test_new_key_with_a_name_and_limits_is_stored_as_a_table_and_enforced(config_file: Path) -> None:
    config_file.write_text('default_profile = "echo"  # kept\n')
    outcome = run_cli("serve", "--new-key", "--name", "alice", "--rpm", "1", "--tpm", "5000", "--max-concurrent",
                      "2", "--budget-usd-per-day", "5", "--budget-usd-per-month", "50.5")
    assert outcome.exit_code == 0, outcome
    key = outcome.stdout.strip()
    assert key.startswith("lsw-") and "\n" not in key  # stdout carries the key alone
    assert "gateway key 'alice' (rpm 1, tpm 5000, max_concurrent 2, budget_usd_per_day 5, " \
           "budget_usd_per_month 50.5)" in outcome.stderr
    text = config_file.read_text()
    assert key not in text and "# kept" in text
    from llmswitch.config import read_config

    keys = GatewayKeys.load(read_config(config_file), {})
    stored = keys.named[hash_key(key)]
    assert stored.name == "alice"
    assert dict(stored.settings) == {"rpm": 1, "tpm": 5000, "max_concurrent": 2, "budget_usd_per_day": 5.0,
                                     "budget_usd_per_month": 50.5}
    plain = run_cli("serve", "--new-key", "--name", "ci").stdout.strip()  # a name alone: no limits
    assert keys.accepts(key) and GatewayKeys.load(read_config(config_file), {}).named[hash_key(plain)].name == "ci"
    with RunningGateway() as running:  # the key's rpm of 1 holds: the second call in the minute is refused
        client = openai.OpenAI(base_url=running.base_url, api_key=key, max_retries=0, timeout=20)
        answer = client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hello"}])
        assert answer.choices[0].message.content == "hello"
        with pytest.raises(openai.RateLimitError) as refused:
            client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "again"}])
        assert "gateway key 'alice' is at its rpm limit" in refused.value.message
    assert [row.gateway_key for row in Ledger().entries()] == ["alice"]


@pytest.mark.parametrize(("args", "says"), [
    (("--rpm", "60"), "--rpm describes a new gateway key: add --new-key"),
    (("--name", "alice"), "--name describes a new gateway key: add --new-key"),
    (("--new-key", "--rpm", "60"), "a gateway key with limits needs a name"),
    (("--new-key", "--name", "alice", "--rpm", "0"), "0 is not in the range x>=1"),
    (("--new-key", "--name", "alice", "--budget-usd-per-day", "0"), "0 is not in the range x>0"),
    (("--new-key", "--name", "  "), "a gateway key's name cannot be empty"),
    (("--new-key", "--name", "al\x1bice"), "the key name 'al\\x1bice' contains a control character"),
    (("--new-key", "--name", "taken"), "already has a gateway key named 'taken'"),
])
def test_new_key_refuses_what_it_cannot_store_and_writes_nothing(config_file: Path, args: tuple[str, ...],
                                                                 says: str) -> None:
    config_file.write_text(f'[serve]\nkeys = [{{ name = "taken", hash = "{hash_key("old")}" }}]\n')
    before = config_file.read_text()
    outcome = run_cli("serve", *args)
    assert outcome.exit_code != 0
    assert says in outcome.stderr
    assert "Traceback" not in outcome.stderr and outcome.stdout == ""  # no key printed for a key not stored
    assert config_file.read_text() == before


def test_a_key_in_clear_in_the_file_is_refused_with_a_remedy(config_file: Path) -> None:
    config_file.write_text('[serve]\nkeys = ["lsw-plain"]\n')
    outcome = run_cli("serve", "--port", str(free_port()))
    assert outcome.exit_code == 2
    assert "keeps only hashes" in outcome.stderr and "lsw-plain" not in outcome.stderr


def test_sigterm_past_the_deadline_ends_each_stream_with_its_protocols_error_event_and_a_sentence_in_the_log(
        config_file: Path, upstream: LocalServer) -> None:
    import anthropic

    upstream.state.options.update(tokens=400, interval=0.05)  # 20 s of answer: far past a 1 s deadline
    config_file.write_text(tomli_w.dumps({"profiles": {"up": {
        "backend": "openai", "model": "test-model", "base_url": f"{upstream.url}/v1", "max_retries": 0}}}))
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "llmswitch", "serve", "--port", str(port), "-p", "up",
                                "--shutdown-deadline", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        openai_client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0,
                                      timeout=30)
        anthropic_client = anthropic.Anthropic(base_url=f"http://127.0.0.1:{port}", api_key="x", max_retries=0,
                                               timeout=30)
        assert wait_for(lambda: _answers(openai_client), timeout=30), process.stderr.read() if process.poll() else ""
        texts: dict[str, list[str]] = {"openai": [], "anthropic": []}
        errors: dict[str, BaseException] = {}
        arrived = {name: threading.Event() for name in texts}

        def ask_openai() -> None:
            try:
                for chunk in openai_client.chat.completions.create(model="up", stream=True,
                                                                   messages=[{"role": "user", "content": "go"}]):
                    if chunk.choices and chunk.choices[0].delta.content:
                        texts["openai"].append(chunk.choices[0].delta.content)
                        arrived["openai"].set()
            except BaseException as error:  # noqa: BLE001  (what the SDK raised is the point)
                errors["openai"] = error

        def ask_anthropic() -> None:
            try:
                with anthropic_client.messages.stream(model="up", max_tokens=1000,
                                                      messages=[{"role": "user", "content": "go"}]) as stream:
                    for text in stream.text_stream:
                        texts["anthropic"].append(text)
                        arrived["anthropic"].set()
            except BaseException as error:  # noqa: BLE001
                errors["anthropic"] = error

        askers = [threading.Thread(target=ask_openai), threading.Thread(target=ask_anthropic)]
        for asker in askers:
            asker.start()
        assert all(event.wait(10) for event in arrived.values())
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        for asker in askers:
            asker.join(20)
        _, log = process.communicate(timeout=30)
        took = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, log
    assert took < 10
    for name in texts:  # text arrived, then the protocol's error event (not a cut connection)
        assert texts[name] and len(texts[name]) < 400
    assert isinstance(errors["openai"], openai.APIError) and not isinstance(errors["openai"],
                                                                            openai.APIConnectionError)
    assert "the gateway is shutting down" in errors["openai"].message
    assert isinstance(errors["anthropic"], anthropic.APIStatusError)
    assert "the gateway is shutting down" in str(errors["anthropic"])
    assert "shutdown deadline (1 s) passed: cancelled 2 answers in flight" in log
    assert "Traceback" not in log and "ERROR:" not in log and "CancelledError" not in log, log
    rows = ledger_rows()
    assert [row.outcome for row in rows] == ["interrupted", "interrupted"]
    assert all(row.output_tokens for row in rows)  # charged for what was used
