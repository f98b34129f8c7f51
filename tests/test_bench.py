"""`llmswitch bench`: profiles timed against each other, interleaved, with failures as rows."""

# ruff: noqa: F811  (the demo_model fixture imported from test_llamacpp_support is a parameter here)

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmswitch import hookimpl
from llmswitch.bench import DEFAULT_PROMPT, Sample, Spread, run_bench
from llmswitch.client import Client
from llmswitch.testing import use_plugin
from llmswitch.testing.openai_server import openai_server
from llmswitch.types import (
    BackendInfo,
    OptionSpec,
    Request,
    StreamEnd,
    StreamEvent,
    Target,
    TextDelta,
    Usage,
    UsageEvent,
)
from tests.helpers import run_cli
from tests.plugins.test_llamacpp_support import demo_model  # noqa: F401 - a fixture


class PacedPlugin:
    """Answers ten tokens after ``first_s`` (``cold_s`` more on the first call of a profile), ``gap_s`` apart;
    keeps the order in which profiles were called."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    @hookimpl
    def llmswitch_backends(self) -> list[BackendInfo]:
        return [BackendInfo(name="paced", summary="paced answers", key_env=None, default_model="p",
                            options=(OptionSpec("first_s", "float", 0.0), OptionSpec("cold_s", "float", 0.0),
                                     OptionSpec("gap_s", "float", 0.0)))]

    @hookimpl
    def stream(self, target: Target, request: Request) -> Iterator[StreamEvent]:
        cold = target.profile not in self.calls
        self.calls.append(target.profile)
        time.sleep(float(target.option("first_s")) + (float(target.option("cold_s")) if cold else 0.0))
        for index in range(10):
            if index:
                time.sleep(float(target.option("gap_s")))
            yield TextDelta(f"t{index} ")
        yield UsageEvent(Usage(7, 10))
        yield StreamEnd("stop", target.model)


@pytest.fixture
def paced(config_file: Path) -> Iterator[PacedPlugin]:
    plugin = PacedPlugin()
    config_file.write_text(
        '[profiles.quick]\nbackend = "paced"\nprice_input_per_mtok = 1000000\nprice_output_per_mtok = 2000000\n'
        '[profiles.slow]\nbackend = "paced"\nfirst_s = 0.05\ngap_s = 0.01\ncold_s = 0.3\n'
        '[profiles.down]\nbackend = "openai"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\ntimeout = 2\n')
    with use_plugin(plugin, "paced"):
        yield plugin


def test_calls_are_interleaved_round_by_round(paced: PacedPlugin) -> None:
    run_bench(Client(), ["quick", "slow"], "hi", runs=2, warmup=1)
    assert paced.calls == ["quick", "slow"] * 3


def test_numbers_are_medians_of_warm_calls_with_the_cold_start_apart(paced: PacedPlugin) -> None:
    quick, slow = run_bench(Client(), ["quick", "slow"], "hi", runs=3, warmup=1)
    assert len(slow.samples) == 3 and len(slow.warmups) == 1
    ttft = slow.spread("ttft_s")
    assert ttft is not None and 0.05 <= ttft.low <= ttft.median <= ttft.high < 0.3  # the cold 0.3 s is not in it
    assert slow.cold_start_s is not None and 0.25 <= slow.cold_start_s < 1.0
    total = slow.spread("total_s")
    assert total is not None and total.median >= 0.05 + 9 * 0.01
    rate = slow.spread("tokens_per_s")
    assert rate is not None and rate.median <= 9 / (9 * 0.01)  # 9 tokens after the first, 10 ms apart at best
    # Tokens as the backend reported them; cost from the profile's prices: 7 x $1 + 10 x $2 per call.
    assert quick.spread("input_tokens") == Spread(7, 7, 7) and quick.spread("output_tokens") == Spread(10, 10, 10)
    assert quick.spread("cost_usd") == Spread(27.0, 27.0, 27.0)


def test_a_profile_that_fails_is_a_row_with_its_error_not_a_crash(paced: PacedPlugin) -> None:
    result = run_cli("bench", "-p", "quick", "-p", "down", "-p", "missing", "-n", "2", "--warmup", "0", "hi")
    assert result.exit_code == 1 and "Traceback" not in result.stderr + result.stdout
    lines = result.stdout.splitlines()
    assert any(line.split()[:1] == ["quick"] and "2/2" in line for line in lines), result.stdout
    assert any(line.split()[:1] == ["down"] and line.rstrip().endswith("0/2") for line in lines), result.stdout
    assert "down: 2 failed: cannot connect" in result.stdout and "missing: all failed: no profile named" in result.stdout


def test_json_for_scripts(paced: PacedPlugin) -> None:
    result = run_cli("bench", "-p", "quick", "-p", "down", "-n", "2", "--json", "hello")
    report = json.loads(result.stdout)
    assert report["prompt"] == "hello" and (report["runs"], report["warmup"]) == (2, 1)
    quick, down = report["profiles"]
    assert quick["ok"] == 2 and quick["output_tokens"] == {"median": 10, "min": 10, "max": 10}
    assert set(quick["ttft_s"]) == {"median", "min", "max"} and len(quick["samples"]) == 2
    assert down["ok"] == 0 and down["failed"] == 3 and "cannot connect" in down["error"]
    assert down["ttft_s"] is None


def test_the_table_and_the_bar_chart(paced: PacedPlugin) -> None:
    result = run_cli("bench", "-p", "quick", "-p", "slow", "-n", "2", "hi")
    assert result.exit_code == 0, result.stderr
    for heading in ("first token", "tokens/s", "total", "cost/call", "cold start", "time to first token (median)",
                    "output tokens per second (median)"):
        assert heading in result.stdout
    bars = {line.split()[0]: line.count("█") for line in result.stdout.splitlines()
            if "█" in line and "first token" not in line}
    assert bars  # each profile's bar, the longest 40 wide
    chart = result.stdout.split("time to first token (median)")[1].split("total latency")[0]
    widths = {line.split()[0]: line.count("█") for line in chart.splitlines() if "█" in line}
    assert widths["slow"] == 40 and widths["quick"] < widths["slow"]


def test_a_server_profile_over_a_real_socket(config_file: Path) -> None:
    with openai_server() as server:
        server.state.options["tokens"] = 40
        config_file.write_text(f'[profiles.server]\nbackend = "openai"\nbase_url = "{server.url}/v1"\n'
                               'model = "test-model"\n')
        (result,) = run_bench(Client(), ["server"], DEFAULT_PROMPT, runs=2, warmup=1)
    assert len(result.ok) == 2 and result.spread("output_tokens") == Spread(40, 40, 40)
    assert len(server.state.requests) == 3  # the warm-up call and two measured ones
    assert server.state.requests[-1].body["messages"][-1]["content"] == DEFAULT_PROMPT


def test_tokens_per_second_needs_a_second_token() -> None:
    assert Sample(ttft_s=0.1, total_s=0.1, output_tokens=1).tokens_per_s is None
    assert Sample(ttft_s=0.1, total_s=1.1, output_tokens=11).tokens_per_s == pytest.approx(10.0)


@pytest.mark.slow
def test_a_local_model_load_is_reported_apart_from_generation(demo_model: Path) -> None:
    from llmswitch_llamacpp import runtime

    runtime.unload_all()  # cold: the first call loads the model
    (local,) = run_bench(Client(), ["local"], "What is the capital of France?", runs=2, warmup=1)
    assert len(local.ok) == 2, local.failures
    load = local.cold_start_s
    ttft = local.spread("ttft_s")
    assert load is not None and ttft is not None and load > 0
    assert local.warmups[0].ttft_s is not None and local.warmups[0].ttft_s >= ttft.median + load - 1e-9
    assert local.spread("output_tokens") is not None and local.spread("tokens_per_s") is not None
