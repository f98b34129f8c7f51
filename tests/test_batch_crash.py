"""Nothing lost: ``llmswitch batch`` killed with ``kill -9`` or stopped with Ctrl-C at any moment, then
``--resume``: every line answered exactly once in OUTPUT, none asked twice except those in flight at the kill,
OUTPUT valid JSONL. A real process, a real OpenAI-protocol server on 127.0.0.1 that takes its time."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from llmswitch.ledger import Ledger
from tests.helpers import interruptible_popen, run_cli
from tests.servers.openai_server import openai_server
from tests.test_batch import asked_prompts, jsonl, read_records, write_profiles

LINES = 60
CONCURRENCY = 6


def start_batch(source: Path, output: Path) -> subprocess.Popen[str]:
    return interruptible_popen(
        [sys.executable, "-m", "llmswitch", "batch", str(source), "-p", "p", "-o", str(output),
         "--concurrency", str(CONCURRENCY)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_lines(output: Path, count: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if output.exists() and output.read_bytes().count(b"\n") >= count:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.01)
    raise AssertionError(f"{output} never reached {count} lines")


def assert_complete(output: Path) -> None:
    records = read_records(output)  # every line parses: valid JSONL
    assert sorted(record["id"] for record in records) == list(range(LINES))
    assert all(record["error"] is None and record["text"] for record in records)


@pytest.mark.parametrize("after", [3, 25, 50])
def test_kill_9_at_any_moment_then_resume_loses_nothing(config_file: Path, tmp_path: Path, after: int) -> None:
    source = jsonl(tmp_path / "in.jsonl", [{"id": i, "prompt": f"question {i}"} for i in range(LINES)])
    output = tmp_path / "out.jsonl"
    with openai_server() as server:
        server.state.options.update(answer_delay=0.05)
        write_profiles(config_file, server.url)
        process = start_batch(source, output)
        wait_for_lines(output, after, process)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        assert output.with_name("out.jsonl.lock").exists()  # the kill left it: it must not lock the resume out
        asked_before = asked_prompts(server)
        with output.open("ab") as handle:  # a write cut off by the kill (whatever the kill itself cut)
            handle.write(b'{"id": 999, "text": "half')
        resumed = run_cli("batch", str(source), "-p", "p", "-o", str(output), "--resume",
                          "--concurrency", str(CONCURRENCY))
        asked = asked_prompts(server)
    assert resumed.exit_code == 0, resumed
    assert "half-written" in resumed.stderr
    assert_complete(output)
    assert set(asked) == {f"question {i}" for i in range(LINES)}  # none lost
    twice = [prompt for prompt, count in asked.items() if count > 1]
    assert all(count <= 2 for count in asked.values())
    # Only the calls in flight at the kill (sent, not yet committed) are asked again.
    assert len(twice) <= CONCURRENCY and set(twice) <= set(asked_before)


def test_ctrl_c_cancels_in_flight_keeps_what_finished_and_says_how_to_resume(config_file: Path,
                                                                             tmp_path: Path) -> None:
    source = jsonl(tmp_path / "in.jsonl", [{"id": i, "prompt": f"question {i}"} for i in range(LINES)])
    output = tmp_path / "out.jsonl"
    with openai_server() as server:
        server.state.options.update(answer_delay=0.3)
        write_profiles(config_file, server.url)
        process = start_batch(source, output)
        wait_for_lines(output, 10, process)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
        assert process.returncode == 130, err
        assert "Traceback" not in err
        assert "interrupted" in err and "--resume" in err and "calls in flight were cancelled" in err
        kept = read_records(output)
        assert 10 <= len(kept) < LINES
        with Ledger() as ledger:
            outcomes = Counter(entry.outcome for entry in ledger.entries())
        assert outcomes["ok"] >= len(kept) and outcomes["interrupted"] >= 1  # in flight: charged as chat does
        resumed = run_cli("batch", str(source), "-p", "p", "-o", str(output), "--resume")
    assert resumed.exit_code == 0, resumed
    assert_complete(output)
    assert json.loads(output.read_text().splitlines()[0])["id"] == kept[0]["id"]  # what was kept stays first


def test_a_second_run_on_the_same_output_stops_at_once_naming_the_first(config_file: Path, tmp_path: Path) -> None:
    source = jsonl(tmp_path / "in.jsonl", [{"id": i, "prompt": f"question {i}"} for i in range(LINES)])
    output = tmp_path / "out.jsonl"
    with openai_server() as server:
        server.state.options.update(answer_delay=1.0)  # 10 s for the whole batch: the second run comes well before
        write_profiles(config_file, server.url)
        first = start_batch(source, output)
        wait_for_lines(output, CONCURRENCY, first)
        second = interruptible_popen(  # a --resume in a second terminal while the first still runs
            [sys.executable, "-m", "llmswitch", "batch", str(source), "-p", "p", "-o", str(output), "--resume"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _, err = second.communicate(timeout=60)
        assert first.poll() is None, "the first run ended before the second started: the test proves nothing"
        assert second.returncode == 2, err
        assert f"{output} is being written by another llmswitch batch (pid {first.pid})" in err
        assert f"kill {first.pid}" in err and "--resume" in err
        assert "Traceback" not in err
        _, first_err = first.communicate(timeout=120)
        assert first.returncode == 0, first_err
        asked = asked_prompts(server)
    assert_complete(output)  # every id once: the second run wrote nothing
    assert len(read_records(output)) == LINES
    assert set(asked.values()) == {1}  # and asked nothing
    assert not output.with_name("out.jsonl.lock").exists()  # a run that ends removes its lock file
