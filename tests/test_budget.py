"""Budgets: a call whose estimate would pass the profile's daily or monthly budget is refused before sending."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmswitch import accounting, hookimpl
from llmswitch.client import Client
from llmswitch.conversation import Conversation
from llmswitch.errors import BudgetExceededError
from llmswitch.ledger import Ledger, LedgerEntry, start_of_day, start_of_month
from llmswitch.plugins import register_plugin, unregister_plugin
from llmswitch.types import BackendInfo, Request, Response, Target, TokenCount, Usage
from tests.helpers import run_cli, write_config


class CountingPlugin:
    """Answers, and counts how many requests reached it."""

    def __init__(self) -> None:
        self.requests: list[Request] = []

    @hookimpl
    def llmswitch_backends(self) -> list[BackendInfo]:
        return [BackendInfo(name="counting", summary="counts requests", default_model="c1")]

    @hookimpl
    def complete(self, target: Target, request: Request) -> Response:
        self.requests.append(request)
        return Response("answer", "stop", Usage(1000, 1000))

    @hookimpl
    def count_tokens(self, target: Target, request: Request) -> TokenCount:
        return TokenCount(1000, exact=True, method="fixed")


@pytest.fixture
def counting() -> Iterator[CountingPlugin]:
    plugin = CountingPlugin()
    register_plugin(plugin, "counting")
    yield plugin
    unregister_plugin("counting")


def metered(config_file: Path, **extra: object) -> None:
    """$1 per million tokens in and out: a call of 1000 + 1000 tokens costs $0.002."""
    lines = ['[profiles.metered]', 'backend = "counting"', "price_input_per_mtok = 1.0",
             "price_output_per_mtok = 1.0"]
    lines += [f"{key} = {value!r}".replace("'", '"') for key, value in extra.items()]
    write_config(config_file, "\n".join(lines) + "\n")


def spend(amount: float, *, profile: str = "metered", ts: float | None = None) -> None:
    with Ledger() as ledger:
        ledger.append(LedgerEntry(profile, "counting", "c1", 1, 1, amount, 0.1, ts=ts or time.time()))


def test_a_call_past_the_daily_budget_is_refused_before_sending(config_file: Path, counting: CountingPlugin) -> None:
    metered(config_file, budget_usd_per_day=0.01, max_tokens=1000)
    spend(0.009)
    conversation = Conversation(Client(), "metered")
    with pytest.raises(BudgetExceededError) as caught:
        conversation.stream("hello")
    assert counting.requests == []
    assert caught.value.message == (
        "profile 'metered' has spent $0.00900 of its $0.0100 daily budget, and this call could cost up to "
        "$0.00200 (1000 input + 1000 output tokens, max_tokens); it was not sent")
    assert "resets at midnight" in (caught.value.remedy or "")
    assert caught.value.exit_code == 1


def test_a_call_within_the_budget_goes_through_and_is_recorded(config_file: Path, counting: CountingPlugin) -> None:
    metered(config_file, budget_usd_per_day=0.01, max_tokens=1000)
    spend(0.007)
    conversation = Conversation(Client(), "metered")
    turn = conversation.stream("hello")
    for _ in turn:
        pass
    assert len(counting.requests) == 1
    assert turn.cost is not None and turn.cost.usd == pytest.approx(0.002)
    with Ledger() as ledger:
        assert ledger.spend("metered", start_of_day()) == pytest.approx(0.009)
    with pytest.raises(BudgetExceededError):  # 0.009 + 0.002 > 0.01
        conversation.stream("again")
    assert len(counting.requests) == 1


def test_the_monthly_budget_counts_earlier_days(config_file: Path, counting: CountingPlugin) -> None:
    metered(config_file, budget_usd_per_month=1.0, budget_usd_per_day=5.0, max_tokens=1000)
    month_start = start_of_month()
    spend(0.999, ts=max(month_start + 1, time.time() - 1))  # some time this month
    spend(50.0, ts=month_start - 10)  # last month: does not count
    with pytest.raises(BudgetExceededError) as caught:
        Conversation(Client(), "metered").stream("hello")
    assert "of its $1.00 monthly budget" in caught.value.message
    assert "on the first of next month" in (caught.value.remedy or "")


def test_other_profiles_spend_does_not_count(config_file: Path, counting: CountingPlugin) -> None:
    metered(config_file, budget_usd_per_day=0.01, max_tokens=1000)
    spend(100.0, profile="someone-else")
    Conversation(Client(), "metered").complete("hello")
    assert len(counting.requests) == 1


def test_without_max_tokens_the_worst_case_output_is_assumed(config_file: Path, counting: CountingPlugin) -> None:
    metered(config_file, budget_usd_per_day=0.004)
    with pytest.raises(BudgetExceededError) as caught:
        Conversation(Client(), "metered").stream("hello")
    assert f"1000 input + {accounting.FALLBACK_MAX_OUTPUT} output tokens, no max_tokens set" in caught.value.message
    assert counting.requests == []


def test_a_budget_with_an_unknown_price_refuses(config_file: Path, counting: CountingPlugin) -> None:
    write_config(config_file, '[profiles.unpriced]\nbackend = "counting"\nbudget_usd_per_day = 100.0\n')
    with pytest.raises(BudgetExceededError) as caught:
        Conversation(Client(), "unpriced").stream("hello")
    assert caught.value.message == ("profile 'unpriced' has a budget but the price of c1 is unknown (backend "
                                    "counting ships no price table), so the call was not sent")
    assert "price_input_per_mtok" in (caught.value.remedy or "")
    assert counting.requests == []


def test_no_budget_means_no_check_and_no_ledger_read(config_file: Path, counting: CountingPlugin,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    metered(config_file)
    monkeypatch.setattr(Ledger, "spend", lambda *args: pytest.fail("read the ledger without a budget"))
    Conversation(Client(), "metered").complete("hello")
    assert len(counting.requests) == 1


def test_cli_refusal_message_and_exit_code(config_file: Path, counting: CountingPlugin) -> None:
    metered(config_file, budget_usd_per_day=0.01, max_tokens=1000)
    spend(0.0095)
    result = run_cli("chat", "-p", "metered", "--no-history", "hello")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "error: profile 'metered' has spent $0.00950 of its $0.0100 daily budget" in result.stderr
    assert "hint: the budget resets at midnight" in result.stderr
    assert counting.requests == []


def test_budget_refusal_through_the_openai_plugin_sends_nothing(config_file: Path) -> None:
    pytest.importorskip("llmswitch_openai")
    from tests.servers.openai_server import openai_server

    with openai_server() as server:
        write_config(config_file, f'[profiles.capped]\nbackend = "openai"\nbase_url = "{server.url}/v1"\n'
                                  'model = "test-model"\nprice_input_per_mtok = 1000.0\n'
                                  'price_output_per_mtok = 1000.0\nmax_tokens = 100\nbudget_usd_per_day = 0.05\n')
        result = run_cli("chat", "-p", "capped", "--no-history", "hello there")
        assert result.exit_code == 1, result
        assert "daily budget" in result.stderr
        assert server.state.requests == []  # refused before anything was sent
        write_config(config_file, f'[profiles.capped]\nbackend = "openai"\nbase_url = "{server.url}/v1"\n'
                                  'model = "test-model"\nprice_input_per_mtok = 1.0\n'
                                  'price_output_per_mtok = 1.0\nmax_tokens = 100\nbudget_usd_per_day = 0.05\n')
        allowed = run_cli("chat", "-p", "capped", "--no-history", "--json", "hello there")
        assert allowed.exit_code == 0, allowed
        assert len(server.state.requests) == 1


def test_a_refusal_says_when_the_budget_resets(config_file: Path, counting: CountingPlugin) -> None:
    from datetime import datetime

    from llmswitch.ledger import start_of_next

    metered(config_file, budget_usd_per_day=0.01, budget_usd_per_month=1.0, max_tokens=1000)
    spend(0.009)
    with pytest.raises(BudgetExceededError) as daily:
        Conversation(Client(), "metered").stream("hello")
    midnight = start_of_next("day", start_of_day())
    assert daily.value.retry_after == pytest.approx(midnight - time.time(), abs=5)
    assert datetime.fromtimestamp(midnight).hour == 0 and midnight - start_of_day() in (82800, 86400, 90000)
    first = datetime.fromtimestamp(start_of_next("month", start_of_month()))
    assert (first.day, first.hour) == (1, 0) and first > datetime.now()
    metered(config_file, budget_usd_per_month=0.01, max_tokens=1000)
    with pytest.raises(BudgetExceededError) as monthly:
        Conversation(Client(), "metered").stream("hello")
    assert "monthly budget" in monthly.value.message
    assert monthly.value.retry_after == pytest.approx(first.timestamp() - time.time(), abs=5)


def test_the_budget_rule_is_spend_plus_worst_case_above_the_limit() -> None:
    status = accounting.BudgetStatus("day", 1.0, 0.5, 0.0)
    assert accounting.over_budget([status], 0.5) is None  # exactly at the limit is allowed
    assert accounting.over_budget([status], 0.5001) is status
    later = accounting.BudgetStatus("month", 10.0, 9.9, 0.0)
    assert accounting.over_budget([status, later], 0.2) is later
    error = accounting.budget_refusal("gateway key 'k'", later, 0.2, remedy="wait", spent_by=" together",
                                      detail=" (why)")
    assert error.message == ("gateway key 'k' has spent $9.90 of its $10.00 monthly budget together, and this call "
                             "could cost up to $0.2000 (why); it was not sent")
    assert error.remedy == "wait"


def test_a_gateway_keys_spend_is_its_own(config_file: Path) -> None:
    with Ledger() as ledger:
        ledger.append(LedgerEntry("p", "counting", "c1", 1, 1, 0.25, 0.1, gateway_key="alice"))
        ledger.append(LedgerEntry("p", "counting", "c1", 1, 1, 0.5, 0.1, gateway_key="bob"))
        ledger.append(LedgerEntry("p", "counting", "c1", 1, 1, 1.0, 0.1))
    statuses = accounting.budget_status("alice", {"budget_usd_per_day": 2.0}, by="gateway_key")
    assert [(s.period, s.budget_usd, s.spent_usd) for s in statuses] == [("day", 2.0, 0.25)]
    assert [s.spent_usd for s in accounting.budget_status("p", {"budget_usd_per_month": 2.0})] == [1.75]


def test_a_routes_call_is_charged_to_the_member_that_answered(config_file: Path, counting: CountingPlugin) -> None:
    write_config(config_file, '[profiles.metered]\nbackend = "counting"\nprice_input_per_mtok = 1.0\n'
                 'price_output_per_mtok = 1.0\n[profiles.r]\nroute = "fallback"\nmembers = ["metered"]\n')
    resolved = Client().resolve("r")
    request = resolved.request("hello")
    result = resolved.answer_whole(request, books=accounting.Books(gateway_key="alice"))  # what serve passes
    list(result)  # the call charges itself when it ends (accounting.charge, through result.settle)
    assert result.cost is not None and result.cost.usd == pytest.approx(0.002)
    with Ledger() as ledger:
        rows = ledger.entries()
    assert [(r.profile, r.route, r.gateway_key, r.cost_usd) for r in rows] == [("metered", "r", "alice",
                                                                              pytest.approx(0.002))]
    plain = Client().resolve("metered")
    result = plain.answer_whole(plain.request("hello"))
    list(result)
    with Ledger() as ledger:
        assert len(ledger.entries()) == 2
        assert (ledger.entries()[-1].route, ledger.entries()[-1].gateway_key) == (None, None)


class RefusingPlugin:
    """A backend whose server is always overloaded (503)."""

    @hookimpl
    def llmswitch_backends(self) -> list[BackendInfo]:
        return [BackendInfo(name="refusing", summary="always 503", default_model="r1")]

    @hookimpl
    def complete(self, target: Target, request: Request) -> Response:
        from llmswitch.errors import BackendError

        raise BackendError("overloaded", status_code=503, backend="refusing")


def test_a_routes_failed_attempts_and_answer_go_to_the_ledger_given(config_file: Path, counting: CountingPlugin,
                                                                    tmp_path: Path) -> None:
    register_plugin(RefusingPlugin(), "refusing")
    try:
        write_config(config_file, '[profiles.down]\nbackend = "refusing"\n'
                     '[profiles.metered]\nbackend = "counting"\nprice_input_per_mtok = 1.0\n'
                     'price_output_per_mtok = 1.0\n[profiles.r]\nroute = "fallback"\nmembers = ["down", "metered"]\n'
                     "max_retries = 0\n")
        resolved = Client().resolve("r")
        request = resolved.request("hello")
        with Ledger(tmp_path / "gateway.sqlite3") as kept_open:
            result = resolved.answer_whole(request, books=accounting.Books(ledger=kept_open, gateway_key="alice"))
            list(result)
            rows = kept_open.entries()
    finally:
        unregister_plugin("refusing")
    assert [(r.profile, r.outcome, r.route, r.gateway_key, r.cost_usd) for r in rows] == [
        ("down", "backend", "r", "alice", None), ("metered", "ok", "r", "alice", pytest.approx(0.002))]
    with Ledger() as default:
        assert default.entries() == []  # all of it went to the ledger it was given


# ---- spend in the router state (shared when the state is) ----------------------------------------------------


def test_period_labels_name_the_local_day_and_month() -> None:
    noon = time.mktime((2026, 11, 28, 12, 0, 0, 0, 0, -1))
    assert accounting.period_label("day", noon) == "day:2026-11-28"
    assert accounting.period_label("month", noon) == "month:2026-11"
    assert accounting.period_label("day", time.mktime((2026, 1, 5, 0, 0, 1, 0, 0, -1))) == "day:2026-01-05"


def test_spend_goes_to_the_periods_its_time_falls_in() -> None:
    from llmswitch.router.state import LocalState

    state = LocalState()
    january = time.mktime((2026, 1, 5, 12, 0, 0, 0, 0, -1))
    accounting.add_spend(state, "p", 0.5, january)
    assert state.add_spend("p", 0.0, "day:2026-01-05") == state.add_spend("p", 0.0, "month:2026-01") == 0.5
    assert state.add_spend("p", 0.0, accounting.period_label("day")) == 0.0  # not today's
    settings = {"budget_usd_per_day": 1.0, "budget_usd_per_month": 5.0}
    assert [s.spent_usd for s in accounting.budget_status("p", settings, state=state, now=january)] == [0.5, 0.5]
    assert [s.spent_usd for s in accounting.budget_status("p", settings, state=state)] == [0.0, 0.0]


def test_a_charged_call_adds_to_the_states_totals_for_each_period(config_file: Path, counting: CountingPlugin) -> None:
    metered(config_file, max_tokens=1000)
    client = Client()
    Conversation(client, "metered").complete("hello")
    now = time.time()
    state = client.router_state
    assert state.add_spend("metered", 0.0, accounting.period_label("day", now)) == pytest.approx(0.002)
    assert state.add_spend("metered", 0.0, accounting.period_label("month", now)) == pytest.approx(0.002)
    assert state.add_spend("someone-else", 0.0, accounting.period_label("day", now)) == 0.0


def test_a_free_call_adds_nothing_to_the_state(config_file: Path, counting: CountingPlugin) -> None:
    write_config(config_file, '[profiles.free]\nbackend = "counting"\nprice_input_per_mtok = 0.0\n'
                 'price_output_per_mtok = 0.0\n')
    client = Client()
    Conversation(client, "free").complete("hello")
    assert client.router_state.add_spend("free", 0.0, accounting.period_label("day", time.time())) == 0.0


def test_the_budget_counts_the_larger_of_the_ledger_and_the_states_total(config_file: Path,
                                                                         counting: CountingPlugin) -> None:
    from llmswitch.router.state import LocalState

    settings = {"budget_usd_per_day": 1.0, "budget_usd_per_month": 5.0}
    state = LocalState()
    now = time.time()
    spend(0.25)
    assert [s.spent_usd for s in accounting.budget_status("metered", settings, state=state)] == \
        pytest.approx([0.25, 0.25])  # the ledger holds more than this state has seen
    accounting.add_spend(state, "metered", 0.5, now)  # other machines' calls, through a shared state
    state.add_spend("metered", 2.0, accounting.period_label("month", now))
    day, month = accounting.budget_status("metered", settings, state=state)
    assert (day.period, day.spent_usd) == ("day", pytest.approx(0.5))
    assert (month.period, month.spent_usd) == ("month", pytest.approx(2.5))
    assert [s.spent_usd for s in accounting.budget_status("metered", settings)] == pytest.approx([0.25, 0.25])


def test_a_call_the_shared_total_cannot_afford_is_refused(config_file: Path, counting: CountingPlugin) -> None:
    metered(config_file, budget_usd_per_day=0.01, max_tokens=1000)
    client = Client()
    accounting.add_spend(client.router_state, "metered", 0.009)  # spent elsewhere: not in this ledger
    with pytest.raises(BudgetExceededError) as caught:
        Conversation(client, "metered").stream("hello")
    assert "has spent $0.00900 of its $0.0100 daily budget" in caught.value.message
    assert counting.requests == []
