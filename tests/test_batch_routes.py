"""``llmswitch batch`` over route profiles, against OpenAI protocol servers on 127.0.0.1: a pool spreads the
batch, a 429 storm slows it down without failing a line, a fallback hands a dead member's lines over, and
``--max-cost`` prices every line on the dearest member it could land on."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from llmswitch import AsyncClient
from llmswitch.ledger import Ledger
from tests.helpers import run_cli
from tests.servers.http import LocalServer, refused_port
from tests.test_batch import jsonl, read_records

FAST = {"backoff_base_s": 0.01, "backoff_max_s": 0.02}


pytestmark = pytest.mark.usefixtures("fresh_strategies")


def member(url: str, **values: Any) -> dict[str, Any]:
    return {"backend": "openai", "base_url": f"{url}/v1", "model": "test-model", "api_key": "sk-test",
            "price_input_per_mtok": 1.0, "price_output_per_mtok": 2.0, **FAST, **values}


def write(config_file: Path, profiles: dict[str, dict[str, Any]]) -> None:
    config_file.write_text(tomli_w.dumps({"profiles": profiles}))


def pool(servers: list[LocalServer], **route: Any) -> dict[str, dict[str, Any]]:
    return {"a": member(servers[0].url), "b": member(servers[1].url), "c": member(servers[2].url),
            "r": {"route": "pool", "members": ["a", "b", "c"], **route}}


def questions(tmp_path: Path, count: int, **values: Any) -> Path:
    return jsonl(tmp_path / "in.jsonl", [{"id": i, "prompt": f"question {i}", **values} for i in range(count)])


def ledger_rows() -> list[Any]:
    with Ledger() as ledger:
        return ledger.entries()


def test_a_pool_spreads_the_batch_and_each_line_names_the_member_that_answered(
        servers: list[LocalServer], config_file: Path, tmp_path: Path) -> None:
    write(config_file, pool(servers))
    output = tmp_path / "out.jsonl"
    outcome = run_cli("batch", str(questions(tmp_path, 30)), "-p", "r", "-o", str(output), "--concurrency", "6")
    assert outcome.exit_code == 0, outcome
    assert all(len(server.state.requests) > 0 for server in servers)
    assert sum(len(server.state.requests) for server in servers) == 30
    records = read_records(output)
    assert len(records) == 30
    for record in records:  # the member named is the one whose server answered
        assert record["profile"] in "abc" and record["text"] == f"answer from {record['profile']}"
        assert [(a["member"], a["outcome"]) for a in record["attempts"]] == [(record["profile"], "ok")]
        assert record["cost"]["usd"] > 0
    answered = Counter(record["profile"] for record in records)
    assert answered == Counter({name: len(server.state.requests) for name, server in zip("abc", servers,
                                                                                            strict=True)})
    rows = ledger_rows()
    assert Counter(row.profile for row in rows) == answered  # charged to the members, not to the route
    assert {row.route for row in rows} == {"r"} and all(row.outcome == "ok" for row in rows)


def test_a_429_storm_slows_the_batch_but_every_line_is_answered(servers: list[LocalServer], config_file: Path,
                                                                  tmp_path: Path) -> None:
    """Every server answers 429 (Retry-After 0.2 s) to one request in three: the router cools the member and
    hands the line over or waits; no line fails, and OUTPUT and the ledger show the attempts it took. (How long
    a storm a line rides out is the route's: ``max_retries`` on its last member, ``timeout_total``; the default
    two retries give up on a line that meets five 429s in a row.)"""
    for server in servers:
        server.state.script = ["ok", "rate_limit", "ok"] * 20 + ["ok"]
        server.state.options["retry_after"] = "0.2"
    write(config_file, pool(servers, cooldown_s=0.2, max_retries=6))
    output = tmp_path / "out.jsonl"
    outcome = run_cli("batch", str(questions(tmp_path, 40)), "-p", "r", "-o", str(output), "--concurrency", "6")
    assert outcome.exit_code == 0, json.dumps([r for r in read_records(output) if r["error"]])
    records = read_records(output)
    assert len(records) == 40 and all(record["error"] is None for record in records)
    storms = [record for record in records if len(record["attempts"]) > 1]
    assert storms  # some lines took more than one attempt
    for record in storms:
        *failed, last = record["attempts"]
        assert all(a["outcome"] == "rate_limited" and a["status"] == 429 for a in failed)
        assert last == {**last, "member": record["profile"], "outcome": "ok"}
    refused = sum(1 for server in servers for request in server.state.requests
                  if request.path.endswith("/chat/completions")) - 40
    assert refused == sum(len(record["attempts"]) - 1 for record in records) > 0
    rows = ledger_rows()
    assert Counter(row.outcome for row in rows) == Counter({"ok": 40, "rate_limited": refused})
    assert all(row.cost_usd is None for row in rows if row.outcome == "rate_limited")
    assert {row.route for row in rows} == {"r"}


def test_a_429_storm_on_a_single_server_waits_as_long_as_the_server_asks(servers: list[LocalServer],
                                                                         config_file: Path, tmp_path: Path) -> None:
    """A plain profile has nobody to hand over to: each line the server refused (429, Retry-After 0.3 s) is asked
    again no sooner than the server said, so the storm slows the batch down; every line is answered."""
    server = servers[0]
    server.state.script = ["rate_limit"] * 4 + ["ok"]
    server.state.options["retry_after"] = "0.3"
    write(config_file, {"p": member(server.url)})
    output = tmp_path / "out.jsonl"
    outcome = run_cli("batch", str(questions(tmp_path, 8)), "-p", "p", "-o", str(output), "--concurrency", "4")
    assert outcome.exit_code == 0, outcome
    records = read_records(output)
    assert len(records) == 8 and all(record["error"] is None for record in records)
    by_prompt: dict[str, list[float]] = {}
    for request in server.state.requests:
        by_prompt.setdefault(request.body["messages"][-1]["content"], []).append(request.at)
    retried = {prompt: times for prompt, times in by_prompt.items() if len(times) > 1}
    assert retried  # the first lines were refused
    gaps = [later - earlier for times in retried.values()
            for earlier, later in zip(times, times[1:], strict=False)]
    assert min(gaps) >= 0.3  # never sooner than Retry-After
    for record in records:
        asked = by_prompt[f"question {record['id']}"]
        assert [a["outcome"] for a in record["attempts"]] == ["rate_limited"] * (len(asked) - 1) + ["ok"]


def test_a_fallback_hands_a_dead_members_lines_to_the_next(servers: list[LocalServer], config_file: Path,
                                                          tmp_path: Path) -> None:
    write(config_file, {"dead": member(f"http://127.0.0.1:{refused_port()}"), "live": member(servers[0].url),
                        "r": {"route": "fallback", "members": ["dead", "live"]}})
    output = tmp_path / "out.jsonl"
    outcome = run_cli("batch", str(questions(tmp_path, 12)), "-p", "r", "-o", str(output), "--concurrency", "3")
    assert outcome.exit_code == 0, outcome
    records = read_records(output)
    assert len(records) == 12 and all(r["profile"] == "live" and r["text"] == "answer from a" for r in records)
    handed = [r for r in records if len(r["attempts"]) == 2]
    assert handed  # the first lines tried the dead member (then it cools down and is passed over)
    assert all([a["member"] for a in r["attempts"]] == ["dead", "live"] for r in handed)
    assert all(r["attempts"][0]["outcome"] == "unreachable" for r in handed)
    assert len(servers[0].state.requests) == 12  # one request a line on the live member: none asked twice
    rows = ledger_rows()
    assert Counter((row.profile, row.outcome) for row in rows) == Counter(
        {("live", "ok"): 12, ("dead", "unreachable"): len(handed)})


def test_the_library_batch_over_a_route(servers: list[LocalServer], config_file: Path) -> None:
    write(config_file, pool(servers))

    async def main() -> list[Any]:
        async with AsyncClient() as client:
            return [result async for result in client.batch("r", [f"p{i}" for i in range(9)], concurrency=3)]

    results = asyncio.run(main())
    assert sorted(result.id for result in results) == list(range(1, 10))
    assert {result.profile for result in results} == {"a", "b", "c"}  # round-robin over the three
    assert all(result.attempts[-1].member == result.profile for result in results)


# ---- cost first on a route --------------------------------------------------------------------------------------


def priced_pool(servers: list[LocalServer]) -> dict[str, dict[str, Any]]:
    """A pool of a cheap member and one ten times dearer."""
    return {"cheap": member(servers[0].url), "dear": member(servers[1].url, price_input_per_mtok=10.0,
                                                             price_output_per_mtok=20.0),
            "r": {"route": "pool", "members": ["cheap", "dear"]}}


def test_the_estimate_prices_each_line_on_the_dearest_member(servers: list[LocalServer], config_file: Path,
                                                             tmp_path: Path) -> None:
    write(config_file, priced_pool(servers))
    source = questions(tmp_path, 10, max_tokens=100)
    # 10 lines of 100 output tokens at most: $0.02 on the dear member alone, $0.002 on the cheap one
    refused = run_cli("batch", str(source), "-p", "r", "-o", str(tmp_path / "o.jsonl"), "--max-cost", "0.015")
    assert refused.exit_code == 1, refused
    assert "more than --max-cost $0.0150" in refused.stderr
    assert "dearest of route 'r''s 2 members" in refused.stderr
    assert all(server.state.requests == [] for server in servers)
    started = run_cli("batch", str(source), "-p", "r", "-o", str(tmp_path / "o.jsonl"), "--max-cost", "0.03")
    assert started.exit_code == 0, started
    assert "dearest of route 'r''s 2 members" in started.stderr
    estimate = next(line for line in started.stderr.splitlines() if line.startswith("estimate:"))
    assert "up to 1,000 output tokens" in estimate and "at most $0.02" in estimate


def test_a_member_without_a_price_refuses_max_cost_by_name(servers: list[LocalServer], config_file: Path,
                                                           tmp_path: Path) -> None:
    profiles = priced_pool(servers)
    profiles["dear"] = {key: value for key, value in profiles["dear"].items() if not key.startswith("price_")}
    write(config_file, profiles)
    outcome = run_cli("batch", str(questions(tmp_path, 3)), "-p", "r", "-o", str(tmp_path / "o.jsonl"),
                      "--max-cost", "1")
    assert outcome.exit_code == 1, outcome
    assert "the price of test-model (dear:" in outcome.stderr and "[profiles.dear]" in outcome.stderr
    assert "cheap" not in outcome.stderr.split("hint:")[-1]  # the remedy names only the member without one


def test_actual_spend_on_a_route_stops_the_batch_at_max_cost(servers: list[LocalServer], config_file: Path,
                                                            tmp_path: Path) -> None:
    """Both members answer far beyond max_tokens (500 output tokens): the estimate lets the batch start, what
    the members actually charge stops it within the limit, and --resume finishes it."""
    for server in servers[:2]:
        server.state.options.update(answer=None, tokens=500)
    write(config_file, priced_pool(servers))
    source = questions(tmp_path, 40, max_tokens=1)
    output = tmp_path / "out.jsonl"
    outcome = run_cli("batch", str(source), "-p", "r", "-o", str(output), "--max-cost", "0.1", "--concurrency", "2")
    assert outcome.exit_code == 1 and "stopped by --max-cost $0.1000" in outcome.stderr, outcome
    records = read_records(output)
    spent = sum(r["cost"]["usd"] for r in records)
    dearest = max(r["cost"]["usd"] for r in records)
    assert {r["profile"] for r in records} == {"cheap", "dear"}
    assert 0.1 - 2 * dearest <= spent <= 0.1 + 2 * dearest  # only the first calls in flight could pass it
    assert 8 <= len(records) < 40
    assert sum(len(server.state.requests) for server in servers) == len(records)
    assert sum(row.cost_usd or 0 for row in ledger_rows()) == pytest.approx(spent)
    finished = run_cli("batch", str(source), "-p", "r", "-o", str(output), "--resume")
    assert finished.exit_code == 0, finished
    assert sorted(r["id"] for r in read_records(output)) == list(range(40))


def test_via_provider_on_a_route_is_refused_with_a_remedy(servers: list[LocalServer], config_file: Path,
                                                          tmp_path: Path) -> None:
    write(config_file, pool(servers))
    outcome = run_cli("batch", str(questions(tmp_path, 2)), "-p", "r", "-o", str(tmp_path / "o.jsonl"),
                      "--via", "provider")
    assert outcome.exit_code == 2 and "is a route" in outcome.stderr and "name one member" in outcome.stderr
