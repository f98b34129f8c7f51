"""Nothing shown is lost: an answer stopped by SIGTERM or SIGHUP keeps its text, is recorded in the history
as interrupted, and is charged in the ledger for what was used, as Ctrl-C does. A real process, a real server
that stalls in the middle of an answer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from llmswitch.ledger import Ledger
from llmswitch.store import HistoryStore
from tests.servers.openai_server import openai_server

ANSWER = "abcdefghijklmnopqrstuvwxyz"  # sent four characters a chunk; the server stalls after three chunks


def write_profile(config_file: Path, url: str) -> None:
    config_file.write_text(tomli_w.dumps({"profiles": {"p": {
        "backend": "openai", "base_url": f"{url}/v1", "model": "gpt-4o-mini", "timeout": 60.0,
        "price_input_per_mtok": 1.0, "price_output_per_mtok": 2.0}}}))


def stored_answers() -> list[tuple[str, str | None]]:
    with HistoryStore.open() as history:
        return [(m.content, m.finish_reason) for c in history.list_conversations() for m in history.messages(c.id)
                if m.role == "assistant"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_a_signal_mid_answer_keeps_records_and_charges_it(config_file: Path, signum: int, as_json: bool) -> None:
    with openai_server() as server:
        server.state.scenario = "stall"
        server.state.options.update(answer=ANSWER, delay=60)
        write_profile(config_file, server.url)
        process = subprocess.Popen(
            [sys.executable, "-m", "llmswitch", "chat", "-p", "p", *(["--json"] if as_json else []), "hi"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ),
        )
        assert process.stdout is not None
        first = b"" if as_json else process.stdout.read(12)  # the answer is flowing, then stalls
        if as_json:
            import time

            deadline = time.monotonic() + 30
            while not server.state.requests and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)
        process.send_signal(signum)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 128 + signum, err
    assert b"Traceback" not in err
    assert signal.Signals(signum).name.encode() in err
    if as_json:
        import json

        payload = json.loads(out)
        assert payload["text"] == ANSWER[:12] and payload["finish_reason"] == "interrupted"
    else:
        assert first + out == ANSWER[:12].encode() + b"\n"
    assert stored_answers() == [(ANSWER[:12], "interrupted")]
    with Ledger() as ledger:
        (entry,) = ledger.entries()
    assert entry.outcome == "interrupted"
    assert entry.output_tokens and entry.tokens_estimated  # charged for what arrived, counted here
    assert entry.cost_usd is not None and entry.cost_usd > 0



def test_a_pipe_gets_the_text_while_the_model_pauses(config_file: Path) -> None:
    """Into a pipe, text is written in batches (llmswitch.cli.chat.PipedText); what arrived before the model
    paused still reaches the reader during the pause, with stdout buffered as it is by default."""
    import selectors
    import time

    with openai_server() as server:
        server.state.scenario = "stall"
        server.state.options.update(answer=ANSWER, delay=60)
        write_profile(config_file, server.url)
        env = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
        process = subprocess.Popen([sys.executable, "-m", "llmswitch", "chat", "-p", "p", "hi"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        assert process.stdout is not None
        received = b""
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            deadline = time.monotonic() + 30  # the server stalls for 60 s after three chunks
            while len(received) < 12 and selector.select(timeout=max(0.0, deadline - time.monotonic())):
                chunk = os.read(process.stdout.fileno(), 100)
                if not chunk:
                    break
                received += chunk
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert received == ANSWER[:12].encode()  # all three chunks, while the server still stalls


# ---- input that is not UTF-8 -----------------------------------------------------------------------------


def llmswitch_bytes(*args: str | bytes, stdin: bytes = b"", env: dict[str, str] | None = None
                    ) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "llmswitch", *args], input=stdin, capture_output=True,
                          env={**os.environ, **(env or {})}, timeout=60)


@pytest.mark.parametrize("locale", [
    {},
    {"PYTHONIOENCODING": "utf-8:strict"},
    {"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"},  # ASCII, no UTF-8 mode: the strictest
], ids=["utf-8", "strict-io", "C-locale"])
def test_piped_input_that_is_not_utf8_is_replaced_with_a_warning(locale: dict[str, str]) -> None:
    done = llmswitch_bytes("chat", "-p", "echo", stdin=b"caf\xe9", env=locale)
    assert done.returncode == 0, done.stderr
    assert b"unexpected failure" not in done.stderr and b"Traceback" not in done.stderr
    assert b"not valid UTF-8" in done.stderr and b"iconv" in done.stderr
    assert done.stdout in ("caf\ufffd\n".encode(), b"caf\\ufffd\n")  # an ASCII stdout gets an escape
    with HistoryStore.open() as history:
        (conversation,) = history.list_conversations()
        assert [m.content for m in history.messages(conversation.id)] == ["caf\ufffd", "caf\ufffd"]


def test_a_prompt_argument_that_is_not_utf8_is_replaced_with_a_warning() -> None:
    done = llmswitch_bytes("chat", "-p", "echo", b"caf\xe9")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "caf\ufffd\n".encode()
    assert b"prompt is not valid UTF-8" in done.stderr


# ---- the library: a stream closed part-way ------------------------------------------------------------------


def ledger_rows() -> list:  # type: ignore[type-arg]
    with Ledger() as ledger:
        return ledger.entries()


def test_closing_a_stream_part_way_charges_it_at_once_and_closes_the_upstream(config_file: Path) -> None:
    from llmswitch.client import Client
    from llmswitch.types import TextDelta

    with openai_server() as server:
        server.state.options.update(tokens=400, interval=0.02)
        write_profile(config_file, server.url)
        resolved = Client().resolve("p")
        result = resolved.stream(resolved.request("go"))
        events = iter(result)
        texts = [next(events) for _ in range(3)]
        result.close()  # the caller still holds ``events``: the call is settled now, not when it is collected
        assert server.state.disconnected.wait(5), "the upstream never saw the connection close"
        assert result.interrupted and result.latency_s is not None
        assert result.cost is not None and result.cost.output_tokens and result.cost.usd > 0
        rows = ledger_rows()
        assert [(row.outcome, row.output_tokens) for row in rows] == [("interrupted", result.cost.output_tokens)]
        assert list(events) == []  # the iteration is over
        assert "".join(event.text for event in texts if type(event) is TextDelta) == result.text
        result.close()  # twice: nothing more
        assert len(ledger_rows()) == 1


def test_aclose_of_an_async_stream_part_way_charges_it_at_once_as_close_does(config_file: Path) -> None:
    """``AsyncStreamResult.aclose()`` is ``close()`` for async code: the upstream closed, the call charged now,
    interrupted, with what arrived; a second ``aclose()`` adds nothing."""
    import asyncio

    from llmswitch.client import AsyncClient

    with openai_server() as server:
        server.state.options.update(tokens=400, interval=0.02)
        write_profile(config_file, server.url)

        async def main() -> Any:
            resolved = AsyncClient().resolve("p")
            result = resolved.astream(resolved.request("go"))
            events = result.__aiter__()
            for _ in range(3):
                await events.__anext__()
            await result.aclose()  # ``events`` is still held: the call is settled now, not when it is collected
            assert [row.outcome for row in ledger_rows()] == ["interrupted"]
            await result.aclose()
            return result

        result = asyncio.run(main())
        assert server.state.disconnected.wait(5), "the upstream never saw the connection close"
    assert result.interrupted and result.cost is not None and result.cost.usd > 0
    assert [(row.outcome, row.output_tokens) for row in ledger_rows()] == [("interrupted", result.cost.output_tokens)]


def test_a_stream_is_a_context_manager_that_settles_an_early_exit(config_file: Path) -> None:
    from llmswitch.client import Client

    with openai_server() as server:
        server.state.options.update(tokens=400, interval=0.02)
        write_profile(config_file, server.url)
        resolved = Client().resolve("p")
        with resolved.stream(resolved.request("go")) as result:
            for _ in result:
                break
        assert server.state.disconnected.wait(5)
        assert result.cost is not None and [row.outcome for row in ledger_rows()] == ["interrupted"]
        with resolved.stream(resolved.request("go")) as whole:  # a finished answer is left as it ended
            server.state.options.update(tokens=5, interval=0)
            text = "".join(getattr(event, "text", "") for event in whole)
        assert not whole.interrupted and whole.text == text
        assert [row.outcome for row in ledger_rows()] == ["interrupted", "ok"]


def test_a_stream_held_until_the_interpreter_exits_is_charged_without_a_warning(config_file: Path) -> None:
    with openai_server() as server:
        server.state.options.update(tokens=400, interval=0.02)
        write_profile(config_file, server.url)
        script = ("from llmswitch import Client\n"
                  "resolved = Client().resolve('p')\n"
                  "result = resolved.stream(resolved.request('go'))\n"
                  "events = iter(result)\n"
                  "next(events); next(events)\n"
                  "result.close()\n"
                  "print(result.cost.usd)\n")
        finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                                  env=dict(os.environ))
    assert finished.returncode == 0, finished.stderr
    assert float(finished.stdout) > 0  # charged at close(), with what arrived
    assert "Exception ignored" not in finished.stderr and "Traceback" not in finished.stderr, finished.stderr
    assert [row.outcome for row in ledger_rows()] == ["interrupted"]
