"""The batch checkpoint (`llmswitch.store.checkpoint`) method by method, on a real SQLite file: runs, each
line's result, forgetting, provider jobs, and what a broken file says. The end-to-end behaviour (resume,
retry-failed, kill -9) is in test_batch.py, test_batch_crash.py and test_batch_provider.py."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from llmswitch.store.checkpoint import FILE_NAME, Checkpoint, CheckpointError, JobRecord, RunKey, RunRecord

RUN = RunKey("a" * 64, "fast")
OTHER = RunKey("b" * 64, "fast")


def test_the_checkpoint_lives_in_the_data_dir(hermetic: Path) -> None:
    with Checkpoint() as checkpoint:
        assert checkpoint.path == hermetic / "data" / FILE_NAME
        checkpoint.start_run(RUN, input_name="in.jsonl", output="out.jsonl", lines=3)
    assert (hermetic / "data" / FILE_NAME).exists()


def test_a_run_is_noted_then_refreshed_when_resumed(hermetic: Path) -> None:
    with Checkpoint() as checkpoint:
        before = time.time()
        checkpoint.start_run(RUN, input_name="in.jsonl", output="out.jsonl", lines=3)
        [first] = checkpoint.runs()
        assert first == RunRecord(RUN, "in.jsonl", "out.jsonl", 3, 0, 0, first.created_at, first.created_at)
        assert before <= first.created_at <= time.time()
        time.sleep(0.01)
        checkpoint.start_run(RUN, input_name="moved.jsonl", output="elsewhere.jsonl", lines=99)
        [again] = checkpoint.runs()
    assert (again.input_name, again.output, again.lines) == ("moved.jsonl", "elsewhere.jsonl", 3)
    assert again.created_at == first.created_at and again.updated_at > first.updated_at


def test_runs_count_their_done_and_failed_lines_most_recent_first(hermetic: Path) -> None:
    with Checkpoint() as checkpoint:
        checkpoint.start_run(RUN, input_name="a", output="a.out", lines=4)
        time.sleep(0.01)
        checkpoint.start_run(OTHER, input_name="b", output="b.out", lines=2)
        checkpoint.save(RUN, "1", 1, {"id": "1", "text": "x"}, failed=False)
        checkpoint.save(RUN, "2", 2, {"id": "2", "error": "e"}, failed=True)
        checkpoint.save(RUN, "3", 3, {"id": "3", "text": "y"}, failed=False)
        checkpoint.save(RunKey(RUN.input_hash, "slow"), "1", 1, {"id": "1"}, failed=True)  # another profile's
        runs = checkpoint.runs()
    assert [(r.key, r.lines, r.done, r.failed) for r in runs] == [(OTHER, 2, 0, 0), (RUN, 4, 3, 1)]


def test_results_come_back_in_input_order_and_a_retry_replaces_the_line(hermetic: Path) -> None:
    with Checkpoint() as checkpoint:
        checkpoint.save(RUN, "late", 7, {"id": "late", "text": "seven"}, failed=False)
        checkpoint.save(RUN, "early", 2, {"id": "early", "error": "429"}, failed=True)
        checkpoint.save(OTHER, "early", 1, {"id": "early", "text": "other run"}, failed=False)
        checkpoint.save(RUN, "early", 2, {"id": "early", "text": "two"}, failed=False)  # the retry
        assert list(checkpoint.results(RUN)) == [("early", {"id": "early", "text": "two"}),
                                                 ("late", {"id": "late", "text": "seven"})]
        assert checkpoint.count(RUN) == 2 and checkpoint.count(OTHER) == 1
        assert checkpoint.count(RunKey("c" * 64, "fast")) == 0


def test_a_result_is_stored_as_compact_utf8_json(hermetic: Path) -> None:
    with Checkpoint() as checkpoint:
        checkpoint.save(RUN, "1", 1, {"text": "café ☕", "n": 1}, failed=False)
        path = checkpoint.path
    raw = sqlite3.connect(path).execute("SELECT record, failed, line FROM results").fetchone()
    assert raw == ('{"text":"café ☕","n":1}', 0, 1)


def test_forgetting_drops_a_runs_results_or_only_its_failures(hermetic: Path) -> None:
    with Checkpoint() as checkpoint:
        for number in range(1, 5):
            checkpoint.save(RUN, str(number), number, {"id": str(number)}, failed=number % 2 == 0)
        checkpoint.save(OTHER, "1", 1, {"id": "1"}, failed=True)
        assert checkpoint.forget(RUN, failed_only=True) == 2
        assert [key for key, _ in checkpoint.results(RUN)] == ["1", "3"]
        assert checkpoint.forget(RUN) == 2
        assert checkpoint.count(RUN) == 0 and checkpoint.count(OTHER) == 1


def job(job_id: str, key: RunKey = RUN, status: str = "in_progress") -> JobRecord:
    return JobRecord(job_id, key, "gpt-x", "openai", "in.jsonl", "out.jsonl",
                     {"c-1": ["1", 1], "c-2": ["two", 2]}, status)


def test_a_job_is_kept_with_its_lines_and_followed_until_collected(hermetic: Path) -> None:
    with Checkpoint() as checkpoint:
        before = time.time()
        checkpoint.add_job(job("batch_1"))
        time.sleep(0.01)
        checkpoint.add_job(job("batch_2", OTHER))
        [first] = checkpoint.jobs(job_id="batch_1")
        assert (first.job_id, first.key, first.model, first.backend, first.input_name, first.output, first.lines,
                first.status) == ("batch_1", RUN, "gpt-x", "openai", "in.jsonl", "out.jsonl",
                                  {"c-1": ["1", 1], "c-2": ["two", 2]}, "in_progress")
        assert before <= first.submitted_at == first.checked_at <= time.time()
        assert first.collected_at is None and not first.collected
        time.sleep(0.01)
        checkpoint.update_job("batch_1", "finalizing")
        [checked] = checkpoint.jobs(job_id="batch_1")
        assert checked.status == "finalizing" and checked.checked_at > first.checked_at
        assert checked.submitted_at == first.submitted_at
        assert checked.collected_at is None
        checkpoint.finish_job("batch_1", "completed")
        [done] = checkpoint.jobs(job_id="batch_1")
        assert done.status == "completed" and done.collected and done.collected_at == done.checked_at
        assert [j.job_id for j in checkpoint.jobs()] == ["batch_1", "batch_2"]  # oldest first
        assert [j.job_id for j in checkpoint.jobs(open_only=True)] == ["batch_2"]
        assert [j.job_id for j in checkpoint.jobs(key=OTHER)] == ["batch_2"]
        assert [j.job_id for j in checkpoint.jobs(key=RUN, open_only=True)] == []
        assert checkpoint.jobs(job_id="batch_1", key=OTHER) == []
        assert checkpoint.jobs(key=RunKey(RUN.input_hash, "slow")) == []


def test_a_jobs_lines_are_stored_as_compact_json(hermetic: Path) -> None:
    with Checkpoint() as checkpoint:
        checkpoint.add_job(job("batch_1"))
        path = checkpoint.path
    raw = sqlite3.connect(path).execute("SELECT lines FROM jobs").fetchone()[0]
    assert raw == '{"c-1":["1",1],"c-2":["two",2]}'


def test_a_job_of_an_ordered_run_says_so(hermetic: Path) -> None:
    from dataclasses import replace

    with Checkpoint() as checkpoint:
        checkpoint.add_job(replace(job("batch_1"), ordered=True))
        checkpoint.add_job(job("batch_2"))
        assert [(j.job_id, j.ordered) for j in checkpoint.jobs()] == [("batch_1", True), ("batch_2", False)]


def test_a_job_id_is_kept_once(hermetic: Path) -> None:
    with Checkpoint() as checkpoint:
        checkpoint.add_job(job("batch_1"))
        with pytest.raises(CheckpointError) as twice:
            checkpoint.add_job(job("batch_1"))
    assert "UNIQUE constraint failed: jobs.job_id" in str(twice.value)
    assert str(twice.value).startswith("cannot use the batch checkpoint at ")


def test_a_corrupt_checkpoint_says_so_and_how_to_start_again(hermetic: Path) -> None:
    path = hermetic / "data" / FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"these bytes only sit where a checkpoint should be" * 100)
    with Checkpoint() as checkpoint, pytest.raises(CheckpointError) as caught:
        checkpoint.runs()
    assert str(caught.value) == f"the batch checkpoint at {path} is corrupt (file is not a database)"
    assert (caught.value.remedy or "").endswith("to start a new one (batches then start from scratch)")
    assert caught.value.kind == "checkpoint"
