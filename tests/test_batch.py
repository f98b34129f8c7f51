"""``llmswitch batch`` and ``AsyncClient.batch``: inputs, output, checkpoint, cost limits, against a real
OpenAI-protocol server on 127.0.0.1 (and the echo backend where no server is needed)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from llmswitch import AsyncClient
from llmswitch.batch import BatchItem, InputError, InputProblem, read_input
from llmswitch.batch.output import OutputWriter, read_existing
from llmswitch.ledger import Ledger
from llmswitch.store.checkpoint import Checkpoint
from tests.helpers import run_cli
from tests.servers.openai_server import openai_server


def write_profiles(config_file: Path, url: str, **values: Any) -> None:
    profile = {"backend": "openai", "base_url": f"{url}/v1", "model": "test-model", "timeout": 30.0,
               "price_input_per_mtok": 1.0, "price_output_per_mtok": 2.0, **values}
    config_file.write_text(tomli_w.dumps({"profiles": {"p": profile}}))


def jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def read_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def asked_prompts(server: Any) -> Counter[str]:
    """How often each prompt reached the server whole (a kill can cut a request before its body is sent)."""
    return Counter(r.body["messages"][-1]["content"] for r in server.state.requests
                   if r.path.endswith("/chat/completions") and isinstance(r.body, dict))


# ---- input ------------------------------------------------------------------------------------------------


def test_jsonl_lines_with_prompts_messages_and_settings_and_bad_lines_numbered(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        '{"id": "a", "prompt": "hi", "max_tokens": 5, "system": "be brief", "answer": "kept as metadata"}\n'
        "\n"
        '{"id": 2, "messages": [{"role": "user", "content": "hey"}], "stop": ["x"]}\n'
        "not json\n"
        '{"id": 4, "prompt": "x", "temprature": 0.2}\n'
        '{"id": 5, "prompt": "x", "max_tokens": "many"}\n'
        '{"id": 6}\n'
        '[1, 2]\n', encoding="utf-8")
    batch = read_input(source)
    assert batch.format == "jsonl" and len(batch.digest) == 64
    first, second = batch.items
    assert (first.id, first.line, first.prompt, first.system, dict(first.settings)) == \
        ("a", 1, "hi", "be brief", {"max_tokens": 5})
    assert second.messages[0].content == "hey" and second.settings["stop"] == ("x",)
    problems = {problem.line: problem.message for problem in batch.problems}
    assert problems[4].startswith("line 4 is not valid JSON")
    assert "did you mean 'temperature'" in problems[5]
    assert "max_tokens must be an integer" in problems[6]
    assert 'give either "prompt"' in problems[7]
    assert "JSON list" in problems[8]


def test_a_line_with_a_number_that_is_not_finite_is_a_problem_not_a_plugin_bug(tmp_path: Path) -> None:
    # Python's JSON reader takes NaN and Infinity; sent on, they failed as "plugin openai raised an unexpected error"
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": 1, "prompt": "x", "temperature": NaN}\n'
                      '{"id": 2, "prompt": "x", "top_p": 1e999}\n'
                      '{"id": 3, "prompt": "x", "options": {"extra_body": {"penalty": -Infinity}}}\n'
                      '{"id": 4, "prompt": "x", "temperature": 0.5}\n', encoding="utf-8")
    batch = read_input(source)
    assert [item.id for item in batch.items] == [4]
    problems = {problem.line: problem.message for problem in batch.problems}
    assert problems == {1: "line 1: temperature must be a finite number, not NaN",
                        2: "line 2: top_p must be a finite number, not Infinity",
                        3: "line 3: \"options\" holds extra_body.penalty = -inf, which no server can read in JSON"}


def test_csv_with_a_question_column_and_plain_text(tmp_path: Path) -> None:
    csv_file = tmp_path / "test_Q.csv"
    csv_file.write_text('id,question,answer\nq1,"What is 2+2,\nreally?",4\nq2,,5\nq3,Why?,x,extra\n',
                        encoding="utf-8")
    batch = read_input(csv_file)
    (item,) = batch.items
    assert (item.id, item.line, item.prompt) == ("q1", 2, "What is 2+2,\nreally?")
    assert [(p.line, p.id) for p in batch.problems] == [(4, "q2"), (5, None)]
    with pytest.raises(InputError, match="no column 'prompt'"):
        read_input(csv_file, prompt_column="prompt")
    text = tmp_path / "prompts"
    text.write_text("first\n\nthird\n", encoding="utf-8")
    assert [(i.id, i.prompt) for i in read_input(text).items] == [(1, "first"), (3, "third")]


def test_duplicate_ids_are_refused_before_anything_is_sent(tmp_path: Path) -> None:
    source = jsonl(tmp_path / "in.jsonl", [{"id": 1, "prompt": "a"}, {"id": "1", "prompt": "b"}])
    with pytest.raises(InputError, match=r"duplicate ids: id '1' on lines 1 and 2"):
        read_input(source)
    outcome = run_cli("batch", str(source), "-p", "echo", "-o", str(tmp_path / "out.jsonl"))
    assert outcome.exit_code == 2 and "duplicate ids" in outcome.stderr
    assert not (tmp_path / "out.jsonl").exists()


# ---- output -------------------------------------------------------------------------------------------------


def test_a_half_written_last_line_is_cut_off_and_a_whole_one_kept(tmp_path: Path) -> None:
    output = tmp_path / "out.jsonl"
    output.write_bytes(b'{"id": 1, "line": 1, "error": null}\n{"id": 2, "line": 2, "te')
    found = read_existing(output)
    assert found.repaired and found.keys == {"1"}
    assert output.read_bytes() == b'{"id": 1, "line": 1, "error": null}\n'
    output.write_bytes(b'{"id": 1, "line": 1, "error": {"kind": "x"}}')
    found = read_existing(output)
    assert not found.repaired and found.failed == {"1"} and output.read_bytes().endswith(b"}\n")


def test_ordered_writer_holds_a_result_until_the_lines_before_it_are_written(tmp_path: Path) -> None:
    output = tmp_path / "out.jsonl"
    with OutputWriter(str(output), ordered=True, order=["1", "2", "3", "4"], written={"2"}) as writer:
        writer.write({"id": 3, "line": 3})
        assert writer.waiting == 1 and output.read_text() == ""
        writer.write({"id": 1, "line": 1})
        assert writer.waiting == 0
    assert [r["id"] for r in read_records(output)] == [1, 3]


# ---- the command against a real server ------------------------------------------------------------------------


def test_batch_answers_every_line_with_usage_cost_and_a_ledger_row_each(config_file: Path, tmp_path: Path) -> None:
    rows = [{"id": i, "prompt": f"question {i}"} for i in range(30)] + [{"id": "bad", "prompt": ""}]
    source = jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"
    with openai_server() as server:
        server.state.options.update(tokens=4)
        write_profiles(config_file, server.url)
        outcome = run_cli("batch", str(source), "-p", "p", "-o", str(output), "--concurrency", "5")
    assert outcome.exit_code == 1, outcome  # one line failed
    assert "estimate: 30 lines to send" in outcome.stderr
    assert "31/31 lines done" in outcome.stderr and "1 failed" in outcome.stderr
    records = {record["id"]: record for record in read_records(output)}
    assert len(records) == 31
    ok = records[7]
    assert ok["text"] == "w0 w1 w2 w3 " and ok["finish_reason"] == "stop" and ok["model"] == "test-model"
    assert ok["usage"] == {"input_tokens": 5, "output_tokens": 4} and ok["profile"] == "p"
    assert ok["cost"]["usd"] == pytest.approx((5 * 1.0 + 4 * 2.0) / 1e6)
    (attempt,) = ok["attempts"]  # the router's attempt: one, on the profile itself
    assert attempt["member"] == "p" and attempt["outcome"] == "ok" and attempt["status"] is None
    assert 0 < attempt["latency_s"] <= ok["latency_s"]
    assert ok["error"] is None
    assert records["bad"]["error"]["kind"] == "invalid_input" and "line 31" in records["bad"]["error"]["message"]
    assert asked_prompts(server) == Counter({f"question {i}": 1 for i in range(30)})
    with Ledger() as ledger:
        entries = ledger.entries()
    assert len(entries) == 30 and {entry.profile for entry in entries} == {"p"}
    assert sum(entry.cost_usd or 0 for entry in entries) == pytest.approx(30 * 13 / 1e6)


def test_a_backend_failure_is_a_failed_line_and_retry_failed_asks_only_those(config_file: Path,
                                                                           tmp_path: Path) -> None:
    source = jsonl(tmp_path / "in.jsonl", [{"id": i, "prompt": f"q{i}"} for i in range(6)])
    output = tmp_path / "out.jsonl"
    with openai_server() as server:
        write_profiles(config_file, server.url, max_retries=0)  # one request per line: the router's retries are off
        server.state.scenario = "server_error"
        first = run_cli("batch", str(source), "-p", "p", "-o", str(output))
        assert first.exit_code == 1 and "6 failed" in first.stderr and "--retry-failed" in first.stderr
        assert {r["error"]["kind"] for r in read_records(output)} == {"bad_response"}
        server.state.scenario = "ok"
        again = run_cli("batch", str(source), "-p", "p", "-o", str(output))
        assert again.exit_code == 2 and "--resume" in again.stderr  # never overwritten by accident
        resumed = run_cli("batch", str(source), "-p", "p", "-o", str(output), "--resume")
        assert resumed.exit_code == 1 and len(server.state.requests) == 6  # failures are results: not re-asked
        retried = run_cli("batch", str(source), "-p", "p", "-o", str(output), "--retry-failed")
    assert retried.exit_code == 0, retried
    assert "6 failed lines are asked again" in retried.stderr
    records = read_records(output)
    assert sorted(r["id"] for r in records) == list(range(6)) and all(r["error"] is None for r in records)
    assert len(server.state.requests) == 12


def test_ordered_output_from_stdin_to_stdout(config_file: Path) -> None:
    with openai_server() as server:
        write_profiles(config_file, server.url)
        prompts = "".join(f"prompt {i}\n" for i in range(20))
        outcome = run_cli("batch", "-", "-p", "p", "-o", "-", "--ordered", "--concurrency", "7", input=prompts)
    assert outcome.exit_code == 0, outcome
    records = [json.loads(line) for line in outcome.stdout.splitlines()]
    assert [r["id"] for r in records] == list(range(1, 21))  # plain text: the id is the line number
    assert "batch: 20/20 lines done" in outcome.stderr and "batch:" not in outcome.stdout


def test_max_cost_refuses_a_batch_whose_estimate_is_above_it(config_file: Path, tmp_path: Path) -> None:
    source = jsonl(tmp_path / "in.jsonl", [{"id": i, "prompt": "word " * 100} for i in range(10)])
    with openai_server() as server:
        write_profiles(config_file, server.url, max_tokens=1000)
        outcome = run_cli("batch", str(source), "-p", "p", "-o", str(tmp_path / "o.jsonl"), "--max-cost", "0.01")
    assert outcome.exit_code == 1 and "more than --max-cost $0.01" in outcome.stderr
    assert "max_tokens" in outcome.stderr  # the remedy
    assert server.state.requests == []


def test_max_cost_stops_the_batch_before_spend_passes_it(config_file: Path, tmp_path: Path) -> None:
    """The server answers far more than max_tokens (as some do): the estimate let the batch start, the actual
    spend stops it, and never passes the limit; --resume with a higher limit finishes it."""
    source = jsonl(tmp_path / "in.jsonl", [{"id": i, "prompt": "hi", "max_tokens": 1} for i in range(40)])
    output = tmp_path / "out.jsonl"
    with openai_server() as server:
        server.state.options.update(tokens=500)  # 500 output tokens at $2/Mtok = $0.001 a line
        write_profiles(config_file, server.url)
        outcome = run_cli("batch", str(source), "-p", "p", "-o", str(output), "--max-cost", "0.01",
                          "--concurrency", "2")
        assert outcome.exit_code == 1 and "stopped by --max-cost $0.01" in outcome.stderr, outcome
        spent = sum(r["cost"]["usd"] for r in read_records(output))
        assert 0.008 <= spent <= 0.01 + 2 * 0.001  # only the first two calls (in flight) could pass it
        assert len(read_records(output)) == len(server.state.requests) < 40
        finished = run_cli("batch", str(source), "-p", "p", "-o", str(output), "--resume")
    assert finished.exit_code == 0, finished
    assert sorted(r["id"] for r in read_records(output)) == list(range(40))
    assert sum(asked_prompts(server).values()) == 40


def test_a_kill_between_commit_and_write_is_repaired_on_resume(config_file: Path, tmp_path: Path) -> None:
    """The checkpoint holds lines OUTPUT lost (and a half-written one): --resume writes them, asks nothing."""
    source = jsonl(tmp_path / "in.jsonl", [{"id": i, "prompt": f"q{i}"} for i in range(5)])
    output = tmp_path / "out.jsonl"
    with openai_server() as server:
        write_profiles(config_file, server.url)
        assert run_cli("batch", str(source), "-p", "p", "-o", str(output)).exit_code == 0
        lines = output.read_bytes().splitlines(keepends=True)
        output.write_bytes(b"".join(lines[:2]) + lines[2][:20])  # as if killed while writing the third line
        outcome = run_cli("batch", str(source), "-p", "p", "-o", str(output), "--resume")
    assert outcome.exit_code == 0, outcome
    assert "half-written" in outcome.stderr
    assert sorted(r["id"] for r in read_records(output)) == list(range(5))
    assert len(server.state.requests) == 5


def test_restart_forgets_the_checkpoint_and_overwrites_output(config_file: Path, tmp_path: Path) -> None:
    source = jsonl(tmp_path / "in.jsonl", [{"id": 1, "prompt": "q"}])
    output = tmp_path / "out.jsonl"
    output.write_text("something else\n")
    with openai_server() as server:
        write_profiles(config_file, server.url)
        refused = run_cli("batch", str(source), "-p", "p", "-o", str(output))
        assert refused.exit_code == 2 and "already exists" in refused.stderr
        assert output.read_text() == "something else\n"
        assert run_cli("batch", str(source), "-p", "p", "-o", str(output), "--restart").exit_code == 0
        assert run_cli("batch", str(source), "-p", "p", "-o", str(output), "--restart").exit_code == 0
    assert len(read_records(output)) == 1 and len(server.state.requests) == 2
    with Checkpoint() as checkpoint:
        (run,) = checkpoint.runs()
    assert (run.done, run.lines, run.input_name) == (1, 1, str(source))


@pytest.mark.parametrize("flag", [None, "--restart", "--resume"])
def test_an_output_that_is_a_folder_is_refused_before_anything_is_sent(tmp_path: Path, flag: str | None) -> None:
    """-o naming a folder (a new user's `-o results/`): one sentence naming it, whatever the flags, never "already
    exists and is not empty" for an empty folder nor an IsADirectoryError; nothing asked, no lock file beside it."""
    source = tmp_path / "q.txt"
    source.write_text("one\ntwo\n")
    folder = tmp_path / "results"
    folder.mkdir()
    outcome = run_cli("batch", str(source), "-p", "echo", "-o", str(folder), *([flag] if flag else []))
    assert outcome.exit_code == 2, outcome
    assert f"OUTPUT {folder} is a folder" in outcome.stderr
    assert f"-o {folder / 'answers.jsonl'}" in outcome.stderr and "Traceback" not in outcome.stderr
    assert list(folder.iterdir()) == [] and not (tmp_path / "results.lock").exists()
    with Checkpoint() as checkpoint:
        assert checkpoint.runs() == []


def test_a_finished_input_sent_to_another_output_says_where_its_results_went(tmp_path: Path) -> None:
    """The same questions to a new OUTPUT: refused in plain words (how many lines, which OUTPUT has them), and
    --resume copies the results there without asking anything again."""
    from llmswitch.ledger import Ledger

    source = tmp_path / "q.txt"
    source.write_text("one\ntwo\n")
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    assert run_cli("batch", str(source), "-p", "echo", "-o", str(first)).exit_code == 0
    refused = run_cli("batch", str(source), "-p", "echo", "-o", str(second))
    assert refused.exit_code == 2, refused
    said = " ".join(refused.stderr.split())
    assert (f"all 2 lines of {source} already have a result on profile 'echo' from an earlier run (which wrote "
            f"{first})") in said
    assert "written to this OUTPUT too" in said
    copied = run_cli("batch", str(source), "-p", "echo", "-o", str(second), "--resume")
    assert copied.exit_code == 0, copied
    assert sorted(r["text"] for r in read_records(second)) == ["one", "two"]
    with Ledger() as ledger:
        assert len(ledger.entries()) == 2  # asked once, by the first run


# ---- the library ---------------------------------------------------------------------------------------------


def test_async_client_batch_yields_results_as_they_complete_within_the_concurrency(config_file: Path) -> None:
    with openai_server() as server:
        server.state.options.update(answer_delay=0.05)
        write_profiles(config_file, server.url)

        async def main() -> list[Any]:
            async with AsyncClient() as client:
                prompts = [f"p{i}" for i in range(12)] + [BatchItem("own", 0, "custom", settings={"seed": 3})]
                return [result async for result in client.batch("p", prompts, concurrency=4)]

        import time

        started = time.perf_counter()
        results = asyncio.run(main())
        elapsed = time.perf_counter() - started
    assert sorted(str(r.id) for r in results) == sorted([str(i) for i in range(1, 13)] + ["own"])
    assert all(r.ok and r.text for r in results)
    assert 0.15 <= elapsed < 3  # 13 calls of 50 ms, 4 at a time: at least 4 rounds
    seeded = [r.body for r in server.state.requests if r.body["messages"][-1]["content"] == "custom"]
    assert seeded[0]["seed"] == 3


def test_problem_entries_in_the_library_are_failed_results(tmp_path: Path) -> None:
    from llmswitch.batch.runner import Runner

    resolved = AsyncClient().resolve("echo")

    async def main() -> list[Any]:
        entries = [(0, BatchItem(1, 1, "hello")), (1, InputProblem(2, "line 2 is not valid JSON"))]
        return [r async for r in Runner(resolved, entries, concurrency=2).results()]

    results = {r.line: r for r in asyncio.run(main())}
    assert results[1].text == "hello" and results[2].error is not None
    assert results[2].record()["error"]["kind"] == "invalid_input"


def test_progress_on_a_terminal_and_one_summary_line(tmp_path: Path) -> None:
    from tests.helpers import llmswitch_on_terminal

    source = tmp_path / "prompts.txt"
    source.write_text("".join(f"line {i}\n" for i in range(200)), encoding="utf-8")
    code, shown = llmswitch_on_terminal("batch", str(source), "-p", "echo", "-o", str(tmp_path / "out.jsonl"))
    assert code == 0, shown
    assert b"200/200" in shown and b"ETA" in shown and b"0 failed" in shown  # rich's live bar
    assert b"batch: 200/200 lines done, 0 failed" in shown


def test_each_answer_is_in_the_ledger_before_it_is_handed_on_and_bursts_share_a_commit(tmp_path: Path) -> None:
    """The runner commits the rows of the calls that finish in the same turn of the event loop together: fewer
    transactions than lines, and yet every result it yields is already charged in the ledger file."""
    from llmswitch.batch.runner import Runner

    commits: list[int] = []

    class CountingLedger(Ledger):
        def append_all(self, entries: Any) -> None:
            commits.append(len(entries))
            super().append_all(entries)

    resolved = AsyncClient().resolve("echo")
    entries = [(index, BatchItem(index + 1, index + 1, f"line {index}")) for index in range(60)]

    async def main() -> list[int]:
        charged = []
        with CountingLedger() as ledger:
            async for _result in Runner(resolved, entries, concurrency=20, ledger=ledger).results():
                with Ledger() as reader:  # another connection: what a crash right now would leave
                    charged.append(len(reader.entries()))
        return charged

    charged = asyncio.run(main())
    assert all(rows >= yielded for yielded, rows in enumerate(charged, start=1))
    assert sum(commits) == 60 and len(commits) < 60


def test_an_unexpected_exception_is_a_failed_line_never_a_missing_one(config_file: Path, tmp_path: Path) -> None:
    from llmswitch.testing import use_plugin
    from tests.fake_plugins import SloppyPlugin

    config_file.write_text(tomli_w.dumps({"profiles": {"p": {"backend": "sloppy"}}}))
    source = jsonl(tmp_path / "in.jsonl", [{"id": i, "prompt": f"q{i}"} for i in range(3)])
    output = tmp_path / "out.jsonl"
    with use_plugin(SloppyPlugin(), "sloppy"):
        outcome = run_cli("batch", str(source), "-p", "p", "-o", str(output), "--concurrency", "1")
    assert outcome.exit_code == 1 and "1 failed" in outcome.stderr, outcome.stderr
    records = {r["id"]: r for r in read_records(output)}
    assert sorted(records) == [0, 1, 2]
    assert records[0]["text"] == records[2]["text"] == "fine"
    assert records[1]["error"]["kind"] == "internal"
    assert "TypeError" in records[1]["error"]["message"] and "report this bug" in records[1]["error"]["remedy"]


def test_one_line_is_one_line_in_every_count(config_file: Path, tmp_path: Path) -> None:
    source = jsonl(tmp_path / "in.jsonl", [{"id": 1, "prompt": "only"}])
    outcome = run_cli("batch", str(source), "-p", "echo", "-o", str(tmp_path / "out.jsonl"))
    assert outcome.exit_code == 0, outcome
    assert "estimate: 1 line to send" in outcome.stderr and "1/1 line done" in outcome.stderr
    assert "lines" not in outcome.stderr


def test_a_library_batch_job_frees_its_output_when_its_run_ends_without_close(tmp_path: Path) -> None:
    """A caller that runs a job and never closes it (as ``bench/bench_batch.py`` did) can run the next on the
    same OUTPUT: the run itself gives the lock up, however it ends."""
    from llmswitch.batch import BatchJob, BatchOptions
    from llmswitch.client import Client

    source, output = tmp_path / "q.txt", tmp_path / "a.jsonl"
    source.write_text("one\ntwo\n")

    def run_once() -> int:
        job = BatchJob(Client(), BatchOptions(str(source), str(output), profile="echo", restart=True))
        summary = asyncio.run(job.run(job.prepare()))
        return summary.answered

    assert run_once() == 2
    assert not output.with_name(output.name + ".lock").exists()
    assert run_once() == 2  # before the fix: "a.jsonl is being written by another llmswitch batch (pid <this one>)"
    assert len(output.read_text().splitlines()) == 2
