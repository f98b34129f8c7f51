"""The router's rules one at a time, without sockets or a clock: the retry policy (`router.policy`), a call's
plan (`router.plan`: attempts, retries, fallbacks, cooldowns, room under rate limits, the deadline, and the
sentences it says), and admission under rate limits (`router.limits`) against the real in-process state.
Each exact rule here was once a surviving mutant; the behaviour end to end is in test_router_routes.py,
test_router_retries.py and test_router_limits.py."""

from __future__ import annotations

import asyncio
import random

import pytest

from llmswitch.errors import (
    AuthError,
    BackendError,
    BackendTimeoutError,
    BadResponseError,
    BudgetExceededError,
    ConfigError,
    ContextLengthError,
    LLMSwitchError,
    RateLimitError,
    UnreachableError,
)
from llmswitch.router.limits import (
    RESERVED_OUTPUT,
    Admission,
    Busy,
    Held,
    Limits,
    aadmit,
    admit,
    arelease,
    release,
    reserved_tokens,
    used_tokens,
)
from llmswitch.router.plan import Attempt, CallPlan, GiveUp, RouterEvent, Try, Wait, describe
from llmswitch.router.policy import RetryPolicy, outcome_name, retry_after, verdict
from llmswitch.router.state import LocalState
from llmswitch.types import Message, Request, Usage


def plan(members: list[str], *, spread: bool = False, cools: bool = True, now: float = 0.0,
         **policy: object) -> CallPlan:
    return CallPlan(members, RetryPolicy(**policy), now=now, rng=random.Random(1), spread=spread,  # type: ignore[arg-type]
                    cools=cools)


def overloaded(message: str = "overloaded") -> BadResponseError:
    return BadResponseError(message, status_code=529)


def limited(retry_after_s: float | None = None) -> RateLimitError:
    return RateLimitError("slow down", retry_after=retry_after_s, status_code=429)


# ---- the policy ----------------------------------------------------------------------------------------------


def test_a_policy_takes_the_settings_it_knows_and_keeps_defaults_for_the_rest() -> None:
    assert RetryPolicy() == RetryPolicy(max_retries=2, backoff_base_s=0.5, backoff_max_s=8.0, retry_after_max_s=60.0,
                                        timeout_total=None, replay_after_text=False, cooldown_s=30.0,
                                        cooldown_failures=3, cooldown_window_s=60.0)
    policy = RetryPolicy.from_settings({"max_retries": 0, "timeout_total": None, "cooldown_s": 5.0, "model": "x"})
    assert policy == RetryPolicy(max_retries=0, cooldown_s=5.0)


def test_backoff_draws_uniformly_up_to_the_doubled_ceiling() -> None:
    policy = RetryPolicy(backoff_base_s=0.5, backoff_max_s=3.0)
    for retry, ceiling in ((0, 0.5), (1, 1.0), (2, 2.0), (3, 3.0)):
        assert policy.backoff(retry, random.Random(7)) == random.Random(7).uniform(0.0, ceiling)


@pytest.mark.parametrize(("error", "expected"), [
    (BudgetExceededError("over budget"), "next"),
    (ConfigError("bad setting"), "next"),
    (BadResponseError("bad request, but the server says retry", status_code=400, retryable=True), "retry"),
    (BadResponseError("conflict", status_code=409), "retry"),
    (BadResponseError("server error", status_code=500), "retry"),
    (BadResponseError("bad gateway", status_code=502), "retry"),
    (BadResponseError("gateway timeout", status_code=504), "retry"),
    (BackendTimeoutError("timed out"), "retry"),
    (BadResponseError("not found", status_code=404), "next"),
    (BadResponseError("no status"), "next"),
])
def test_what_is_retried_and_what_moves_on(error: LLMSwitchError, expected: str) -> None:
    assert verdict(error) == expected


def test_any_backend_error_carries_the_servers_wait_and_outcomes_name_the_status_or_kind() -> None:
    assert retry_after(limited(3.0)) == 3.0 and retry_after(overloaded()) is None
    assert retry_after(BadResponseError("busy", status_code=503, retry_after=4.0)) == 4.0
    assert retry_after(BadResponseError("overloaded", status_code=529, retry_after=0.5)) == 0.5
    assert retry_after(ConfigError("x")) is None
    assert outcome_name(None) == "ok"
    assert outcome_name(overloaded()) == "529" == describe(overloaded())
    assert outcome_name(UnreachableError("refused")) == "unreachable"
    assert outcome_name(ConfigError("x")) == "config"


# ---- a plan: attempts and what it says ---------------------------------------------------------------------


def test_an_attempt_as_a_dictionary_rounds_its_latency() -> None:
    assert Attempt("a", "ok", 0.123456, None, "openai", "m").as_dict() == \
        {"member": "a", "outcome": "ok", "status": None, "latency_s": 0.1235}
    assert Attempt("a", "bad_response", 1.0, 529).as_dict()["status"] == 529


def test_a_plan_tries_each_member_once_in_order_and_has_no_deadline_by_default() -> None:
    call = plan(["a", "b", "a"])
    assert call.order == ["a", "b"] and call.deadline is None
    assert plan(["a"], timeout_total=0).deadline is None
    assert plan(["a"], timeout_total=5.0, now=100.0).deadline == 105.0


def test_success_and_failure_are_recorded_as_attempts() -> None:
    call = plan(["a", "b"], max_retries=0)
    assert call.next_step(0.0, {}) == Try("a")
    call.failed("a", overloaded(), 0.5, 0.5, text_shown=False, backend="openai", model="m")
    assert call.next_step(0.5, {}) == Try("b")
    call.succeeded("b", 0.25, backend="anthropic", model="c")
    assert call.attempts == [Attempt("a", "bad_response", 0.5, 529, "openai", "m"),
                             Attempt("b", "ok", 0.25, None, "anthropic", "c")]
    assert call.events == [RouterEvent("fallback", "a", "a: 529; answering with b", None, "529", to_member="b")]
    assert call.failed("b", UnreachableError("refused"), 0.1, 0.6, text_shown=False) is None
    assert call.attempts[-1] == Attempt("b", "unreachable", 0.1, None, None, None)


def test_the_last_error_names_every_attempt_when_there_were_several() -> None:
    call = plan(["a", "b"], max_retries=0)
    call.next_step(0.0, {})
    call.failed("a", overloaded("first"), 0.1, 0.1, text_shown=False)
    call.next_step(0.1, {})
    call.failed("b", UnreachableError("down"), 0.1, 0.2, text_shown=False)
    step = call.next_step(0.2, {})
    assert isinstance(step, GiveUp) and isinstance(step.error, UnreachableError)
    assert str(step.error) == "down (after 2 attempts: a 529, b unreachable)"
    alone = plan(["a"], max_retries=0)
    alone.next_step(0.0, {})
    alone.failed("a", AuthError("bad key", status_code=401), 0.1, 0.1, text_shown=False)
    step = alone.next_step(0.1, {})
    assert isinstance(step, GiveUp) and str(step.error) == "bad key"  # one attempt: nothing to add


def test_a_failure_after_text_ends_the_call_and_says_why() -> None:
    call = plan(["a", "b"])
    call.next_step(0.0, {})
    assert call.failed("a", limited(), 0.1, 0.1, text_shown=True) == 30.0  # a 429 still cools the member
    assert call.events[-1] == RouterEvent(
        "give_up", "a", "a failed after its answer had begun (429); the text so far is kept and not asked again "
        "(replay_after_text = true would)")
    assert isinstance(call.next_step(0.1, {}), GiveUp)


# ---- a plan: retries ---------------------------------------------------------------------------------------


def test_a_retry_waits_the_backoff_and_says_so() -> None:
    call = plan(["a"], backoff_base_s=1.0)
    call.next_step(0.0, {})
    assert call.failed("a", overloaded(), 0.1, 0.1, text_shown=False) is None  # not a rate limit: no cooldown
    expected = random.Random(1).uniform(0.0, 1.0)
    assert call.next_step(0.1, {}) == Wait(expected)
    assert call.events == [RouterEvent("retry", "a", f"a: 529, retrying in {expected:.1f} s", expected, "529")]
    assert call.next_step(0.1 + expected, {}) == Try("a")
    call.failed("a", overloaded(), 0.1, 2.0, text_shown=False)
    second = call.next_step(2.0, {})
    assert isinstance(second, Wait) and 0.0 <= second.seconds <= 2.0  # the second retry's ceiling doubled


def test_a_retry_after_shorter_than_the_backoff_is_not_called_honoured() -> None:
    call = plan(["a"], backoff_base_s=8.0, backoff_max_s=8.0, cooldown_s=0.0)
    call.next_step(0.0, {})
    call.failed("a", limited(0.0), 0.1, 0.1, text_shown=False)
    step = call.next_step(0.1, {})
    assert isinstance(step, Wait) and step.seconds == random.Random(1).uniform(0.0, 8.0)
    assert "(Retry-After)" not in call.events[0].message
    exact = plan(["a"], backoff_base_s=0.0)
    exact.next_step(0.0, {})
    exact.failed("a", limited(0.0), 0.1, 0.1, text_shown=False)  # equal to the backoff: the server's wait
    assert exact.next_step(0.1, {}) == Try("a")  # no wait at all: tried again at once
    assert exact.events[0].message == "a: 429, retrying in 0.0 s (Retry-After)"


def test_a_retry_after_at_the_cap_is_waited_and_beyond_it_is_not() -> None:
    call = plan(["a"], retry_after_max_s=10.0, backoff_base_s=0.0)
    call.next_step(0.0, {})
    call.failed("a", limited(10.0), 0.1, 0.1, text_shown=False)
    assert call.next_step(0.1, {}) == Wait(10.0)
    beyond = plan(["a"], retry_after_max_s=10.0, backoff_base_s=0.0)
    beyond.next_step(0.0, {})
    beyond.failed("a", limited(10.5), 0.1, 0.1, text_shown=False)
    assert isinstance(beyond.next_step(0.1, {}), GiveUp)


def test_no_retry_may_end_at_the_deadline() -> None:
    call = plan(["a"], timeout_total=5.0, backoff_base_s=0.0)
    call.next_step(0.0, {})
    call.failed("a", limited(4.0), 0.1, 1.0, text_shown=False)  # would start again exactly at the deadline
    step = call.next_step(1.0, {})
    assert isinstance(step, GiveUp) and isinstance(step.error, BackendTimeoutError)
    assert str(step.error) == "no answer within timeout_total = 5 s (attempts: a 429; the last: slow down)"
    assert step.error.remedy == "raise timeout_total in the profile, or add a faster member to the route"
    inside = plan(["a"], timeout_total=5.0, backoff_base_s=0.0)
    inside.next_step(0.0, {})
    inside.failed("a", limited(3.9), 0.1, 1.0, text_shown=False)
    assert inside.next_step(1.0, {}) == Wait(3.9)


def test_the_deadline_ends_the_call_at_its_very_moment() -> None:
    call = plan(["a"], timeout_total=2.5)
    step = call.next_step(2.5, {})
    assert isinstance(step, GiveUp)
    assert str(step.error) == "no answer within timeout_total = 2.5 s (attempts: none finished)"
    assert plan(["a"], timeout_total=2.5).next_step(2.49, {}) == Try("a")


def test_an_unreachable_member_is_left_at_once_when_another_can_answer() -> None:
    call = plan(["a", "b"])
    call.next_step(0.0, {})
    call.failed("a", UnreachableError("refused"), 0.1, 0.1, text_shown=False)
    assert call.next_step(0.1, {}) == Try("b")
    call.failed("b", UnreachableError("refused"), 0.1, 0.2, text_shown=False)  # the last one: retried
    assert isinstance(call.next_step(0.2, {}), Wait)


def test_a_pools_last_member_is_retried_before_giving_up() -> None:
    call = plan(["a"], spread=True, backoff_base_s=0.0)
    call.next_step(0.0, {})
    call.failed("a", overloaded(), 0.1, 0.1, text_shown=False)
    assert call.next_step(0.1, {}) == Try("a")
    assert [event.kind for event in call.events] == ["retry"]


# ---- a plan: cooldowns -------------------------------------------------------------------------------------


def test_a_rate_limit_cools_for_the_cooldown_or_the_servers_longer_wait() -> None:
    call = plan(["a", "b"], cooldown_s=30.0)
    assert call.failed("a", limited(), 0.1, 0.1, text_shown=False) == 30.0
    assert call.failed("a", limited(45.0), 0.1, 0.1, text_shown=False) == 45.0
    kind_only = RateLimitError("quota", status_code=None)
    assert call.failed("a", kind_only, 0.1, 0.1, text_shown=False) == 30.0
    assert call.failed("a", overloaded(), 0.1, 0.1, text_shown=False) is None
    direct = plan(["a"], cools=False)
    assert direct.failed("a", limited(45.0), 0.1, 0.1, text_shown=False) is None


def test_a_fallback_moves_on_from_a_member_its_failure_cooled_unless_no_other_is_ready() -> None:
    call = plan(["a", "b"], backoff_base_s=0.0)
    call.next_step(0.0, {})
    call.failed("a", limited(3.0), 0.1, 0.1, text_shown=False)
    assert call.next_step(0.1, {"a": 30.0, "b": 0.0}) == Try("b")
    assert [event.message for event in call.events] == ["a: 429; answering with b"]
    waiting = plan(["a", "b"], backoff_base_s=0.0)
    waiting.next_step(0.0, {})
    waiting.failed("a", limited(3.0), 0.1, 0.1, text_shown=False)
    assert waiting.next_step(0.1, {"a": 30.0, "b": 10.0}) == Wait(3.0)  # b is cooling too: the server's wait
    assert waiting.next_step(3.1, {"a": 27.0, "b": 7.0}) == Try("a")
    not_cooled = plan(["a", "b"], backoff_base_s=0.0)
    not_cooled.next_step(0.0, {})
    not_cooled.failed("a", overloaded(), 0.1, 0.1, text_shown=False)
    assert not_cooled.next_step(0.1, {"a": 0.0, "b": 0.0}) == Try("a")  # a fallback's order is a preference


def test_each_member_retries_and_cools_by_its_own_policy_and_the_call_keeps_the_routes_deadline() -> None:
    call = CallPlan(["a", "b"], RetryPolicy(max_retries=2, backoff_base_s=0.0, timeout_total=9.0), now=0.0,
                    rng=random.Random(1), policies={"a": RetryPolicy(max_retries=0, cooldown_s=4.0)})
    assert call.policy_of("b") == call.policy and call.deadline == 9.0
    call.next_step(0.0, {})
    assert call.failed("a", limited(), 0.1, 0.1, text_shown=False) == 4.0
    assert call.next_step(0.1, {}) == Try("b")
    call.failed("b", overloaded(), 0.1, 0.2, text_shown=False)
    assert call.next_step(0.2, {}) == Try("b")  # b retries by the route's policy


def test_a_plain_profile_never_waits_for_its_own_cooldown() -> None:
    direct = plan(["a"], cools=False)
    assert direct.next_step(0.0, {"a": 20.0}) == Try("a")
    assert direct.remaining() == []
    routed = plan(["a", "b"])
    assert routed.remaining() == ["a", "b"]


def test_a_member_cooling_for_no_time_is_tried() -> None:
    assert plan(["a", "b"]).next_step(0.0, {"a": 0.0, "b": 5.0}) == Try("a")


def test_a_skipped_member_is_not_one_that_is_cooling_or_has_no_room() -> None:
    call = plan(["a", "b", "c"])
    call.busy("b", "rpm", 10.0, 0.0)
    assert call.next_step(0.0, {"a": 20.0, "b": 0.0, "c": 0.0}) == Try("c")
    assert call.order == ["c", "a", "b"]
    assert call.events[0] == RouterEvent("skip", "a", "a is cooling down (20 s left); answering with c", 20.0)


def test_when_all_cool_the_wait_is_for_the_soonest_and_then_it_is_tried() -> None:
    call = plan(["a", "b", "c"])
    assert call.next_step(0.0, {"a": 20.0, "b": 5.0, "c": 7.5}) == Wait(5.0)
    assert call.events[0] == RouterEvent("wait", "b", "every member is cooling down; waiting 5.0 s for b", 5.0)
    assert call.next_step(5.0, {"a": 15.0, "b": 0.5, "c": 2.5}) == Try("b")  # the wait was for it


def test_when_all_cool_past_the_cap_or_the_deadline_the_call_fails_saying_when() -> None:
    call = plan(["a", "b", "c"], retry_after_max_s=10.0, max_retries=0)
    assert call.next_step(0.0, {}) == Try("a")
    call.failed("a", limited(), 0.1, 0.1, text_shown=False)
    step = call.next_step(0.1, {"b": 50.0, "c": 30.0})
    assert isinstance(step, GiveUp) and isinstance(step.error, RateLimitError)
    assert str(step.error) == "every member is cooling down: b, c (last failure: slow down)"
    assert step.error.remedy == "try again in 30 s, or add a member to the route"
    assert step.error.retry_after == 30.0
    fresh = plan(["a", "b"], retry_after_max_s=10.0)
    step = fresh.next_step(0.0, {"a": 50.0, "b": 30.0})
    assert isinstance(step, GiveUp) and str(step.error) == "every member is cooling down: a, b"
    at_cap = plan(["a"], retry_after_max_s=10.0)
    assert at_cap.next_step(0.0, {"a": 10.0}) == Wait(10.0)
    deadline = plan(["a"], timeout_total=5.0)
    assert isinstance(deadline.next_step(1.0, {"a": 4.5}), GiveUp)
    assert plan(["a"], timeout_total=5.0).next_step(1.0, {"a": 4.0}) == Wait(4.0)


# ---- a plan: room under rate limits ------------------------------------------------------------------------


def test_a_member_without_room_hands_over_to_one_with_room() -> None:
    call = plan(["a", "b", "c"])
    call.busy("a", "rpm", 10.0, 0.0)
    call.busy("b", "tpm", 10.0, 0.0)
    assert call.next_step(0.0, {}) == Try("c")
    assert call.order == ["c", "a", "b"] and call.events == []


def test_a_member_with_room_but_cooling_is_passed_over_unless_cooldowns_do_not_apply() -> None:
    call = plan(["a", "b"])
    call.busy("a", "rpm", 0.5, 0.0)
    assert isinstance(call.next_step(0.0, {"b": 9.0}), Wait)  # b has room but cools: not tried now
    direct = plan(["a", "b"], cools=False)
    direct.busy("a", "rpm", 0.5, 0.0)
    assert direct.next_step(0.0, {"b": 9.0}) == Try("b")


def test_without_room_anywhere_the_call_waits_for_the_first_and_says_so_past_a_second() -> None:
    call = plan(["a", "b"])
    call.busy("a", "rpm", 3.0, 0.0)
    call.busy("b", "tpm", 2.0, 0.0)
    assert call.next_step(0.0, {}) == Wait(2.0)
    assert call.order == ["b", "a"]
    assert call.events == [RouterEvent("wait", "b", "b is at its tpm limit; waiting 2.0 s for room", 2.0)]
    assert call.next_step(2.0, {}) == Try("b")


def test_short_waits_for_room_are_said_once_they_add_up_past_a_second() -> None:
    call = plan(["a"])
    for now in (0.0, 0.6):
        call.busy("a", "max_concurrent", 0.6, now)
        assert call.next_step(now, {}) == Wait(pytest.approx(0.6))
    assert [event.message for event in call.events] == ["a is at its max_concurrent limit; waiting 0.6 s for room"]
    call.busy("a", "max_concurrent", 0.6, 1.2)
    assert call.next_step(1.2, {}) == Wait(pytest.approx(0.6))
    assert len(call.events) == 1  # said once, when the total first passed a second
    quiet = plan(["a"])
    quiet.busy("a", "rpm", 1.0, 0.0)
    assert quiet.next_step(0.0, {}) == Wait(1.0) and quiet.events == []


def test_room_that_comes_after_the_deadline_ends_the_call_naming_the_limit() -> None:
    call = plan(["a"], timeout_total=5.0)
    call.busy("a", "rpm", 6.0, 0.0)
    step = call.next_step(0.0, {})
    assert isinstance(step, GiveUp)
    assert str(step.error) == ("no answer within timeout_total = 5 s (attempts: none finished; a had no room under "
                               "its rpm limit)")
    assert isinstance(call.next_step(0.0, {}), GiveUp)  # and stays ended
    exact = plan(["a"], timeout_total=5.0)
    exact.busy("a", "rpm", 5.0, 0.0)
    assert exact.next_step(0.0, {}) == Wait(5.0)


def test_room_now_is_room() -> None:
    call = plan(["a"])
    call.busy("a", "rpm", 1.0, 0.0)
    assert call.next_step(1.0, {}) == Try("a")


# ---- limits against the in-process state -------------------------------------------------------------------


def request(*texts: str, system: str | None = None, max_tokens: int | None = None) -> Request:
    return Request(messages=tuple(Message("user", text) for text in texts), system=system, max_tokens=max_tokens)


def test_a_reservation_is_a_quarter_of_the_characters_plus_four_a_message_plus_the_output_limit() -> None:
    assert reserved_tokens(request("x" * 40, "y" * 40, system="z" * 20, max_tokens=100)) == 25 + 8 + 100
    assert reserved_tokens(request("", max_tokens=1)) == 1 + 4 + 1
    assert reserved_tokens(request("abcdef")) == 2 + 4 + RESERVED_OUTPUT == 1030
    assert used_tokens(Usage(10, 5), 99.0) == 15.0 and used_tokens(Usage(None, None), 99.0) == 99.0


def test_limits_are_read_from_the_settings() -> None:
    assert Limits.of({"max_concurrent": 2, "rpm": 60, "tpm": 1000, "other": 1}) == Limits(2, 60, 1000)
    assert Limits.of({}) == Limits(None, None, None)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("form", ["sync", "async"])
def test_admission_under_each_limit_and_what_a_refusal_gives_back(form: str) -> None:
    clock = Clock()
    state = LocalState(clock)

    def enter(name: str, settings: dict[str, int], ask: Request) -> Admission | Busy:
        gates = [(name, settings)]
        return admit(state, gates, ask) if form == "sync" else asyncio.run(aadmit(state, gates, ask))

    def leave(admission: Admission, usage: Usage) -> None:
        release(state, admission, usage) if form == "sync" else asyncio.run(arelease(state, admission, usage))

    ask = request("x" * 40, max_tokens=10)  # 10 + 4 + 10 = 24 tokens reserved
    free = enter("free", {}, ask)
    assert free == Admission((Held("free"),)) and state.in_flight("flight:free") == 1
    leave(free, Usage(5, 5))
    assert state.in_flight("flight:free") == 0

    one = enter("one", {"max_concurrent": 1}, ask)
    assert isinstance(one, Admission)
    assert enter("one", {"max_concurrent": 1}, ask) == Busy("max_concurrent", 0.05, "one")
    assert state.in_flight("flight:one") == 1

    assert isinstance(enter("rpm", {"rpm": 1}, ask), Admission)
    refused = enter("rpm", {"rpm": 1}, ask)
    assert isinstance(refused, Busy) and refused.limit == "rpm" and 59.0 <= refused.wait_s <= 60.0
    assert state.in_flight("flight:rpm") == 1  # the refused call gave its place back

    tokens = enter("tpm", {"tpm": 50}, ask)
    assert tokens == Admission((Held("tpm", False, 24, 50),))
    assert isinstance(enter("tpm", {"tpm": 50}, ask), Admission)  # 48 of 50
    refused = enter("tpm", {"tpm": 50}, ask)
    assert isinstance(refused, Busy) and refused.limit == "tpm" and refused.wait_s > 0
    assert state.in_flight("flight:tpm") == 2
    assert isinstance(tokens, Admission)
    leave(tokens, Usage(1, 1))  # settled at 2 tokens: 26 of 50 used, room for another 24
    assert state.in_flight("flight:tpm") == 1
    assert isinstance(enter("tpm", {"tpm": 50}, ask), Admission)

    assert isinstance(enter("both", {"rpm": 5, "tpm": 30}, ask), Admission)
    assert isinstance(enter("both", {"rpm": 5, "tpm": 30}, ask), Busy)  # refused by tpm after rpm admitted it
    assert state.try_take("rpm:both", 4, 5, 60.0) == 0.0  # so its request place was given back too


@pytest.mark.parametrize("form", ["sync", "async"])
def test_a_call_passes_every_gate_or_holds_nothing(form: str) -> None:
    state = LocalState(Clock())
    ask = request("x" * 40, max_tokens=10)
    gates = [("member", {"rpm": 5, "tpm": 100}), ("route", {"max_concurrent": 1})]

    def enter() -> Admission | Busy:
        return admit(state, gates, ask) if form == "sync" else asyncio.run(aadmit(state, gates, ask))

    held = enter()
    assert held == Admission((Held("member", True, 24, 100), Held("route")))
    assert enter() == Busy("max_concurrent", 0.05, "route")  # the route is full: the member gives back all
    assert state.in_flight("flight:member") == 1 and state.in_flight("flight:route") == 1
    assert state.try_take("rpm:member", 4, 5, 60.0) == 0.0  # one request of five taken, not two
    assert state.try_take("tpm:member", 76, 100, 60.0) == 0.0  # 24 tokens reserved, not 48
    assert isinstance(held, Admission)
    if form == "sync":
        release(state, held, Usage(1, 1))
    else:
        asyncio.run(arelease(state, held, Usage(1, 1)))
    assert state.in_flight("flight:member") == state.in_flight("flight:route") == 0


def test_a_refusal_by_rate_keeps_no_place_when_concurrency_is_also_limited() -> None:
    state = LocalState(Clock())
    ask = request("hello")
    gates = [("both", {"max_concurrent": 5, "rpm": 1})]
    assert isinstance(admit(state, gates, ask), Admission)
    for _ in range(3):
        assert isinstance(admit(state, gates, ask), Busy)
    assert state.in_flight("flight:both") == 1


def test_every_error_the_policy_judges_is_an_llmswitch_error() -> None:
    assert issubclass(BackendError, LLMSwitchError)


# ---- the edges: members without a cooldown given, short cooldowns, and what a wait counts as ---------------


def test_a_member_the_driver_gives_no_cooldown_for_is_not_cooling() -> None:
    assert plan(["a", "b"]).next_step(0.0, {"a": 20.0}) == Try("b")


def test_a_cooldown_under_a_second_still_counts() -> None:
    assert plan(["a", "b"]).next_step(0.0, {"a": 0.5, "b": 0.0}) == Try("b")
    assert plan(["a", "b"]).next_step(0.0, {"a": 20.0, "b": 0.5}) == Wait(0.5)
    call = plan(["a", "b"])
    call.busy("a", "rpm", 3.0, 0.0)
    assert call.next_step(0.0, {"b": 0.5}) != Try("b")  # room, but cooling for half a second


def test_with_every_member_cooling_or_busy_the_call_waits_for_the_first_ready() -> None:
    call = plan(["a", "b"])
    call.busy("b", "rpm", 3.0, 0.0)
    assert call.next_step(0.0, {"a": 20.0}) == Wait(3.0)  # b has room in 3 s, a cools for 20: no 0 s spin
    assert call.order == ["b", "a"]
    assert call.next_step(3.0, {"a": 17.0}) == Try("b")
    cooler = plan(["a", "b"])
    cooler.busy("b", "rpm", 30.0, 0.0)
    assert cooler.next_step(0.0, {"a": 2.0}) == Wait(2.0)  # a's cooldown ends first this time
    assert cooler.next_step(2.0, {"a": 0.1}) == Try("a")  # the wait was for it



def test_after_waiting_out_a_cooldown_the_member_keeps_the_rest_of_its_retries() -> None:
    call = plan(["a", "b"], max_retries=2, backoff_base_s=0.0)
    assert call.next_step(0.0, {"a": 20.0, "b": 5.0}) == Wait(5.0)
    assert call.next_step(5.0, {"a": 15.0, "b": 0.0}) == Try("b")
    call.failed("b", overloaded(), 0.1, 5.1, text_shown=False)
    assert call.next_step(5.1, {"a": 15.0}) == Try("b")  # one retry counted for the wait, one left


def test_a_member_already_tried_never_answers_for_one_without_room() -> None:
    call = plan(["a", "b", "c"], max_retries=0)
    assert call.next_step(0.0, {}) == Try("a")
    call.failed("a", AuthError("bad key", status_code=401), 0.1, 0.1, text_shown=False)
    call.busy("b", "rpm", 3.0, 0.1)
    assert call.next_step(0.1, {}) == Try("c")
    assert call.order == ["a", "c", "b"]


def test_each_wait_for_room_over_a_second_is_said() -> None:
    call = plan(["a"])
    for now in (0.0, 1.5):
        call.busy("a", "rpm", 1.5, now)
        assert call.next_step(now, {}) == Wait(1.5)
    assert len(call.events) == 2


def test_a_429_of_any_kind_cools_and_a_zero_cooldown_is_zero() -> None:
    call = plan(["a", "b"], cooldown_s=7.0)
    assert call.failed("a", BadResponseError("too many", status_code=429), 0.1, 0.1, text_shown=False) == 7.0
    free = plan(["a", "b"], cooldown_s=0.0)
    assert free.failed("a", limited(), 0.1, 0.1, text_shown=False) == 0.0


def test_the_deadline_error_lists_every_attempt() -> None:
    call = plan(["a", "b"], timeout_total=5.0, max_retries=0)
    call.next_step(0.0, {})
    call.failed("a", overloaded(), 1.0, 1.0, text_shown=False)
    call.next_step(1.0, {})
    call.failed("b", UnreachableError("refused"), 1.0, 2.0, text_shown=False)
    call._index = 0  # asked again before the driver gives up: the deadline, not the last error, ends it
    step = call.next_step(5.0, {})
    assert isinstance(step, GiveUp)
    assert str(step.error) == "no answer within timeout_total = 5 s (attempts: a 529, b unreachable; the last: refused)"


def test_a_plan_with_no_member_says_so() -> None:
    step = plan([]).next_step(0.0, {})
    assert isinstance(step, GiveUp) and str(step.error) == "the route has no member to try"


@pytest.mark.parametrize("form", ["sync", "async"])
def test_each_profile_has_its_own_request_count_and_a_request_counts_once(form: str) -> None:
    state = LocalState(Clock())

    def enter(name: str, settings: dict[str, int]) -> Admission | Busy:
        ask = request("hi")
        gates = [(name, settings)]
        return admit(state, gates, ask) if form == "sync" else asyncio.run(aadmit(state, gates, ask))

    assert isinstance(enter("one", {"rpm": 1}), Admission)
    assert isinstance(enter("two", {"rpm": 1}), Admission)  # another profile's minute is its own
    assert isinstance(enter("three", {"rpm": 2}), Admission)
    assert isinstance(enter("three", {"rpm": 2}), Admission)
    assert isinstance(enter("three", {"rpm": 2}), Busy)


@pytest.mark.parametrize("form", ["sync", "async"])
def test_a_call_without_usage_keeps_its_whole_reservation(form: str) -> None:
    state = LocalState(Clock())
    ask = request("x" * 40, max_tokens=10)  # 24 tokens
    first = admit(state, [("t", {"tpm": 50})], ask)
    assert isinstance(first, Admission)
    release(state, first, Usage()) if form == "sync" else asyncio.run(arelease(state, first, Usage()))
    assert isinstance(admit(state, [("t", {"tpm": 50})], ask), Admission)  # 48 of 50
    assert isinstance(admit(state, [("t", {"tpm": 50})], ask), Busy)


def test_waits_for_room_that_reach_exactly_a_second_are_said_when_they_pass_it() -> None:
    call = plan(["a"])
    for step, now in enumerate((0.0, 0.5, 1.0)):
        call.busy("a", "rpm", 0.5, now)
        assert call.next_step(now, {}) == Wait(0.5)
        assert len(call.events) == (1 if step == 2 else 0)


def test_the_wait_is_for_the_member_ready_first_be_it_cooling_or_without_room() -> None:
    call = plan(["a", "b", "c"])
    call.busy("b", "rpm", 3.0, 0.0)
    assert call.next_step(0.0, {"a": 20.0, "c": 0.5}) == Wait(0.5)  # c cools for 0.5 s, b has room in 3 s
    assert call.order[0] == "c"
    assert call.next_step(0.5, {"a": 19.5, "c": 0.01}) == Try("c")


# ---- found by mutation testing: behaviours no test pinned ---------------------------------------------------


def test_an_attempt_never_timed_has_no_latency_in_its_dictionary() -> None:
    # A provider's batch job runs its requests some time within the job: its attempts carry no latency.
    assert Attempt("a", "ok", None).as_dict() == {"member": "a", "outcome": "ok", "status": None, "latency_s": None}


def test_a_refusal_under_tpm_names_whose_limit_it_is() -> None:
    state = LocalState(Clock())
    ask = request("x" * 40, max_tokens=10)  # 24 tokens reserved
    gates = [("member", {"tpm": 30})]
    assert isinstance(admit(state, gates, ask), Admission)
    refused = admit(state, gates, ask)
    assert isinstance(refused, Busy) and (refused.limit, refused.owner) == ("tpm", "member")


def test_a_member_cooling_for_under_a_second_is_said_to_be_passed_over() -> None:
    call = plan(["a", "b"])
    assert call.next_step(0.0, {"a": 0.4}) == Try("b")
    assert call.events == [RouterEvent("skip", "a", "a is cooling down (0 s left); answering with b", 0.4)]


def test_a_retry_of_the_member_being_tried_does_not_heed_its_own_cooldown() -> None:
    call = plan(["a", "b"], backoff_base_s=0.0)  # b cools longer than a: no one else is ready, so a is retried
    assert call.next_step(0.0, {}) == Try("a")
    assert call.failed("a", limited(1.0), 0.1, 0.1, text_shown=False) == 30.0  # a 429 cools a for 30 s
    assert call.next_step(0.1, {"a": 30.0, "b": 50.0}) == Wait(1.0)  # Retry-After, on the same member
    assert call.next_step(1.1, {"a": 29.0, "b": 49.0}) == Try("a")  # the retry it waited for, not 29 s more
    assert not [event for event in call.events if event.kind in ("skip", "wait")]


def test_after_a_context_length_failure_the_largest_windows_go_first_and_no_larger_ones_are_passed_over() -> None:
    windows = {"a": 8192, "same": 8192, "small": 4096, "big": 16384, "huge": 32768}
    call = CallPlan(["a", "same", "big", "unknown", "small", "huge"], RetryPolicy(), now=0.0, rng=random.Random(1),
                    windows=windows.get)
    assert call.next_step(0.0, {}) == Try("a")
    call.failed("a", ContextLengthError("too long"), 0.1, 0.1, text_shown=False)
    assert call.order == ["a", "huge", "big", "unknown"]  # larger ones, largest first; unknown ones after them
    assert [event for event in call.events if event.kind == "skip"] == [
        RouterEvent("skip", "same", "same is passed over: its context window (8,192 tokens) is no larger than a's "
                    "(8,192)"),
        RouterEvent("skip", "small", "small is passed over: its context window (4,096 tokens) is no larger than "
                    "a's (8,192)")]
    assert call.next_step(0.1, {}) == Try("huge")
    call.failed("huge", ContextLengthError("too long"), 0.1, 0.2, text_shown=False)
    assert call.next_step(0.2, {}) == Try("unknown")  # big is no larger than huge; a window not known is tried
