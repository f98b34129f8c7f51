"""llmswitch.accounting, function by function: what a finished call cost, what is written to the ledger, what a
request would cost, budgets and the `cost` comparison. Prices differ for input and output throughout, so a
mix-up of the two shows."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmswitch import accounting, hookimpl
from llmswitch.accounting import (
    FALLBACK_MAX_OUTPUT,
    BudgetStatus,
    CallCost,
    budget_status,
    call_cost,
    compare_costs,
    count_input,
    estimate_cost,
    outcome_of,
    record_call,
)
from llmswitch.client import Client, ResolvedProfile, StreamState
from llmswitch.errors import BadResponseError, BudgetExceededError, LLMSwitchError, RateLimitError
from llmswitch.ledger import Ledger, LedgerEntry, start_of_day, start_of_month
from llmswitch.plugins import register_plugin, unregister_plugin
from llmswitch.types import BackendInfo, Request, Response, Target, TokenCount, Usage
from tests.helpers import write_config


class PricedPlugin:
    """Counts 1000 input tokens exactly (or fails to count, when told); answers with fixed usage."""

    def __init__(self) -> None:
        self.count_fails = False

    @hookimpl
    def llmswitch_backends(self) -> list[BackendInfo]:
        return [BackendInfo(name="priced", summary="fixed counts", default_model="p1", key_env=None)]

    @hookimpl
    def complete(self, target: Target, request: Request) -> Response:
        return Response("answer", "stop", Usage(1000, 1000))

    @hookimpl
    def count_tokens(self, target: Target, request: Request) -> TokenCount:
        if self.count_fails:
            raise BadResponseError("the tokenizer is not reachable")
        return TokenCount(1000 * len(request.messages), exact=True, method="fixed")


PROFILES = """
[profiles.paid]
backend = "priced"
price_input_per_mtok = 1.0
price_output_per_mtok = 3.0

[profiles.cheap]
backend = "priced"
model = "small"
price_input_per_mtok = 0.5
price_output_per_mtok = 0.5

[profiles.free]
backend = "priced"
model = "zero"
price_input_per_mtok = 0.0
price_output_per_mtok = 0.0

[profiles.unpriced]
backend = "priced"
model = "mystery"

[profiles.broken]
backend = "not-installed"
model = "gone-1"

[profiles.gpt]
backend = "openai"
model = "gpt-4.1"
api_key = "sk-test-0123456789abcdef"

[profiles.gpt-elsewhere]
backend = "openai"
model = "gpt-4.1"
base_url = "http://127.0.0.1:9/v1"
"""


@pytest.fixture
def plugin(config_file: Path) -> Iterator[PricedPlugin]:
    write_config(config_file, PROFILES)
    priced = PricedPlugin()
    register_plugin(priced, "priced")
    yield priced
    unregister_plugin("priced")


def resolve(name: str = "paid") -> ResolvedProfile:
    return Client().resolve(name)


def finished(resolved: ResolvedProfile, text: str = "", usage: Usage | None = None,
             error: LLMSwitchError | None = None, interrupted: bool = False,
             model: str | None = None) -> StreamState:
    state = StreamState(resolved=resolved, parts=[text] if text else [], usage=usage or Usage(), error=error,
                        interrupted=interrupted, model=model)
    state.latency_s = 0.25
    return state


# ---- the cost of a finished call -------------------------------------------------------------------------------


def test_reported_usage_is_priced_at_each_rate_and_not_estimated(plugin: PricedPlugin) -> None:
    resolved = resolve()
    cost = call_cost(resolved, resolved.request("hi"), finished(resolved, "answer", Usage(2000, 1000)))
    assert cost == CallCost(0.005, 2000, 1000, False, "profile", None)  # 2000 x $1 + 1000 x $3 per million


def test_missing_usage_is_counted_here_and_marked_estimated(plugin: PricedPlugin) -> None:
    resolved = resolve()
    text = "x" * 40  # 10 tokens by the core's chars / 4
    cost = call_cost(resolved, resolved.request("hi"), finished(resolved, text))
    assert (cost.input_tokens, cost.output_tokens, cost.tokens_estimated) == (1000, 10, True)
    assert cost.usd == pytest.approx((1000 * 1.0 + 10 * 3.0) / 1e6)


def test_only_the_missing_half_of_the_usage_is_counted(plugin: PricedPlugin) -> None:
    resolved = resolve()
    request = resolved.request("hi")
    no_output = call_cost(resolved, request, finished(resolved, "y" * 8, Usage(input_tokens=7)))
    assert (no_output.input_tokens, no_output.output_tokens, no_output.tokens_estimated) == (7, 2, True)
    no_input = call_cost(resolved, request, finished(resolved, "y" * 8, Usage(output_tokens=5)))
    assert (no_input.input_tokens, no_input.output_tokens, no_input.tokens_estimated) == (1000, 5, True)


def test_a_short_answer_counts_at_least_one_token_and_an_empty_one_none(plugin: PricedPlugin) -> None:
    resolved = resolve()
    request = resolved.request("hi")
    assert call_cost(resolved, request, finished(resolved, "a")).output_tokens == 1
    empty = call_cost(resolved, request, finished(resolved, ""))
    assert (empty.input_tokens, empty.output_tokens, empty.tokens_estimated) == (1000, 0, True)


def test_a_call_that_failed_before_any_answer_costs_nothing_known(plugin: PricedPlugin) -> None:
    resolved = resolve()
    cost = call_cost(resolved, resolved.request("hi"), finished(resolved, error=RateLimitError("slow down")))
    assert (cost.usd, cost.input_tokens, cost.output_tokens, cost.tokens_estimated) == (None, None, None, False)


def test_a_call_that_failed_or_was_interrupted_after_some_text_is_charged_for_it(plugin: PricedPlugin) -> None:
    resolved = resolve()
    request = resolved.request("hi")
    failed = call_cost(resolved, request, finished(resolved, "z" * 12, error=BadResponseError("cut off")))
    assert (failed.input_tokens, failed.output_tokens, failed.tokens_estimated) == (1000, 3, True)
    stopped = call_cost(resolved, request, finished(resolved, "z" * 12, interrupted=True))
    assert stopped == failed


def test_count_input_falls_back_to_the_core_estimate(plugin: PricedPlugin) -> None:
    resolved = resolve()
    request = resolved.request("x" * 400)
    assert count_input(resolved, request) == TokenCount(1000, exact=True, method="fixed")
    plugin.count_fails = True
    estimated = count_input(resolved, request)
    assert (estimated.n, estimated.exact, estimated.method) == (100 + 4, False, "chars/4")


def test_call_cost_reads_and_prints() -> None:
    cost = CallCost(0.0012, 100, 200, tokens_estimated=True, price_source="acme table", price_date="2020-01-02")
    assert str(cost) == "$0.00120 (estimated tokens)"
    assert str(CallCost(0.5, 1, 1)) == "$0.5000"
    assert str(CallCost(None, 1, 1, price_source="acme table")) == "unknown (acme table)"
    payload = cost.as_dict()
    assert payload["usd"] == 0.0012 and payload["tokens_estimated"] is True
    assert (payload["input_tokens"], payload["output_tokens"]) == (100, 200)
    assert payload["price_source"] == "acme table" and payload["price_date"] == "2020-01-02"
    assert payload["price_age_days"] > 365 * 6
    assert CallCost(1 / 3, 1, 1).as_dict()["usd"] == round(1 / 3, 10)


# ---- what reaches the ledger -----------------------------------------------------------------------------------


@pytest.mark.parametrize("error, interrupted, outcome", [
    (None, False, "ok"),
    (None, True, "interrupted"),
    (RateLimitError("slow down"), False, "rate_limited"),
    (RateLimitError("slow down"), True, "rate_limited"),  # a failure is named even when the user also stopped
])
def test_the_outcome_names_what_happened(plugin: PricedPlugin, error: LLMSwitchError | None, interrupted: bool,
                                         outcome: str) -> None:
    assert outcome_of(finished(resolve(), "t", error=error, interrupted=interrupted)) == outcome


def test_record_call_writes_one_row_with_what_the_call_used(plugin: PricedPlugin) -> None:
    resolved = resolve()
    before = time.time()
    cost = record_call(resolved, resolved.request("hi"), finished(resolved, "w" * 20, model="p1-2025"))
    with Ledger() as ledger:
        [entry] = ledger.entries()
    assert entry.ts >= before
    assert entry == LedgerEntry("paid", "priced", "p1-2025", 1000, 5, cost.usd, 0.25, "ok", True, entry.ts)
    assert cost.usd == pytest.approx((1000 + 5 * 3) / 1e6)
    record_call(resolved, resolved.request("hi"), finished(resolved, "", Usage(3, 4), error=RateLimitError("x")))
    with Ledger() as ledger:
        latest = ledger.entries()[-1]
    assert (latest.model, latest.outcome, latest.input_tokens, latest.output_tokens) == ("p1", "rate_limited", 3, 4)


def test_a_ledger_that_cannot_be_written_costs_the_answer_nothing(plugin: PricedPlugin, hermetic: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    from llmswitch.ledger import FILE_NAME, flush_rows

    (hermetic / "data" / FILE_NAME).mkdir()  # where the ledger file should be: a directory
    resolved = resolve()
    with caplog.at_level(logging.WARNING, logger="llmswitch.ledger"):
        cost = record_call(resolved, resolved.request("hi"), finished(resolved, "fine", Usage(1, 1)))
        assert flush_rows(10)  # the row is written by the ledger's writer thread, which logs the failure
    assert cost.usd == pytest.approx(4 / 1e6)
    [warning] = [record.getMessage() for record in caplog.records]
    assert warning.startswith("usage not recorded: ") and FILE_NAME in warning


def test_a_cached_answer_costs_nothing_and_is_recorded_as_cached(plugin: PricedPlugin) -> None:
    resolved = resolve()
    replayed = finished(resolved, "from the cache", Usage(1000, 7))
    replayed.cached = True
    cost = call_cost(resolved, resolved.request("hi"), replayed)
    assert (cost.usd, cost.input_tokens, cost.output_tokens, cost.price_source) == (0.0, 1000, 7, "cached")
    assert not cost.tokens_estimated and str(cost) == "$0 (cached)"
    assert outcome_of(replayed) == "cached"
    replayed.interrupted = True
    assert outcome_of(replayed) == "interrupted"  # a replay the user stopped is still an interrupted call
    replayed.interrupted = False
    record_call(resolved, resolved.request("hi"), replayed)
    with Ledger() as ledger:
        [entry] = ledger.entries()
    assert (entry.outcome, entry.cost_usd, entry.input_tokens, entry.output_tokens) == ("cached", 0.0, 1000, 7)
    with Ledger() as ledger:
        [row] = ledger.summary()
    assert row.errors == 0 and row.unpriced_calls == 0


def test_record_call_counts_the_call_in_the_metrics_when_they_are_on(plugin: PricedPlugin, tmp_path: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from llmswitch import metrics

    resolved = resolve()
    record_call(resolved, resolved.request("hi"), finished(resolved, "w" * 20))  # off: nothing to count into
    active = metrics.enable()
    try:
        state = finished(resolved, "w" * 20, Usage(1000, 10), model="p1-2025")
        state.first_token_s = 0.1
        record_call(resolved, resolved.request("hi"), state)
        record_call(resolved, resolved.request("hi"), finished(resolved, "", error=RateLimitError("x")))
        found = {(s.name, tuple(sorted(s.labels.items()))): s.value
                 for family in text_string_to_metric_families(active.exposition().decode()) for s in family.samples}
    finally:
        metrics.disable()
    labels = (("backend", "priced"), ("model", "p1-2025"), ("profile", "paid"))
    assert found[("llmswitch_requests_total", (*labels, ("status", "ok")))] == 1
    assert found[("llmswitch_tokens_total", (labels[0], ("direction", "output"), *labels[1:]))] == 10
    assert found[("llmswitch_cost_usd_total", labels)] == pytest.approx((1000 + 30) / 1e6)
    assert found[("llmswitch_request_duration_seconds_sum", labels)] == 0.25
    assert found[("llmswitch_time_to_first_token_seconds_sum", labels)] == 0.1
    failed = (("backend", "priced"), ("model", "p1"), ("profile", "paid"), ("status", "rate_limited"))
    assert found[("llmswitch_requests_total", failed)] == 1
    assert found[("llmswitch_errors_total", (("backend", "priced"), ("kind", "rate_limited"), ("profile", "paid")))] == 1


# ---- estimates before the call ---------------------------------------------------------------------------------


def test_an_estimate_uses_the_given_output_else_the_standard_request(plugin: PricedPlugin) -> None:
    resolved = resolve()
    request = Request.from_prompt("hi", max_tokens=50)
    given = estimate_cost(resolved, request, 10)
    assert (given.input.n, given.output_tokens, given.output_basis) == (1000, 10, "--output-tokens")
    assert given.usd == pytest.approx((1000 + 30) / 1e6)
    standard = estimate_cost(resolved, request)
    assert (standard.output_tokens, standard.output_basis) == (500, "standard request")
    counted = estimate_cost(resolved, request, input_count=TokenCount(7, False, "mine"))
    assert counted.input == TokenCount(7, False, "mine")


def test_a_budget_estimate_assumes_the_worst_case_output(plugin: PricedPlugin, config_file: Path) -> None:
    resolved = resolve()
    bounded = estimate_cost(resolved, Request.from_prompt("hi", max_tokens=50), for_budget=True)
    assert (bounded.output_tokens, bounded.output_basis) == (50, "max_tokens")
    unbounded = estimate_cost(resolved, Request.from_prompt("hi"), for_budget=True)
    assert (unbounded.output_tokens, unbounded.output_basis) == (FALLBACK_MAX_OUTPUT, "no max_tokens set")


# ---- budgets ---------------------------------------------------------------------------------------------------


def test_budget_status_reports_each_period_from_its_own_start(plugin: PricedPlugin) -> None:
    with Ledger() as ledger:
        ledger.append(LedgerEntry("paid", "priced", "p1", 1, 1, 0.25, 0.1, ts=time.time()))
        ledger.append(LedgerEntry("paid", "priced", "p1", 1, 1, 2.0, 0.1, ts=start_of_month() - 10))
        ledger.append(LedgerEntry("other", "priced", "p1", 1, 1, 9.0, 0.1, ts=time.time()))
    statuses = budget_status("paid", {"budget_usd_per_day": 1.0, "budget_usd_per_month": 10.0})
    day, month = statuses
    assert (day.period, day.budget_usd, day.spent_usd, day.since) == ("day", 1.0, 0.25, start_of_day())
    assert (month.period, month.budget_usd, month.spent_usd, month.since) == ("month", 10.0, 0.25, start_of_month())
    assert day.remaining_usd == 0.75
    assert budget_status("paid", {}) == []


def test_budget_status_as_json() -> None:
    status = BudgetStatus("month", 10.0, 1 / 3, 0.0)
    assert status.as_dict() == {"period": "month", "budget_usd": 10.0, "spent_usd": round(1 / 3, 10)}


def test_no_budget_means_the_ledger_is_never_opened(plugin: PricedPlugin, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_ledger(*args: object, **kwargs: object) -> None:
        raise AssertionError("the ledger was opened")

    monkeypatch.setattr("llmswitch.ledger.Ledger.__init__", no_ledger)
    assert budget_status("paid", {"budget_usd_per_day": None}) == []
    accounting.check_budget(resolve(), Request.from_prompt("hi"))


# ---- comparing profiles ------------------------------------------------------------------------------------------


def test_compare_costs_orders_cheapest_first_then_unknown_then_broken(plugin: PricedPlugin) -> None:
    rows = compare_costs(Client(), ["unpriced", "broken", "paid", "free", "cheap", "paid"], requests=3)
    assert [row.profile for row in rows] == ["free", "cheap", "paid", "unpriced", "broken"]
    free, cheap, paid, unpriced, broken = rows
    assert free.usd_per_request == 0 and free.usd_total == 0
    assert cheap.usd_per_request == pytest.approx((500 + 500) * 0.5 / 1e6)  # the standard 500 + 500
    assert paid.usd_per_request == pytest.approx((500 * 1 + 500 * 3) / 1e6)
    assert paid.usd_total == pytest.approx(3 * paid.usd_per_request)
    assert (paid.backend, paid.model, paid.requests) == ("priced", "p1", 3)
    assert paid.estimate is not None and paid.estimate.input == TokenCount(500, True, "standard request")
    assert unpriced.usd_per_request is None and unpriced.usd_total is None and unpriced.error is None
    assert broken.estimate is None and broken.error is not None and broken.usd_total is None
    assert (broken.backend, broken.model, broken.requests) == ("not-installed", "gone-1", 3)
    [once] = compare_costs(Client(), ["paid"])
    assert once.requests == 1 and once.usd_total == once.usd_per_request


def test_compare_costs_counts_a_prompt_with_each_backend_or_takes_the_given_count(plugin: PricedPlugin) -> None:
    [counted] = compare_costs(Client(), ["paid"], prompt="what does this cost?", output_tokens=100)
    assert counted.estimate is not None
    assert (counted.estimate.input.n, counted.estimate.output_tokens) == (1000, 100)
    assert counted.usd_per_request == pytest.approx((1000 + 300) / 1e6)
    [given] = compare_costs(Client(), ["paid"], input_tokens=10, output_tokens=0)
    assert given.estimate is not None and given.estimate.input == TokenCount(10, True, "--input-tokens")
    assert given.usd_per_request == pytest.approx(10 / 1e6)
    every = compare_costs(Client(), None)
    assert {"paid", "cheap", "free", "echo", "local"} <= {row.profile for row in every}


def test_budget_status_at_a_given_time_uses_that_day_and_month(plugin: PricedPlugin) -> None:
    then = time.mktime((2024, 2, 10, 15, 0, 0, 0, 0, -1))
    with Ledger() as ledger:
        ledger.append(LedgerEntry("paid", "priced", "p1", 1, 1, 0.5, 0.1, ts=then - 3600))  # that morning
        ledger.append(LedgerEntry("paid", "priced", "p1", 1, 1, 0.25, 0.1, ts=then - 5 * 86400))  # that month
        day, month = budget_status("paid", {"budget_usd_per_day": 1.0, "budget_usd_per_month": 9.0},
                                   ledger=ledger, now=then)
        assert ledger.spend("paid", 0) == pytest.approx(0.75)  # a ledger passed in stays open for the caller
    assert day.since == time.mktime((2024, 2, 10, 0, 0, 0, 0, 0, -1)) and day.spent_usd == pytest.approx(0.5)
    assert month.since == time.mktime((2024, 2, 1, 0, 0, 0, 0, 0, -1)) and month.spent_usd == pytest.approx(0.75)


def test_a_call_that_exactly_reaches_the_budget_is_allowed(plugin: PricedPlugin, config_file: Path) -> None:
    write_config(config_file, PROFILES.replace('price_output_per_mtok = 3.0\n',
                                               'price_output_per_mtok = 3.0\nbudget_usd_per_day = 0.004\n', 1))
    accounting.check_budget(resolve(), Request.from_prompt("hi", max_tokens=1000))  # $0.004 of $0.004: allowed
    with pytest.raises(BudgetExceededError):
        accounting.check_budget(resolve(), Request.from_prompt("hi", max_tokens=1001))


def test_budget_refusals_say_exactly_what_to_do(plugin: PricedPlugin, config_file: Path) -> None:
    write_config(config_file, PROFILES + '\n[profiles.capped]\nbackend = "priced"\nmodel = "mystery"\n'
                                         'budget_usd_per_month = 1.0\n')
    with pytest.raises(BudgetExceededError) as unknown:
        accounting.check_budget(resolve("capped"), Request.from_prompt("hi"))
    assert unknown.value.remedy == ("set price_input_per_mtok and price_output_per_mtok in [profiles.capped] "
                                    "(USD per million tokens), or remove its budget")
    with Ledger() as ledger:
        ledger.append(LedgerEntry("paid", "priced", "p1", 1, 1, 5.0, 0.1, ts=time.time()))
    write_config(config_file, PROFILES.replace('price_output_per_mtok = 3.0\n',
                                               'price_output_per_mtok = 3.0\nbudget_usd_per_month = 5.0\n', 1))
    with pytest.raises(BudgetExceededError) as monthly:
        accounting.check_budget(resolve(), Request.from_prompt("hi", max_tokens=10))
    assert monthly.value.remedy == ("the budget resets on the first of next month (local time); raise "
                                    "budget_usd_per_month in [profiles.paid], lower max_tokens, or use another profile")


def test_a_failed_count_is_logged_with_the_profile_and_the_reason(plugin: PricedPlugin,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    plugin.count_fails = True
    with caplog.at_level(logging.DEBUG, logger="llmswitch.accounting"):
        count_input(resolve(), Request.from_prompt("hi"))
    assert [r.getMessage() for r in caplog.records] == [
        "count_tokens failed for paid, estimating: the tokenizer is not reachable"]


def test_the_price_date_travels_with_the_cost() -> None:
    from llmswitch.pricing import load_table

    resolved = resolve("echo")
    cost = call_cost(resolved, resolved.request("hi"), finished(resolved, "hi", Usage(1, 1)))
    table = load_table(resolved.handle.info)
    assert table is not None and table.date and cost.price_date == table.date


def test_a_budget_without_max_tokens_assumes_the_models_maximum_output(plugin: PricedPlugin) -> None:
    worst = estimate_cost(resolve("gpt"), Request.from_prompt("hi"), for_budget=True)
    assert (worst.output_tokens, worst.output_basis) == (32768, "the model's maximum output")


def test_a_model_on_another_server_is_not_priced_from_the_providers_table(plugin: PricedPlugin) -> None:
    assert accounting.price_of(resolve("gpt")).known
    assert not accounting.price_of(resolve("gpt-elsewhere")).known


def test_a_charge_is_made_at_once_only_when_nothing_in_it_can_wait(plugin: PricedPlugin,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from llmswitch import metrics
    from llmswitch.accounting import Books, charges_at_once
    from llmswitch.errors import UnreachableError

    resolved = resolve()
    request = resolved.request("hi")

    def call(text: str = "fine", usage: Usage | None = None, error: LLMSwitchError | None = None) -> StreamState:
        state = finished(resolved, text, usage if usage is not None else Usage(1, 1), error=error)
        state.request = request
        return state

    assert charges_at_once(call(), Books())
    assert not charges_at_once(call(), Books(ledger=object()))  # type: ignore[arg-type]  # a face's own ledger
    assert not charges_at_once(call(usage=Usage(None, 1)), Books())  # the input must be counted: may ask the API
    assert charges_at_once(call(usage=Usage(1, None)), Books())  # the output is counted here, from the text
    assert charges_at_once(call("", Usage(None, None), error=UnreachableError("down")), Books())  # costs nothing
    unanswered = call(usage=Usage(None, None))
    unanswered.request = None
    assert charges_at_once(unanswered, Books())  # a call known only by its answer: nothing to count
    cached = call(usage=Usage(None, None))
    cached.cached = True
    assert charges_at_once(cached, Books())
    remote = call()
    remote.resolved = type(resolved)(resolved.profile, resolved.handle, resolved.settings, resolved.target,
                                     state=object())  # type: ignore[arg-type]  # a state elsewhere (Redis)
    assert not charges_at_once(remote, Books())
    monkeypatch.setattr(metrics, "_active", object())  # a metrics file to write
    assert not charges_at_once(call(), Books())
