"""Cost estimates (``llmswitch cost``), the price list (``llmswitch prices``) and the cost of each chat call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmswitch.accounting import compare_costs
from llmswitch.client import Client
from tests.helpers import llmswitch_subprocess, run_cli, write_config

# The seeds' comparison: GPT-3.5 at $0.0005/$0.0015 per 1K tokens, GPT-4 at $0.01/$0.03 per 1K (2024).
SEED_PROFILES = """
[profiles.gpt35]
backend = "echo"
model = "gpt-3.5-turbo"
price_input_per_mtok = 0.5
price_output_per_mtok = 1.5

[profiles.gpt4]
backend = "echo"
model = "gpt-4"
price_input_per_mtok = 10.0
price_output_per_mtok = 30.0

[profiles.mystery]
backend = "keyless-nowhere"
"""


@pytest.fixture
def seeds(config_file: Path) -> Path:
    return write_config(config_file, SEED_PROFILES)


def test_hundred_requests_of_500_plus_500_tokens_cheapest_first(seeds: Path) -> None:
    rows = compare_costs(Client(), ["gpt4", "mystery", "gpt35", "echo"], requests=100)
    assert [r.profile for r in rows] == ["echo", "gpt35", "gpt4", "mystery"]
    by_name = {r.profile: r for r in rows}
    assert by_name["gpt35"].usd_per_request == pytest.approx(0.001)
    assert by_name["gpt35"].usd_total == pytest.approx(0.1)
    assert by_name["gpt4"].usd_per_request == pytest.approx(0.02)
    assert by_name["gpt4"].usd_total == pytest.approx(2.0)
    assert by_name["echo"].usd_total == 0.0
    assert by_name["mystery"].usd_total is None and by_name["mystery"].error is not None
    estimate = by_name["gpt4"].estimate
    assert estimate is not None
    assert (estimate.input.n, estimate.input.exact, estimate.output_tokens) == (500, True, 500)


def test_a_route_is_priced_per_member(config_file: Path) -> None:
    write_config(config_file, SEED_PROFILES + '\n[profiles.ab]\nroute = "split"\nweights = { gpt4 = 1, gpt35 = 3 }\n')
    rows = compare_costs(Client(), ["ab", "gpt35"], requests=100, prompt="one two three")
    assert [(r.profile, r.model) for r in rows] == [("ab → gpt35", "gpt-3.5-turbo"), ("gpt35", "gpt-3.5-turbo"),
                                                     ("ab → gpt4", "gpt-4")]
    by_name = {r.profile: r for r in rows}
    assert by_name["ab → gpt35"].usd_total == by_name["gpt35"].usd_total
    assert by_name["ab → gpt4"].estimate is not None and by_name["ab → gpt4"].estimate.input.n == 3


def test_an_unpriced_member_of_a_route_is_priced_in_its_own_table(config_file: Path) -> None:
    write_config(config_file, '[profiles.down]\nbackend = "openai"\nmodel = "no-such-model"\napi_key = "sk-test"\n'
                              'base_url = "http://127.0.0.1:9/v1"\n'
                              '[profiles.fb2]\nroute = "fallback"\nmembers = ["down"]\n')
    result = run_cli("cost", "-p", "fb2")
    assert result.exit_code == 0, result
    said = " ".join(result.stdout.split())  # the note may wrap
    assert "fb2 → down: price unknown" in said
    assert "set price_input_per_mtok and price_output_per_mtok in [profiles.down]" in said  # a table one can write
    assert "[profiles.fb2" not in said


def test_a_broken_route_named_with_profile_fails_the_command_and_a_listing_does_not(config_file: Path) -> None:
    write_config(config_file, '[profiles.tiny]\nbackend = "echo"\n'
                              '[profiles.broken]\nroute = "fallback"\nmembers = ["nosuch", "tiny"]\n')
    named = run_cli("cost", "-p", "broken", "-p", "tiny")
    assert named.exit_code == 1, named
    said = " ".join(named.stdout.split())
    assert "names 'nosuch', which is not a profile" in said and "unavailable" in said
    assert run_cli("cost", "-p", "tiny").exit_code == 0
    assert run_cli("cost").exit_code == 0  # every profile: the table shows what it can
    as_json = run_cli("cost", "-p", "broken", "--json")
    assert as_json.exit_code == 1 and json.loads(as_json.stdout)["profiles"][0]["error"] is not None


def test_a_prompt_is_counted_by_each_backend(seeds: Path) -> None:
    rows = compare_costs(Client(), ["gpt4"], prompt="one two three four", output_tokens=100)
    estimate = rows[0].estimate
    assert estimate is not None
    assert (estimate.input.n, estimate.input.exact, estimate.input.method) == (4, False, "whitespace words")
    assert rows[0].usd_per_request == pytest.approx((4 * 10 + 100 * 30) / 1e6)


def test_output_tokens_are_the_standard_500_whatever_max_tokens_says(config_file: Path) -> None:
    write_config(config_file, '[profiles.capped]\nbackend = "echo"\nmax_tokens = 64\nprice_input_per_mtok = 1\n'
                              'price_output_per_mtok = 1\n')
    [row] = compare_costs(Client(), ["capped"], requests=100)
    assert row.estimate is not None
    assert (row.estimate.output_tokens, row.estimate.output_basis) == (500, "standard request")
    assert row.usd_total == pytest.approx(100 * (500 + 500) / 1e6)
    [flagged] = compare_costs(Client(), ["capped"], output_tokens=10)
    assert flagged.estimate is not None and flagged.estimate.output_tokens == 10


def test_cost_per_request_is_what_doctor_prices(seeds: Path) -> None:
    from llmswitch.doctor import run_doctor

    write_config(seeds, SEED_PROFILES + '[profiles.capped]\nbackend = "echo"\nmax_tokens = 64\n'
                                        'price_input_per_mtok = 3\nprice_output_per_mtok = 7\n')
    names = ["gpt35", "gpt4", "capped", "echo"]
    costs = {row.profile: row.usd_per_request for row in compare_costs(Client(), names, requests=100)}
    doctor = {d.profile: d.standard_request_usd for d in run_doctor(Client(), names, offline=True).diagnoses}
    assert costs == pytest.approx(doctor)
    table = run_cli("cost", "-p", "capped", "--requests", "100")
    assert "output: 500 tokens per request (the standard request doctor prices" in table.stdout
    capped = next(line for line in table.stdout.splitlines() if line.strip().startswith("capped"))
    assert "$0.00500" in capped and "$0.5000" in capped  # (500 × $3 + 500 × $7) per million; × 100


def test_unknown_price_sorts_after_known_and_is_never_zero(config_file: Path) -> None:
    pytest.importorskip("llmswitch_openai")
    write_config(config_file, '[profiles.custom]\nbackend = "openai"\nmodel = "house-model-7b"\n'
                              'base_url = "http://127.0.0.1:9/v1"\n')
    rows = compare_costs(Client(), ["custom", "echo"])
    assert [r.profile for r in rows] == ["echo", "custom"]
    assert rows[1].usd_per_request is None and rows[1].error is None


# ---- the CLI --------------------------------------------------------------------------------------------------


def test_cost_table_shows_per_request_and_total(seeds: Path) -> None:
    result = run_cli("cost", "-p", "gpt35", "-p", "gpt4", "--requests", "100")
    assert result.exit_code == 0, result
    lines = result.stdout.splitlines()
    gpt35 = next(line for line in lines if line.strip().startswith("gpt35"))
    gpt4 = next(line for line in lines if line.strip().startswith("gpt4"))
    assert lines.index(gpt35) < lines.index(gpt4)
    assert "$0.50" in gpt35 and "$1.50" in gpt35 and "$0.00100" in gpt35 and "$0.1000" in gpt35
    assert "$0.0200" in gpt4 and "$2.00" in gpt4


def test_cost_json(seeds: Path) -> None:
    result = run_cli("cost", "--all", "--json", "--input-tokens", "1000", "--output-tokens", "0")
    assert result.exit_code == 0, result
    document = json.loads(result.stdout)
    assert document["requests"] == 1
    rows = {row["profile"]: row for row in document["profiles"]}
    assert set(rows["gpt4"]) == {"profile", "backend", "model", "input_tokens", "input_exact", "input_method",
                                 "output_tokens", "output_basis", "price", "usd_per_request", "usd_total", "error"}
    assert rows["gpt4"]["usd_per_request"] == pytest.approx(0.01)
    assert rows["gpt4"]["input_method"] == "--input-tokens"
    assert rows["mystery"]["usd_per_request"] is None
    assert rows["mystery"]["error"]["kind"] == "unknown_backend"


def test_cost_reads_the_prompt_from_stdin(seeds: Path) -> None:
    result = run_cli("cost", "-p", "gpt4", "--json", "-", input="a b c d e f\n")
    row = json.loads(result.stdout)["profiles"][0]
    assert (row["input_tokens"], row["input_exact"]) == (6, False)


def test_cost_table_marks_estimated_counts(seeds: Path) -> None:
    result = run_cli("cost", "-p", "gpt4", "what does this cost")
    assert "~4" in result.stdout and "input tokens estimated (whitespace words)" in result.stdout


def test_cost_refuses_profile_and_all_together(seeds: Path) -> None:
    assert run_cli("cost", "--all", "-p", "gpt4").exit_code == 2
    assert run_cli("cost", "--input-tokens", "5", "a prompt").exit_code == 2


def test_cost_as_a_real_process(seeds: Path) -> None:
    result = llmswitch_subprocess("cost", "-p", "gpt35", "--requests", "100", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["profiles"][0]["usd_total"] == pytest.approx(0.1)


def test_prices_lists_the_echo_table() -> None:
    result = run_cli("prices", "--backend", "echo", "--json")
    assert result.exit_code == 0, result
    [echo] = json.loads(result.stdout)["backends"]
    assert echo["backend"] == "echo" and echo["error"] is None and echo["models"] == {}
    assert (echo["default"]["input_per_mtok"], echo["default"]["output_per_mtok"]) == (0.0, 0.0)
    table = run_cli("prices", "--backend", "echo")
    assert "(any other model)" in table.stdout and "$0" in table.stdout


def test_prices_of_an_unknown_backend_is_a_usage_error() -> None:
    result = run_cli("prices", "--backend", "nosuch")
    assert result.exit_code == 2 and "no installed plugin provides the backend 'nosuch'" in result.stderr


def test_prices_lists_every_backend() -> None:
    result = run_cli("prices", "--json")
    backends = [b["backend"] for b in json.loads(result.stdout)["backends"]]
    assert "echo" in backends and backends == sorted(backends)


# ---- the cost of each call ---------------------------------------------------------------------------------------


def test_chat_usage_line_and_json_carry_the_cost(seeds: Path) -> None:
    usage = run_cli("chat", "-p", "gpt4", "--usage", "one two three")
    assert usage.exit_code == 0, usage
    assert "cost $0.000120" in usage.stderr  # 3 in * $10 + 3 out * $30 per million
    payload = json.loads(run_cli("chat", "-p", "gpt4", "--json", "one two three").stdout)
    assert payload["cost"] == {"usd": pytest.approx(0.00012), "input_tokens": 3, "output_tokens": 3,
                               "tokens_estimated": False, "price_source": "profile", "price_date": None,
                               "price_age_days": None}


def test_chat_cost_is_unknown_when_the_price_is(config_file: Path) -> None:
    from llmswitch import hookimpl
    from llmswitch.plugins import register_plugin, unregister_plugin
    from llmswitch.types import BackendInfo, Request, Response, Target, Usage

    class Unpriced:
        @hookimpl
        def llmswitch_backends(self) -> list[BackendInfo]:
            return [BackendInfo(name="unpriced", summary="no price table", default_model="u")]

        @hookimpl
        def complete(self, target: Target, request: Request) -> Response:
            return Response("fine", "stop", Usage(5, 1))

    register_plugin(Unpriced(), "unpriced")
    try:
        write_config(config_file, '[profiles.u]\nbackend = "unpriced"\n')
        result = run_cli("chat", "-p", "u", "--usage", "hi")
        assert "cost unknown (backend unpriced ships no price table)" in result.stderr
        payload = json.loads(run_cli("chat", "-p", "u", "--json", "hi").stdout)
        assert payload["cost"]["usd"] is None
    finally:
        unregister_plugin("unpriced")
