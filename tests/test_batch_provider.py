"""``llmswitch batch --via provider`` and ``llmswitch batch status``: OpenAI's Files + Batches API and Anthropic's
Message Batches, each against a local server implementing the endpoints as documented (upload, create,
retrieve, cancel, output and error files / results JSONL), including expired, cancelled and partially failed
jobs. Jobs are submitted by one process and collected by another."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from llmswitch.batch.provider import split_jobs
from llmswitch.ledger import Ledger
from llmswitch.store.checkpoint import Checkpoint
from llmswitch.types import BatchLimits
from tests.helpers import llmswitch_subprocess, run_cli
from tests.servers.anthropic_batch_server import anthropic_batch_server
from tests.servers.openai_batch_server import openai_batch_server
from tests.test_batch import jsonl, read_records

BATCH_PRICES = {"price_input_per_mtok": 2.0, "price_output_per_mtok": 8.0,
                "price_batch_input_per_mtok": 1.0, "price_batch_output_per_mtok": 4.0}


def write_profile(config_file: Path, backend: str, url: str, **values: Any) -> None:
    if backend == "openai":
        profile = {"backend": "openai", "base_url": f"{url}/v1", "model": "gpt-4o-mini"}
    else:
        profile = {"backend": "anthropic", "base_url": url, "model": "claude-haiku-4-5-20251001",
                   "api_key": "sk-ant-local-test-key", "max_tokens": 100}
    config_file.write_text(tomli_w.dumps({"profiles": {"p": {**profile, **BATCH_PRICES, **values}}}))


def questions(tmp_path: Path, count: int) -> Path:
    return jsonl(tmp_path / "in.jsonl", [{"id": f"q{i}", "prompt": f"question {i}"} for i in range(count)])


def job_ids(stderr: str) -> list[str]:
    return [word.strip(",") for line in stderr.splitlines() if line.startswith("submitted")
            for word in line.split(":", 1)[1].split(";")[0].split()]


# ---- splitting ------------------------------------------------------------------------------------------------


def test_jobs_are_split_at_the_documented_request_and_byte_limits() -> None:
    from llmswitch_anthropic.info import BATCH_LIMITS as ANTHROPIC
    from llmswitch_openai.info import BATCH_LIMITS as OPENAI

    assert (OPENAI.max_requests, OPENAI.max_bytes) == (50_000, 200 * 1024 * 1024)
    assert (ANTHROPIC.max_requests, ANTHROPIC.max_bytes) == (100_000, 256 * 1024 * 1024)
    small = [{"custom_id": f"line-{i}"} for i in range(50_001)]
    assert [len(job) for job in split_jobs(small, OPENAI)] == [50_000, 1]
    assert [len(job) for job in split_jobs(small + small[:49_999], ANTHROPIC)] == [100_000]
    big = "x" * 1_000_000  # one string shared by every line: 250 lines of about 1 MB
    large = [{"custom_id": f"line-{i}", "body": big} for i in range(250)]
    jobs = split_jobs(large, OPENAI)
    assert [len(job) for job in jobs] == [209, 41]
    sizes = [sum(len(json.dumps(line, separators=(",", ":"))) + 1 for line in job) for job in jobs]
    assert max(sizes) <= OPENAI.max_bytes
    assert [len(job) for job in split_jobs(large, ANTHROPIC)] == [250]
    assert [len(job) for job in split_jobs(small[:7], BatchLimits(3, 10**9))] == [3, 3, 1]


# ---- OpenAI ----------------------------------------------------------------------------------------------------


def test_openai_batch_submitted_by_one_process_and_collected_by_another(config_file: Path, tmp_path: Path) -> None:
    source, output = questions(tmp_path, 7), tmp_path / "out.jsonl"
    with openai_batch_server() as server:
        server.state.options.update(tokens=3, max_requests=3)  # the server refuses a bigger job
        write_profile(config_file, "openai", server.url, batch_max_requests=3)
        submitted = llmswitch_subprocess("batch", str(source), "-p", "p", "-o", str(output), "--via", "provider")
        assert submitted.returncode == 0, submitted.stderr
        jobs = job_ids(submitted.stderr)
        assert len(jobs) == 3 and "llmswitch batch status" in submitted.stderr
        assert "at most" in submitted.stderr  # the estimate, at the batch price
        assert not output.exists() or output.read_text() == ""
        uploads = [r for r in server.state.requests if r.path == "/v1/files"]
        assert [u.body["purpose"] for u in uploads] == [b"batch"] * 3

        running = run_cli("batch", "status")
        assert running.exit_code == 0, running
        assert running.stdout.count("in_progress") == 3
        assert not output.exists() or output.read_text() == ""
        done = run_cli("batch", "status")
    assert done.exit_code == 0, done
    assert done.stdout.count("completed") == 3 and "7 lines written" in done.stderr
    records = read_records(output)
    assert [r["id"] for r in records] == [f"q{i}" for i in range(7)]  # each job's lines in input order
    first = records[0]
    assert first["text"] == "w0 w1 w2 " and first["finish_reason"] == "stop" and first["error"] is None
    assert first["usage"] == {"input_tokens": 5, "output_tokens": 3}
    assert first["cost"]["usd"] == pytest.approx((5 * 1.0 + 3 * 4.0) / 1e6)  # the batch price, not 2.0/8.0
    with Ledger() as ledger:
        entries = ledger.entries()
    assert len(entries) == 7 and sum(e.cost_usd or 0 for e in entries) == pytest.approx(7 * 17 / 1e6)
    with Checkpoint() as checkpoint:
        assert checkpoint.jobs(open_only=True) == []
    assert "no batch job is waiting" in run_cli("batch", "status").stderr


@pytest.mark.parametrize("backend", ["openai", "anthropic"])
def test_ordered_output_across_jobs_that_end_in_any_order(backend: str, config_file: Path, tmp_path: Path) -> None:
    """--ordered over several provider jobs (the split limit lowered to 3 lines a job): a job that ends first
    waits in the checkpoint for the jobs before it, and OUTPUT is in input order however they end. An invalid
    line among them waits too."""
    rows: list[Any] = [{"id": f"q{i}", "prompt": f"question {i}"} for i in range(8)]
    rows.insert(4, {"id": "bad"})  # line 5: no prompt; failed at once, written in its place
    source, output = jsonl(tmp_path / "in.jsonl", rows), tmp_path / "out.jsonl"
    serve = openai_batch_server if backend == "openai" else anthropic_batch_server
    with serve() as server:
        write_profile(config_file, backend, server.url, batch_max_requests=3)
        submitted = run_cli("batch", str(source), "-p", "p", "-o", str(output), "--via", "provider", "--ordered")
        assert submitted.exit_code in (0, 1), submitted
        first, second, third = job_ids(submitted.stderr)
        assert not output.exists() or output.read_text() == ""  # line 5 waits for lines 1-4
        for job in (third, second):  # the last jobs end first
            assert run_cli("batch", "status", job, "--wait", "--poll-interval", "0.01").exit_code == 0
            assert not output.exists() or output.read_text() == ""  # they wait for the first job
        with Checkpoint() as checkpoint:
            assert [job.ordered for job in checkpoint.jobs()] == [True] * 3
            assert checkpoint.count(checkpoint.jobs()[0].key) == 6  # committed, not lost, while they wait
        collected = run_cli("batch", "status", first, "--wait", "--poll-interval", "0.01")
    assert collected.exit_code == 0, collected
    records = read_records(output)
    assert [r["id"] for r in records] == [row["id"] for row in rows]  # input order
    assert records[4]["error"]["kind"] == "invalid_input"
    assert all(r["error"] is None and r["text"] for r in records if r["id"] != "bad")


def test_openai_partial_failure_and_expiry_then_retry_failed(config_file: Path, tmp_path: Path) -> None:
    source, output = questions(tmp_path, 5), tmp_path / "out.jsonl"
    with openai_batch_server() as server:
        server.state.options.update(fail_custom_ids=["line-2"], expire_after=3)
        write_profile(config_file, "openai", server.url)
        first = run_cli("batch", str(source), "-p", "p", "-o", str(output), "--via", "provider", "--wait",
                        "--poll-interval", "0.01")
        assert first.exit_code == 1, first  # some lines failed
        records = {r["id"]: r for r in read_records(output)}
        assert [records[f"q{i}"]["error"] is None for i in range(5)] == [True, False, True, False, False]
        assert "Invalid value for 'messages'" in records["q1"]["error"]["message"]
        assert {records[q]["error"]["kind"] for q in ("q3", "q4")} == {"expired"}
        assert "--retry-failed" in records["q3"]["error"]["remedy"]
        server.state.options.update(fail_custom_ids=[], expire_after=None)
        retried = run_cli("batch", str(source), "-p", "p", "-o", str(output), "--via", "provider",
                          "--retry-failed", "--wait", "--poll-interval", "0.01")
    assert retried.exit_code == 0, retried
    records = {r["id"]: r for r in read_records(output)}
    assert len(records) == 5 and all(r["error"] is None for r in records.values())
    second_upload = [r for r in server.state.requests if r.path == "/v1/files"][1]
    assert second_upload.body["file_bytes"] < [r for r in server.state.requests
                                               if r.path == "/v1/files"][0].body["file_bytes"]  # 3 lines, not 5


def test_a_job_that_fails_whole_and_a_cancelled_one(config_file: Path, tmp_path: Path) -> None:
    source, output = questions(tmp_path, 4), tmp_path / "out.jsonl"
    with openai_batch_server() as server:
        server.state.options.update(max_requests=2, polls=5, cancel_done=1)
        write_profile(config_file, "openai", server.url)  # the provider says 50,000; this server takes 2
        run_cli("batch", str(source), "-p", "p", "-o", str(output), "--via", "provider")
        failed = run_cli("batch", "status", "--wait", "--poll-interval", "0.01")
        assert failed.exit_code == 1, failed
        records = read_records(output)
        assert {r["error"]["kind"] for r in records} == {"not_answered"}
        assert "the limit is 2" in records[0]["error"]["message"]  # the provider's reason, in each line
        server.state.options.update(max_requests=50_000)
        submitted = run_cli("batch", str(source), "-p", "p", "-o", str(output), "--via", "provider",
                            "--retry-failed")
        (job,) = job_ids(submitted.stderr)
        cancelled = run_cli("batch", "cancel", job)
        assert cancelled.exit_code == 0 and "cancelling" in cancelled.stdout
        run_cli("batch", "status", job)
    records = {r["id"]: r for r in read_records(output)}
    assert records["q0"]["error"] is None
    assert {records[q]["error"]["kind"] for q in ("q1", "q2", "q3")} == {"cancelled"}


def hold_output(output: Path) -> subprocess.Popen[str]:
    """Another process holding OUTPUT's lock through the one lock every writer of OUTPUT takes (a batch run
    writing it), until its stdin closes."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from llmswitch.batch.output_lock import OutputLock; "
         f"lock = OutputLock({str(output)!r}); lock.acquire(); print('held', flush=True); sys.stdin.read(); "
         "lock.release()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_batch_status_takes_outputs_lock_and_charges_nothing_while_another_run_writes_it(
        config_file: Path, tmp_path: Path) -> None:
    """``batch status`` writes the job's OUTPUT, so it takes the lock ``batch`` takes: while another run holds
    it, the ended job is not collected (exit 2, naming that run), nothing is charged or written, and the job
    stays waiting; once OUTPUT is free the next ``status`` collects it whole."""
    source, output = questions(tmp_path, 3), tmp_path / "out.jsonl"
    with openai_batch_server() as server:
        write_profile(config_file, "openai", server.url)
        submitted = run_cli("batch", str(source), "-p", "p", "-o", str(output), "--via", "provider")
        assert submitted.exit_code == 0, submitted
        holder = hold_output(output)
        try:
            refused = run_cli("batch", "status", "--wait", "--poll-interval", "0.01")
            as_json = run_cli("batch", "status", "--json")
        finally:
            holder.communicate(input="", timeout=30)
        assert refused.exit_code == 2, refused
        assert f"{output} is being written by another llmswitch batch (pid {holder.pid})" in refused.stderr
        assert "run `llmswitch batch status` again" in refused.stderr and "nothing was charged" in refused.stderr
        assert "OUTPUT busy" in refused.stdout and "Traceback" not in refused.stderr
        assert as_json.exit_code == 2 and json.loads(as_json.stdout)["output_busy"] is True
        assert not output.exists() or output.read_text() == ""
        with Ledger() as ledger:
            assert ledger.entries() == []
        with Checkpoint() as checkpoint:
            assert len(checkpoint.jobs(open_only=True)) == 1
        collected = run_cli("batch", "status")
    assert collected.exit_code == 0, collected
    assert "3 lines written" in collected.stderr
    assert [r["id"] for r in read_records(output)] == ["q0", "q1", "q2"]
    with Ledger() as ledger:
        assert len(ledger.entries()) == 3  # charged once, when collected
    assert not output.with_name("out.jsonl.lock").exists()


def test_output_lock_is_re_entrant_within_a_process_and_held_until_its_last_holder_releases(
        tmp_path: Path) -> None:
    """``batch --via provider --wait`` holds OUTPUT and collects into it through the same lock: re-entering
    it in one process must not refuse itself, and the first release must not free OUTPUT for another run."""
    from llmswitch.batch.output_lock import OutputBusyError, OutputLock

    output = tmp_path / "out.jsonl"
    probe = [sys.executable, "-c", "from llmswitch.batch.output_lock import OutputLock; "
             f"OutputLock({str(output)!r}).acquire()"]
    run, collect = OutputLock(str(output)), OutputLock(str(output))
    run.acquire()
    with collect:
        other = subprocess.run(probe, capture_output=True, text=True)
        assert other.returncode != 0 and f"(pid {os.getpid()})" in other.stderr
    other = subprocess.run(probe, capture_output=True, text=True)
    assert other.returncode != 0 and f"(pid {os.getpid()})" in other.stderr  # still held by the run
    assert output.with_name("out.jsonl.lock").exists()
    run.release()
    assert not output.with_name("out.jsonl.lock").exists()
    assert subprocess.run(probe, capture_output=True, text=True).returncode == 0
    with pytest.raises(OutputBusyError):  # sanity: a holder in another process refuses this one
        holder = hold_output(output)
        try:
            OutputLock(str(output)).acquire()
        finally:
            holder.communicate(input="", timeout=30)


def test_via_provider_on_a_backend_without_a_batch_service_is_refused(tmp_path: Path) -> None:
    outcome = run_cli("batch", str(questions(tmp_path, 2)), "-p", "echo", "-o", str(tmp_path / "o.jsonl"),
                      "--via", "provider")
    assert outcome.exit_code == 2 and "has no provider batch service" in outcome.stderr
    assert "leave out --via provider" in outcome.stderr


# ---- Anthropic ----------------------------------------------------------------------------------------------


def test_anthropic_message_batches_with_errored_and_expired_requests(config_file: Path, tmp_path: Path) -> None:
    source, output = questions(tmp_path, 4), tmp_path / "out.jsonl"
    with anthropic_batch_server() as server:
        server.state.options.update(tokens=2, fail_custom_ids=["line-1"], expire_after=3)
        write_profile(config_file, "anthropic", server.url)
        submitted = llmswitch_subprocess("batch", str(source), "-p", "p", "-o", str(output), "--via", "provider")
        assert submitted.returncode == 0, submitted.stderr
        (job,) = job_ids(submitted.stderr)
        created = [r for r in server.state.requests if r.path == "/v1/messages/batches"][0]
        assert created.headers["x-api-key"] == "sk-ant-local-test-key"
        assert [request["custom_id"] for request in created.body["requests"]] == [f"line-{i}" for i in range(1, 5)]
        assert created.body["requests"][0]["params"]["max_tokens"] == 100
        collected = run_cli("batch", "status", job)
    assert collected.exit_code == 1, collected  # two lines failed; the others are answered
    assert "ended" in collected.stdout and "2 failed; --retry-failed" in collected.stderr
    records = {r["id"]: r for r in read_records(output)}
    assert records["q1"]["text"] == "w0 w1 " and records["q1"]["usage"]["output_tokens"] == 2
    assert records["q1"]["cost"]["usd"] == pytest.approx(
        (records["q1"]["usage"]["input_tokens"] * 1.0 + 2 * 4.0) / 1e6)
    assert "messages: bad content" in records["q0"]["error"]["message"]
    assert records["q3"]["error"]["kind"] == "expired"
    # results were read under the profile's base URL, not at the results_url the answer names
    assert any(r.path.endswith(f"/v1/messages/batches/{job}/results") for r in server.state.requests)


def test_a_plugin_with_some_batch_hooks_but_not_all_is_refused_by_name() -> None:
    from llmswitch.kit import BackendInfo, Response, hookimpl
    from llmswitch.plugins import get_registry
    from llmswitch.testing import use_plugin

    class Half:
        @hookimpl
        def llmswitch_backends(self) -> list[BackendInfo]:
            return [BackendInfo(name="half", summary="half a batch service", key_env=None)]

        @hookimpl
        def complete(self, target: Any, request: Any) -> Response:
            return Response("x")

        @hookimpl
        def batch_submit(self, target: Any, lines: Any) -> Any:
            raise AssertionError("never called")

    with use_plugin(Half(), "half"):
        (record,) = [plugin for plugin in get_registry().plugins if plugin.name == "half"]
        assert record.error is not None and "batch_line" in record.error and "all five or none" in record.error
        outcome = run_cli("plugins")
    assert "half" in outcome.output


def test_a_checkpoint_from_before_ordered_jobs_is_upgraded_with_its_jobs_kept(tmp_path: Path) -> None:
    """A batch.sqlite3 as an earlier llmswitch left it (steps 1 and 2, a job waiting): the upgrade keeps the
    job, unordered, so `batch status` still collects it."""
    from llmswitch.store import checkpoint as store
    from llmswitch.store import database

    path = tmp_path / "batch.sqlite3"
    old = database.open_database(path, store.STEPS[:2])
    old.execute("INSERT INTO jobs (job_id, input_hash, profile, model, backend, input_name, output, lines, status, "
                "submitted_at, checked_at) VALUES ('batch-1', 'h', 'p', 'm', 'openai', 'in', 'out', "
                "'{\"line-1\": [\"q0\", 1]}', 'in_progress', 1, 1)")
    old.close()
    with Checkpoint(path) as checkpoint:
        (job,) = checkpoint.jobs(open_only=True)
    assert (job.job_id, job.lines, job.ordered) == ("batch-1", {"line-1": ["q0", 1]}, False)
