"""Budgets shared through a real Redis: processes that keep separate usage ledgers (as on separate machines) spend
under one budget, and the call that would pass it is refused before anything is sent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w

from llmswitch.testing.redis_server import RedisServer
from tests.servers.http import LocalServer
from tests.servers.openai_server import openai_server

pytest.importorskip("redis")
pytest.importorskip("llmswitch_openai")

# $1000 per million tokens: a call of "hello" (4 input + 5 output tokens, as the server reports) costs $0.009,
# and its worst case (its input estimated plus max_tokens = 5) about $0.01. Two calls fit under $0.025; a third
# would pass it.
PRICED = {"price_input_per_mtok": 1000.0, "price_output_per_mtok": 1000.0, "max_tokens": 5}


def member(server: LocalServer, **values: object) -> dict[str, object]:
    return {"backend": "openai", "base_url": f"{server.url}/v1", "model": "test-model", "api_key": "sk-test",
            **PRICED, **values}


def chat_on_another_machine(home: Path, machine: str, profile: str) -> subprocess.CompletedProcess[str]:
    """``llmswitch chat`` in a process of its own with a usage ledger of its own (its own data directory)."""
    data = home / "machines" / machine
    data.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "LLMSWITCH_DATA_DIR": str(data)}
    return subprocess.run([sys.executable, "-m", "llmswitch", "chat", "-p", profile, "--no-history", "hello"],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, env=env)


def write(config_file: Path, redis_server: RedisServer, profiles: dict[str, object]) -> None:
    config_file.write_text(tomli_w.dumps({"router": {"state": redis_server.url}, "profiles": profiles}),
                           encoding="utf-8")


def test_two_machines_spend_one_profile_budget_and_a_third_call_is_refused(
    config_file: Path, hermetic: Path, redis_server: RedisServer,
) -> None:
    with openai_server() as server:
        write(config_file, redis_server, {"paid": member(server, budget_usd_per_day=0.025)})
        for machine in ("one", "two"):
            answered = chat_on_another_machine(hermetic, machine, "paid")
            assert answered.returncode == 0, answered.stderr
        refused = chat_on_another_machine(hermetic, "three", "paid")
        assert refused.returncode != 0
        assert "profile 'paid' has spent $0.0180 of its $0.0250 daily budget" in refused.stderr, refused.stderr
        assert "it was not sent" in refused.stderr and "Traceback" not in refused.stderr
        assert refused.stdout == ""
        assert len(server.state.requests) == 2  # the third never reached the server
        doctor = subprocess.run([sys.executable, "-m", "llmswitch", "doctor", "--json", "--offline", "paid"],
                                capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                                env={**os.environ, "LLMSWITCH_DATA_DIR": str(hermetic / "machines" / "three")})
        (report,) = json.loads(doctor.stdout)["profiles"]
        assert [(b["period"], round(b["spent_usd"], 6)) for b in report["budgets"]] == [("day", 0.018)]  # shared
    # Each machine's own ledger holds only its own call: the shared total is what refused the third.
    import redis

    totals = redis.Redis.from_url(redis_server.url).hgetall("llmswitch:spend:paid")
    assert {key.decode().split(":")[0]: round(float(value), 6) for key, value in totals.items()} == {
        "day": 0.018, "month": 0.018}


def test_a_routes_budget_adds_up_its_members_spend_from_every_machine(
    config_file: Path, hermetic: Path, redis_server: RedisServer,
) -> None:
    with openai_server() as a, openai_server() as b:
        write(config_file, redis_server, {
            "a": member(a), "b": member(b),
            "team": {"route": "fallback", "members": ["a", "b"], "max_tokens": 5, "budget_usd_per_day": 0.025},
        })
        assert chat_on_another_machine(hermetic, "one", "a").returncode == 0  # each member called directly,
        assert chat_on_another_machine(hermetic, "two", "b").returncode == 0  # each on a machine of its own
        refused = chat_on_another_machine(hermetic, "three", "team")
        assert refused.returncode != 0
        assert "route 'team' has spent $0.0180 of its $0.0250 daily budget across its members" in refused.stderr, \
            refused.stderr
        assert len(a.state.requests) == len(b.state.requests) == 1


def test_without_redis_each_machine_keeps_its_own_budget(config_file: Path, hermetic: Path) -> None:
    """The control: the same calls with the state in each process are not refused (each ledger holds one)."""
    with openai_server() as server:
        config_file.write_text(tomli_w.dumps({"profiles": {"paid": member(server, budget_usd_per_day=0.025)}}),
                               encoding="utf-8")
        for machine in ("one", "two", "three"):
            answered = chat_on_another_machine(hermetic, machine, "paid")
            assert answered.returncode == 0, answered.stderr
        assert len(server.state.requests) == 3
