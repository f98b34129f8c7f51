"""The router's decisions without I/O: CallPlan told what happened, asked what follows (no sockets, no clock)."""

from __future__ import annotations

import random

import pytest

from llmswitch.errors import AuthError, BadResponseError, RateLimitError, UnreachableError
from llmswitch.router.plan import CallPlan, GiveUp, Try, Wait
from llmswitch.router.policy import RetryPolicy, verdict


def plan(members: list[str], *, spread: bool = False, **policy: object) -> CallPlan:
    return CallPlan(members, RetryPolicy(**policy), now=0.0, rng=random.Random(1), spread=spread)  # type: ignore[arg-type]


def overloaded() -> BadResponseError:
    return BadResponseError("overloaded", status_code=529)


def test_backoff_is_full_jitter_under_a_doubling_ceiling() -> None:
    policy = RetryPolicy(backoff_base_s=0.5, backoff_max_s=3.0)
    rng = random.Random(5)
    for retry, ceiling in ((0, 0.5), (1, 1.0), (2, 2.0), (3, 3.0), (6, 3.0)):
        waits = [policy.backoff(retry, rng) for _ in range(200)]
        assert min(waits) >= 0.0 and max(waits) <= ceiling
        assert max(waits) > ceiling * 0.8  # spread over the whole range, not a fixed wait


@pytest.mark.parametrize(("error", "expected"), [
    (RateLimitError("429", status_code=429), "retry"),
    (BadResponseError("503", status_code=503), "retry"),
    (BadResponseError("529", status_code=529), "retry"),
    (BadResponseError("408", status_code=408), "retry"),
    (UnreachableError("refused"), "retry"),
    (BadResponseError("400", status_code=400), "next"),
    (AuthError("401", status_code=401), "next"),
    (BadResponseError("too long", status_code=400), "next"),
    (RateLimitError("quota", status_code=429, retryable=False), "next"),
])
def test_what_is_retried(error: Exception, expected: str) -> None:
    assert verdict(error) == expected  # type: ignore[arg-type]


def test_retry_after_is_a_floor_for_the_wait() -> None:
    call = plan(["a"], backoff_base_s=0.01)
    assert call.next_step(0.0, {}) == Try("a")
    call.failed("a", RateLimitError("slow down", retry_after=4.0, status_code=429), 0.1, 0.1, text_shown=False)
    assert call.next_step(0.1, {}) == Wait(4.0)
    assert call.next_step(4.1, {}) == Try("a")
    assert call.events[0].message == "a: 429, retrying in 4.0 s (Retry-After)"


def test_a_retry_after_beyond_the_cap_moves_on() -> None:
    call = plan(["a", "b"], retry_after_max_s=10.0)
    call.next_step(0.0, {})
    call.failed("a", RateLimitError("slow down", retry_after=30.0, status_code=429), 0.1, 0.1, text_shown=False)
    assert call.next_step(0.1, {}) == Try("b")


def test_retries_are_capped_then_the_next_member_answers() -> None:
    call = plan(["a", "b"], max_retries=2, backoff_base_s=0.0)
    tries = []
    while True:
        step = call.next_step(0.0, {})
        if isinstance(step, Wait):
            continue
        assert isinstance(step, Try)
        tries.append(step.member)
        if step.member == "b":
            break
        call.failed("a", overloaded(), 0.1, 0.0, text_shown=False)
    assert tries == ["a", "a", "a", "b"]


def test_a_pool_moves_on_before_it_retries() -> None:
    call = plan(["a", "b"], spread=True)
    call.next_step(0.0, {})
    call.failed("a", overloaded(), 0.1, 0.1, text_shown=False)
    assert call.next_step(0.1, {}) == Try("b")


def test_the_deadline_stops_a_wait_that_would_pass_it() -> None:
    call = plan(["a"], timeout_total=5.0)
    call.next_step(0.0, {})
    call.failed("a", RateLimitError("slow down", retry_after=8.0, status_code=429), 0.1, 0.1, text_shown=False)
    step = call.next_step(0.1, {})
    assert isinstance(step, GiveUp) and "timeout_total = 5 s" in str(step.error)


def test_a_cooling_member_is_passed_over_while_another_is_not() -> None:
    call = plan(["a", "b"])
    assert call.next_step(0.0, {"a": 20.0, "b": 0.0}) == Try("b")
    assert call.events[0].message == "a is cooling down (20 s left); answering with b"


def test_when_every_member_cools_the_call_waits_for_the_first_back() -> None:
    call = plan(["a", "b"])
    assert call.next_step(0.0, {"a": 20.0, "b": 5.0}) == Wait(5.0)
    assert call.next_step(5.0, {"a": 15.0, "b": 0.0}) == Try("b")


def test_when_every_member_cools_past_the_cap_the_call_fails_saying_when() -> None:
    call = plan(["a", "b"], retry_after_max_s=10.0)
    step = call.next_step(0.0, {"a": 50.0, "b": 30.0})
    assert isinstance(step, GiveUp) and isinstance(step.error, RateLimitError)
    assert step.error.retry_after == 30.0 and "try again in 30 s" in (step.error.remedy or "")


def test_a_429_cools_for_the_longer_of_retry_after_and_the_cooldown() -> None:
    call = plan(["a", "b"], cooldown_s=30.0)
    call.next_step(0.0, {})
    assert call.failed("a", RateLimitError("x", retry_after=90.0, status_code=429), 0.1, 0.1,
                       text_shown=False) == 90.0
    call2 = plan(["a", "b"], cooldown_s=30.0)
    call2.next_step(0.0, {})
    assert call2.failed("a", RateLimitError("x", retry_after=2.0, status_code=429), 0.1, 0.1,
                        text_shown=False) == 30.0


def test_a_failure_after_text_is_final_unless_replay_is_opted_in() -> None:
    call = plan(["a", "b"])
    call.next_step(0.0, {})
    call.failed("a", overloaded(), 0.1, 0.1, text_shown=True)
    assert isinstance(call.next_step(0.1, {}), GiveUp)
    replaying = plan(["a", "b"], replay_after_text=True, max_retries=0)
    replaying.next_step(0.0, {})
    replaying.failed("a", overloaded(), 0.1, 0.1, text_shown=True)
    assert replaying.next_step(0.1, {}) == Try("b")
