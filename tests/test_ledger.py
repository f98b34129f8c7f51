"""The usage ledger: rows, summaries, time windows, many writers at once, and ``llmswitch usage``."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from llmswitch.config import data_dir
from llmswitch.errors import ConfigError
from llmswitch.ledger import (
    FILE_NAME,
    LATEST_VERSION,
    Ledger,
    LedgerEntry,
    parse_since,
    start_of_day,
    start_of_month,
)
from tests.helpers import llmswitch_subprocess, run_cli


def entry(profile: str = "p", cost: float | None = 0.01, *, ts: float | None = None, outcome: str = "ok",
          model: str = "m") -> LedgerEntry:
    return LedgerEntry(profile, "echo", model, 100, 50, cost, 0.5, outcome, ts=ts if ts is not None else time.time())


def test_rows_are_appended_and_read_back() -> None:
    with Ledger() as ledger:
        ledger.append(entry("a", 0.25))
        ledger.append(entry("a", None, outcome="auth"))
        ledger.append(entry("b", 1.0))
        rows = ledger.entries()
    assert [(r.profile, r.cost_usd, r.outcome) for r in rows] == [("a", 0.25, "ok"), ("a", None, "auth"),
                                                                 ("b", 1.0, "ok")]
    assert (data_dir() / FILE_NAME).exists()


def test_schema_version_and_wal_mode() -> None:
    with Ledger() as ledger:
        ledger.append(entry())
    connection = sqlite3.connect(data_dir() / FILE_NAME)
    assert connection.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    columns = [row[1] for row in connection.execute("PRAGMA table_info(calls)")]
    assert columns == ["id", "ts", "profile", "backend", "model", "input_tokens", "output_tokens",
                       "tokens_estimated", "cost_usd", "latency_s", "outcome", "route"]
    connection.close()


def test_spend_counts_only_the_profile_and_the_window() -> None:
    now = time.time()
    with Ledger() as ledger:
        ledger.append(entry("a", 0.5, ts=now))
        ledger.append(entry("a", 0.25, ts=now - 3600))
        ledger.append(entry("a", None, ts=now))  # unknown cost adds nothing
        ledger.append(entry("a", 4.0, ts=now - 90 * 86400))
        ledger.append(entry("b", 9.0, ts=now))
        assert ledger.spend("a", now - 7200) == pytest.approx(0.75)
        assert ledger.spend("a", 0) == pytest.approx(4.75)
        assert ledger.spend("c", 0) == 0.0


def test_summary_groups_by_profile_model_and_day() -> None:
    now = time.time()
    yesterday = now - 86400
    with Ledger() as ledger:
        ledger.append(entry("a", 0.5, ts=now, model="x"))
        ledger.append(entry("a", None, ts=now, model="y"))
        ledger.append(entry("b", 1.0, ts=yesterday, model="x", outcome="timeout"))
        by_profile = ledger.summary(0, "profile")
        by_model = ledger.summary(0, "model")
        by_day = ledger.summary(0, "day")
    assert [(r.key, r.calls, r.errors, r.cost_usd, r.unpriced_calls) for r in by_profile] == [
        ("b", 1, 1, 1.0, 0), ("a", 2, 0, 0.5, 1)]  # most spent first
    assert by_profile[1].input_tokens == 200 and by_profile[1].output_tokens == 100
    assert {r.key for r in by_model} == {"echo/x", "echo/y"}
    day = datetime.fromtimestamp
    assert [r.key for r in by_day] == [day(yesterday).strftime("%Y-%m-%d"), day(now).strftime("%Y-%m-%d")]


def test_reading_an_empty_ledger_creates_no_file() -> None:
    with Ledger() as ledger:
        assert ledger.summary(0) == [] and ledger.spend("p", 0) == 0.0
    assert not (data_dir() / FILE_NAME).exists()


def test_time_windows() -> None:
    now = datetime(2025, 6, 15, 13, 30).timestamp()
    assert parse_since("7d", now) == pytest.approx(now - 7 * 86400)
    assert parse_since("24h", now) == pytest.approx(now - 86400)
    assert parse_since("30m", now) == pytest.approx(now - 1800)
    assert parse_since("2w", now) == pytest.approx(now - 14 * 86400)
    assert parse_since("all", now) == 0.0
    assert parse_since("today", now) == datetime(2025, 6, 15).timestamp() == start_of_day(now)
    assert parse_since("month", now) == datetime(2025, 6, 1).timestamp() == start_of_month(now)
    assert parse_since("2025-06-01", now) == datetime(2025, 6, 1).timestamp()
    with pytest.raises(ConfigError) as caught:
        parse_since("last tuesday", now)
    assert "7d" in (caught.value.remedy or "")


# ---- many processes at once ----------------------------------------------------------------------------------

WRITER = """
import sys, time
from llmswitch.ledger import Ledger, LedgerEntry
worker, rows, start_at = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
while time.time() < start_at:
    time.sleep(0.001)
for i in range(rows):
    # A new connection per row, like one CLI call each: the worst case for locking.
    with Ledger() as ledger:
        ledger.append(LedgerEntry(f"w{worker}", "echo", "m", i, i, 0.001, 0.01))
"""


def test_many_processes_writing_at_once_lose_no_row(tmp_path: Path) -> None:
    workers, rows = 6, 40
    start_at = time.time() + 1.5  # all start together, after the interpreters are up
    env = {**os.environ}
    processes = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(w), str(rows), str(start_at)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for w in range(workers)
    ]
    outputs = [process.communicate(timeout=120) for process in processes]
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr
        assert "locked" not in stderr
    with Ledger() as ledger:
        summary = {row.key: row.calls for row in ledger.summary(0)}
        total = len(ledger.entries())
    assert total == workers * rows
    assert summary == {f"w{w}": rows for w in range(workers)}


def test_parallel_chat_processes_each_leave_one_row() -> None:
    processes = [
        subprocess.Popen([sys.executable, "-m", "llmswitch", "chat", "-p", "echo", "--no-history", f"call {i}"],
                         env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(4)
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
    with Ledger() as ledger:
        rows = ledger.entries()
    assert [(r.profile, r.outcome, r.cost_usd) for r in rows] == [("echo", "ok", 0.0)] * 4


def test_the_ledger_never_holds_the_prompt_answer_or_key(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("llmswitch_openai")
    secret_prompt, key = "my bank password is hunter2-unique", "sk-ledger-secret-key-000-zz99"
    assert run_cli("chat", "-p", "echo", "--no-history", secret_prompt).exit_code == 0
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    run_cli("chat", "-p", "openai", "--no-history", "-o", "api_key_env", "OPENAI_API_KEY", secret_prompt)
    raw = b"".join(path.read_bytes() for path in data_dir().glob(f"{FILE_NAME}*"))
    assert raw  # something was written
    assert b"hunter2" not in raw and key.encode() not in raw and b"zz99" not in raw
    with Ledger() as ledger:
        outcomes = [r.outcome for r in ledger.entries()]
    assert outcomes == ["ok", "unreachable", "unreachable", "unreachable"]  # one row per attempt: two retries


# ---- llmswitch usage -----------------------------------------------------------------------------------------


def test_usage_json_after_real_calls() -> None:
    for prompt in ("one two", "three four five"):
        assert run_cli("chat", "-p", "echo", "--no-history", prompt).exit_code == 0
    result = run_cli("usage", "--json")
    assert result.exit_code == 0, result
    document = json.loads(result.stdout)
    assert set(document) == {"since", "since_text", "by", "ledger", "rows", "total"}
    [echo] = document["rows"]
    assert echo == {"key": "echo", "calls": 2, "errors": 0, "input_tokens": 5, "output_tokens": 5, "cost_usd": 0.0,
                    "unpriced_calls": 0, "mean_latency_s": echo["mean_latency_s"]}
    assert document["total"]["calls"] == 2


def test_usage_table_by_day_and_since() -> None:
    with Ledger() as ledger:
        ledger.append(entry("old", 3.0, ts=time.time() - 30 * 86400))
        ledger.append(entry("new", 0.5))
    recent = run_cli("usage", "--since", "7d")
    assert "new" in recent.stdout and "old" not in recent.stdout and "$0.5000" in recent.stdout
    everything = run_cli("usage", "--since", "all", "--by", "day")
    assert everything.stdout.count("-") >= 2 and "$3.50" in everything.stdout  # the total row


def test_usage_with_nothing_recorded_and_bad_since() -> None:
    empty = run_cli("usage")
    assert empty.exit_code == 0 and "no calls recorded" in empty.stderr
    assert run_cli("usage", "--since", "yesterday-ish").exit_code == 2


def test_usage_as_a_real_process() -> None:
    with Ledger() as ledger:
        ledger.append(entry("p", 0.01))
    result = llmswitch_subprocess("usage", "--by", "model", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rows"][0]["key"] == "echo/m"


def test_an_unwritable_ledger_never_costs_the_answer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the data directory should be")
    monkeypatch.setenv("LLMSWITCH_DATA_DIR", str(blocker))
    result = llmswitch_subprocess("chat", "-p", "echo", "--no-history", "still answered")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "still answered\n"
    assert "usage not recorded: cannot use the usage ledger" in result.stderr
