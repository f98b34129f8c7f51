"""The usage ledger: rows, summaries, time windows, many writers at once, and ``llmswitch usage``."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
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
    LedgerError,
    UsageRow,
    append_kept,
    describe_since,
    flush_rows,
    parse_duration,
    parse_since,
    start_of_day,
    start_of_month,
    through_routes,
)
from tests.helpers import llmswitch_subprocess, run_cli


def entry(profile: str = "p", cost: float | None = 0.01, *, ts: float | None = None, outcome: str = "ok",
          model: str = "m") -> LedgerEntry:
    return LedgerEntry(profile, "echo", model, 100, 50, cost, 0.5, outcome, ts=ts if ts is not None else time.time())


def test_a_threads_kept_ledger_follows_the_file_and_the_data_dir(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    append_kept([entry("a")])
    append_kept([entry("b"), entry("c")])
    path = data_dir() / FILE_NAME
    with Ledger() as ledger:
        assert [row.profile for row in ledger.entries()] == ["a", "b", "c"]  # kept open, each row committed
    path.unlink()  # removed under the kept connection (another process, a user): the next row starts a new file
    for suffix in ("-wal", "-shm"):
        path.with_name(FILE_NAME + suffix).unlink(missing_ok=True)
    append_kept([entry("d")])
    with Ledger() as ledger:
        assert [row.profile for row in ledger.entries()] == ["d"]
    moved = tmp_path / "elsewhere"
    monkeypatch.setenv("LLMSWITCH_DATA_DIR", str(moved))
    append_kept([entry("e")])
    with Ledger() as ledger:
        assert [row.profile for row in ledger.entries()] == ["e"]
    worker = threading.Thread(target=append_kept, args=([entry("f")],))  # a thread has a connection of its own
    worker.start()
    worker.join()
    with Ledger() as ledger:
        assert [row.profile for row in ledger.entries()] == ["e", "f"]


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
                       "tokens_estimated", "cost_usd", "latency_s", "outcome", "route", "gateway_key", "route_path"]
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


# ---- each field and rule, one at a time ------------------------------------------------------------------------


def test_an_entry_defaults_to_a_measured_ok_call_made_now_without_a_route() -> None:
    before = time.time()
    made = LedgerEntry("p", "echo", None, None, None, None, None)
    assert (made.outcome, made.tokens_estimated, made.route) == ("ok", False, None)
    assert before <= made.ts <= time.time()


def test_every_field_of_an_entry_is_read_back_as_written() -> None:
    written = LedgerEntry("p", "openai", "gpt-x", 123, 45, 0.0625, 1.5, "interrupted", tokens_estimated=True,
                          ts=1_700_000_000.25, route="fast")
    bare = LedgerEntry("q", "echo", None, None, None, None, None, ts=1_700_000_001.0)
    with Ledger() as ledger:
        ledger.append(written)
        ledger.append(bare)
    with Ledger() as reopened:  # a new object on the existing file reads what the first one wrote
        assert reopened.entries() == [written, bare]


def test_entries_are_oldest_first_and_the_window_includes_its_first_second() -> None:
    with Ledger() as ledger:
        ledger.append(entry("late", ts=2000.0))
        ledger.append(entry("early", ts=1000.0))
        ledger.append(entry("tie", ts=2000.0))  # the same second: in the order they were written
        assert [r.profile for r in ledger.entries()] == ["early", "late", "tie"]
        assert [r.profile for r in ledger.entries(since=2000.0)] == ["late", "tie"]
        assert [r.profile for r in ledger.entries(since=2000.5)] == []
        assert ledger.spend("early", 1000.0) == pytest.approx(0.01)
        assert ledger.spend("early", 1000.001) == 0.0


def test_a_summary_counts_errors_unpriced_calls_and_mean_latency_exactly() -> None:
    def call(outcome: str, cost: float | None, latency: float | None, tokens: int | None = 10) -> LedgerEntry:
        return LedgerEntry("p", "echo", "m", tokens, tokens, cost, latency, outcome, ts=1000.0)

    with Ledger() as ledger:
        ledger.append(call("ok", 0.5, 1.0))
        ledger.append(call("cached", 0.0, None))  # a replayed answer is not an error
        ledger.append(call("interrupted", None, 3.0))  # an error without a price is not "unpriced"
        ledger.append(call("ok", None, None, tokens=None))  # unpriced; unknown tokens count as 0
        ledger.append(call("timeout", 0.25, 2.0))
        [row] = ledger.summary(0)
        ledger.append(LedgerEntry("silent", "echo", "m", 1, 1, None, None, ts=1000.0))
        silent = [r for r in ledger.summary(0) if r.key == "silent"][0]
    assert (row.key, row.calls, row.errors, row.input_tokens, row.output_tokens, row.unpriced_calls) == \
        ("p", 5, 2, 40, 40, 1)
    assert row.cost_usd == pytest.approx(0.75) and row.mean_latency_s == pytest.approx(2.0)
    assert silent.mean_latency_s is None and silent.cost_usd == 0.0


def test_summaries_order_by_spend_then_name_and_days_by_date() -> None:
    with Ledger() as ledger:
        for profile, cost in (("b", 1.0), ("a", 1.0), ("c", 2.0), ("d", None)):
            ledger.append(entry(profile, cost, ts=1000.0))
        assert [r.key for r in ledger.summary(0)] == ["c", "a", "b", "d"]
        assert [r.key for r in ledger.summary(1000.0)] == ["c", "a", "b", "d"]
        assert ledger.summary(1000.5) == []


def test_a_summary_by_route_and_by_model_names_what_was_unknown() -> None:
    with Ledger() as ledger:
        ledger.append(LedgerEntry("direct", "echo", None, 1, 1, 0.5, None, ts=1000.0))
        ledger.append(LedgerEntry("member", "openai", "gpt-x", 1, 1, 0.25, None, ts=1000.0, route="fast"))
        ledger.append(LedgerEntry("other", "openai", "gpt-x", 1, 1, 0.125, None, ts=1000.0, route="fast"))
        by_route = {r.key: r.calls for r in ledger.summary(0, "route")}
        by_model = {r.key: r.calls for r in ledger.summary(0, "model")}
        with pytest.raises(ConfigError) as refused:
            ledger.summary(0, "week")  # type: ignore[arg-type]
    assert by_route == {"direct": 1, "fast": 2}
    assert by_model == {"echo/?": 1, "openai/gpt-x": 2}
    assert str(refused.value) == "cannot group usage by 'week'"
    assert refused.value.remedy == "use profile, model, day, route or key"


def test_a_ledger_with_no_calls_yet_totals_zero_without_creating_its_file() -> None:
    with Ledger() as ledger:
        assert ledger.total(0) == UsageRow("total", 0, 0, 0, 0, 0.0, 0, None)
    assert not (data_dir() / FILE_NAME).exists()


def test_the_route_columns_name_the_outermost_route_and_the_whole_way_only_when_routes_nest() -> None:
    assert through_routes(()) == {"route": None, "route_path": ()}
    assert through_routes(("fleet",)) == {"route": "fleet", "route_path": ()}
    assert through_routes(["outer", "fleet"]) == {"route": "outer", "route_path": ("outer", "fleet")}


def test_a_call_through_nested_routes_counts_under_each_and_once_in_the_total() -> None:
    with Ledger() as ledger:
        ledger.append(LedgerEntry("m", "echo", None, 1, 1, 0.5, 1.0, ts=1000.0, route="outer",
                                  route_path=("outer", "pool")))
        ledger.append(LedgerEntry("m", "echo", None, 1, 1, 0.25, 3.0, "unreachable", ts=1000.0, route="pool"))
        ledger.append(LedgerEntry("direct", "echo", None, 1, 1, None, None, ts=1000.0))
        by_route = {r.key: (r.calls, r.errors, r.cost_usd) for r in ledger.summary(0, "route")}
        total = ledger.total(0)
        assert ledger.entries()[0].route_path == ("outer", "pool") and ledger.entries()[1].route_path == ()
        assert ledger.total(2000.0) == UsageRow("total", 0, 0, 0, 0, 0.0, 0, None)
    assert by_route == {"pool": (2, 1, 0.75), "outer": (1, 0, 0.5), "direct": (1, 0, 0.0)}
    assert total == UsageRow("total", 3, 1, 3, 3, 0.75, 1, 2.0)


def test_a_usage_row_as_a_dictionary_rounds_cost_and_latency() -> None:
    row = UsageRow("k", 3, 1, 10, 20, 0.123456789012345, 1, 0.123456)
    assert row.as_dict() == {"key": "k", "calls": 3, "errors": 1, "input_tokens": 10, "output_tokens": 20,
                             "cost_usd": 0.123456789, "unpriced_calls": 1, "mean_latency_s": 0.1235}
    assert UsageRow("k", 0, 0, 0, 0, 0.0, 0, None).as_dict()["mean_latency_s"] is None


def test_a_corrupt_ledger_is_named_with_how_to_recover_it() -> None:
    path = data_dir() / FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not a database, it only sits where one should be" * 100)
    with Ledger() as ledger, pytest.raises(LedgerError) as caught:
        ledger.spend("p", 0)
    assert str(caught.value).startswith(f"the usage ledger at {path} is corrupt")
    assert "to start a new ledger (the spend it recorded then no longer counts toward budgets)" in \
        (caught.value.remedy or "")
    assert caught.value.kind == "ledger"


def test_the_ledger_waits_ten_seconds_for_another_process_lock() -> None:
    with Ledger() as ledger:
        assert ledger.connection.execute("PRAGMA busy_timeout").fetchone()[0] == 10_000


def test_durations_and_since_accept_spacing_case_and_decimals() -> None:
    assert parse_duration(" 1.5 H ") == 5400.0
    assert parse_duration("90s") == 90.0 and parse_duration("2w") == 14 * 86400.0
    assert parse_duration("3") is None and parse_duration("3y") is None and parse_duration("") is None
    assert parse_duration("1.5.5h") is None and parse_duration("-1h") is None
    now = datetime(2025, 6, 15, 13, 30).timestamp()
    assert parse_since(" ALL ", now) == 0.0
    assert parse_since("Today", now) == datetime(2025, 6, 15).timestamp()
    assert parse_since("MONTH", now) == datetime(2025, 6, 1).timestamp()
    assert parse_since("1D", now) == now - 86400
    with pytest.raises(ConfigError) as caught:
        parse_since("last tuesday", now)
    assert str(caught.value) == "--since 'last tuesday': not a duration or a date"
    assert caught.value.remedy == ("use a duration such as 7d, 24h, 30m, 2w, or today, month, all, or a date such "
                                   "as 2025-06-01")


def test_windows_read_the_clock_when_no_time_is_given() -> None:
    before = time.time()
    since = parse_since("1h")
    assert before - 3600 <= since <= time.time() - 3600
    today = datetime.now().replace(hour=0, minute=0, second=0, microsecond=0)
    if today.date() == datetime.fromtimestamp(time.time()).date():  # not across midnight
        assert start_of_day() == today.timestamp()
        assert start_of_month() == today.replace(day=1).timestamp()
        assert parse_since("today") == today.timestamp()


def test_a_window_start_is_shown_as_a_local_time_or_all_time() -> None:
    assert describe_since(0) == "all time" and describe_since(-5) == "all time"
    assert describe_since(datetime(2025, 6, 1, 9, 5).timestamp()) == "2025-06-01 09:05"
    assert describe_since(1.0) == datetime.fromtimestamp(1.0).strftime("%Y-%m-%d %H:%M")


def test_days_are_listed_by_date_even_when_a_later_day_cost_more() -> None:
    early, late = datetime(2025, 6, 1, 12).timestamp(), datetime(2025, 6, 3, 12).timestamp()
    with Ledger() as ledger:
        ledger.append(entry("p", 0.5, ts=early))
        ledger.append(entry("p", 2.0, ts=late))
        assert [r.key for r in ledger.summary(0, "day")] == ["2025-06-01", "2025-06-03"]
        assert [r.key for r in ledger.summary(0, "profile")] == ["p"]


def test_by_default_everything_since_the_epoch_counts() -> None:
    with Ledger() as ledger:
        ledger.append(entry("first", 0.5, ts=0.5))  # half a second after the epoch: still "since the start"
        assert [r.profile for r in ledger.entries()] == ["first"]
        assert [(r.key, r.calls) for r in ledger.summary()] == [("first", 1)]


# ---- the kept ledger, found by mutation testing: what no test pinned ------------------------------------------
# Library calls' rows go through the process's writer thread (RowWriter): these pin that it keeps one
# connection, follows a replaced file and lives on past a corrupt one.


def in_a_new_thread(work: Callable[[], object]) -> object:
    """``work()`` in a thread of its own; its result, or the exception it raised."""
    import threading

    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as error:  # noqa: BLE001 - handed back to the test
            outcome.append(error)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    return outcome[0]


def test_the_writer_opens_the_ledger_once_for_many_calls_from_many_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    import llmswitch.ledger as ledger_module

    opened: list[Path] = []

    class CountedLedger(Ledger):
        def __init__(self, path: Path | None = None) -> None:
            super().__init__(path)
            opened.append(self.path)

    monkeypatch.setattr(ledger_module, "Ledger", CountedLedger)
    assert not (data_dir() / FILE_NAME).exists()  # the first call creates the file: it is still the one kept

    def three_calls() -> None:
        for name in ("a", "b", "c"):
            append_kept([entry(name)])
            assert flush_rows(10)  # each row committed on its own: the connection must still be reused

    in_a_new_thread(three_calls)
    append_kept([entry("d")])  # another thread: the same writer, the same connection
    assert flush_rows(10)
    assert opened == [data_dir() / FILE_NAME]  # once, for four calls
    with Ledger() as ledger:
        assert [row.profile for row in ledger.entries()] == ["a", "b", "c", "d"]


def test_a_kept_ledger_whose_file_was_replaced_writes_to_the_new_file() -> None:
    path = data_dir() / FILE_NAME
    replacement = path.with_name("replacement.sqlite")

    append_kept([entry("old")])
    assert flush_rows(10)  # written to the old file, whose connection the writer keeps
    with Ledger(replacement) as other:  # made while the old file exists, so it is surely another file
        other.append(entry("new file's own"))
    for suffix in ("", "-wal", "-shm"):
        path.with_name(FILE_NAME + suffix).unlink(missing_ok=True)
    os.replace(replacement, path)  # as another process (or `usage --reset`) would
    append_kept([entry("after")])
    with Ledger() as ledger:
        assert [row.profile for row in ledger.entries()] == ["new file's own", "after"]


def test_a_corrupt_ledger_loses_its_row_with_a_warning_then_the_writer_starts_afresh(
        caplog: pytest.LogCaptureFixture) -> None:
    import logging

    path = data_dir() / FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not a database, it only sits where one should be" * 100)

    with caplog.at_level(logging.WARNING, logger="llmswitch.ledger"):
        append_kept([entry("lost")])  # never raises: bookkeeping must not cost the caller the answer
        assert flush_rows(10)
    [warning] = [record.getMessage() for record in caplog.records]
    assert warning.startswith("usage not recorded: ") and "is corrupt" in warning
    path.unlink()  # the user starts a new ledger, as the remedy says
    append_kept([entry("kept")])
    with Ledger() as ledger:
        assert [row.profile for row in ledger.entries()] == ["kept"]
