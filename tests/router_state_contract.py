"""The contract every :class:`llmswitch.router.state.RouterState` keeps, as tests any implementation runs.

Use it from a test module by defining a ``make_state`` fixture (a factory taking a clock) and importing the
tests::

    from tests.router_state_contract import *  # noqa: F403  (the tests, FakeClock)

    @pytest.fixture
    def make_state():
        return lambda clock: LocalState(clock)

Time is a :class:`FakeClock` the tests move by hand: nothing here sleeps or depends on the machine's speed.
Every test runs the sync method and its async twin on separate keys, so both forms are held to one rule.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

from llmswitch.router.state import RouterState

__all__ = [
    "FakeClock", "call", "clock", "state", "form",
    "test_is_a_router_state",
    "test_cooldown_is_zero_until_set_and_after_it_expires",
    "test_cool_extends_and_never_shortens",
    "test_failures_are_counted_within_the_window_only",
    "test_clear_failures_starts_the_count_again",
    "test_try_enter_admits_up_to_the_limit_and_leave_frees_a_place",
    "test_leave_never_goes_below_zero",
    "test_keys_are_independent",
    "test_try_take_admits_up_to_the_limit_in_any_window",
    "test_try_take_wait_is_when_enough_of_the_window_expires",
    "test_an_amount_above_the_limit_waits_for_an_empty_window",
    "test_settle_replaces_a_reservation_with_the_real_amount",
    "test_settle_after_the_reservation_expired_changes_nothing",
    "test_spend_adds_per_key_and_period",
    "test_threads_racing_never_pass_the_concurrency_limit",
    "test_threads_racing_never_pass_the_rate_limit",
    "test_tasks_racing_never_pass_the_concurrency_limit",
]


class FakeClock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state(make_state: Callable[[FakeClock], RouterState], clock: FakeClock) -> Any:
    made = make_state(clock)
    yield made
    made.close()


@pytest.fixture(params=["sync", "async"])
def form(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def call(state: RouterState, form: str, method: str, *args: Any) -> Any:
    """``state.method(*args)``, or its async twin run to completion."""
    if form == "sync":
        return getattr(state, method)(*args)
    return asyncio.run(getattr(state, "a" + method)(*args))


def test_is_a_router_state(state: RouterState) -> None:
    assert isinstance(state, RouterState)


def test_cooldown_is_zero_until_set_and_after_it_expires(state: RouterState, clock: FakeClock, form: str) -> None:
    assert call(state, form, "cooldown_until", "m") == 0.0
    until = call(state, form, "cool", "m", 30.0)
    assert until == pytest.approx(clock.now + 30.0)
    assert call(state, form, "cooldown_until", "m") == pytest.approx(until)
    clock.advance(29.5)
    assert call(state, form, "cooldown_until", "m") == pytest.approx(until)
    clock.advance(0.6)
    assert call(state, form, "cooldown_until", "m") == 0.0


def test_cool_extends_and_never_shortens(state: RouterState, clock: FakeClock, form: str) -> None:
    first = call(state, form, "cool", "m", 60.0)
    assert call(state, form, "cool", "m", 10.0) == pytest.approx(first)  # shorter: the longer one stands
    clock.advance(55.0)
    extended = call(state, form, "cool", "m", 30.0)  # a failure while cooling extends it
    assert extended == pytest.approx(clock.now + 30.0)
    assert call(state, form, "cooldown_until", "m") == pytest.approx(extended)


def test_failures_are_counted_within_the_window_only(state: RouterState, clock: FakeClock, form: str) -> None:
    assert call(state, form, "record_failure", "m", 10.0) == 1
    clock.advance(4.0)
    assert call(state, form, "record_failure", "m", 10.0) == 2
    clock.advance(7.0)  # the first is now 11 s old
    assert call(state, form, "record_failure", "m", 10.0) == 2
    assert call(state, form, "record_failure", "other", 10.0) == 1


def test_clear_failures_starts_the_count_again(state: RouterState, form: str) -> None:
    call(state, form, "record_failure", "m", 60.0)
    call(state, form, "record_failure", "m", 60.0)
    call(state, form, "clear_failures", "m")
    assert call(state, form, "record_failure", "m", 60.0) == 1


def test_try_enter_admits_up_to_the_limit_and_leave_frees_a_place(state: RouterState, form: str) -> None:
    assert call(state, form, "in_flight", "k") == 0
    assert [call(state, form, "try_enter", "k", 2) for _ in range(3)] == [True, True, False]
    assert call(state, form, "in_flight", "k") == 2
    call(state, form, "leave", "k")
    assert call(state, form, "in_flight", "k") == 1
    assert call(state, form, "try_enter", "k", 2) is True
    assert call(state, form, "try_enter", "k", 2) is False


def test_leave_never_goes_below_zero(state: RouterState, form: str) -> None:
    call(state, form, "leave", "k")
    assert call(state, form, "in_flight", "k") == 0
    assert call(state, form, "try_enter", "k", 1) is True
    assert call(state, form, "try_enter", "k", 1) is False


def test_keys_are_independent(state: RouterState, form: str) -> None:
    assert call(state, form, "try_enter", "a", 1) is True
    assert call(state, form, "try_enter", "b", 1) is True
    assert call(state, form, "try_take", "a", 1, 1, 60.0) == 0.0
    assert call(state, form, "try_take", "b", 1, 1, 60.0) == 0.0
    call(state, form, "cool", "a", 10.0)
    assert call(state, form, "cooldown_until", "b") == 0.0
    assert call(state, form, "add_spend", "a", 1.0, "day:1") == pytest.approx(1.0)
    assert call(state, form, "add_spend", "b", 0.0, "day:1") == 0.0


def test_try_take_admits_up_to_the_limit_in_any_window(state: RouterState, clock: FakeClock, form: str) -> None:
    for _ in range(3):
        assert call(state, form, "try_take", "rpm", 1, 3, 60.0) == 0.0
        clock.advance(10.0)
    wait = call(state, form, "try_take", "rpm", 1, 3, 60.0)  # at t=30: the first leaves at t=60
    assert wait == pytest.approx(30.0)
    clock.advance(29.0)
    assert call(state, form, "try_take", "rpm", 1, 3, 60.0) == pytest.approx(1.0)
    clock.advance(1.0)
    assert call(state, form, "try_take", "rpm", 1, 3, 60.0) == 0.0
    assert call(state, form, "try_take", "rpm", 1, 3, 60.0) > 0.0  # a refusal records nothing, a take does


def test_try_take_wait_is_when_enough_of_the_window_expires(state: RouterState, clock: FakeClock, form: str) -> None:
    assert call(state, form, "try_take", "tpm", 400, 1000, 60.0) == 0.0
    clock.advance(10.0)
    assert call(state, form, "try_take", "tpm", 500, 1000, 60.0) == 0.0
    clock.advance(10.0)
    # 900 used; 300 more needs the first 400 gone (t=60), 700 more needs both gone (t=70)
    assert call(state, form, "try_take", "tpm", 300, 1000, 60.0) == pytest.approx(40.0)
    assert call(state, form, "try_take", "tpm", 700, 1000, 60.0) == pytest.approx(50.0)
    assert call(state, form, "try_take", "tpm", 100, 1000, 60.0) == 0.0


def test_an_amount_above_the_limit_waits_for_an_empty_window(state: RouterState, clock: FakeClock, form: str) -> None:
    assert call(state, form, "try_take", "tpm", 10, 100, 60.0) == 0.0
    clock.advance(5.0)
    assert call(state, form, "try_take", "tpm", 500, 100, 60.0) == pytest.approx(55.0)
    clock.advance(55.0)
    assert call(state, form, "try_take", "tpm", 500, 100, 60.0) == 0.0
    assert call(state, form, "try_take", "tpm", 1, 100, 60.0) > 0.0


def test_settle_replaces_a_reservation_with_the_real_amount(state: RouterState, clock: FakeClock, form: str) -> None:
    assert call(state, form, "try_take", "tpm", 800, 1000, 60.0) == 0.0
    assert call(state, form, "try_take", "tpm", 300, 1000, 60.0) > 0.0
    call(state, form, "settle", "tpm", 800, 150, 60.0)  # the answer used far less than reserved
    assert call(state, form, "try_take", "tpm", 300, 1000, 60.0) == 0.0
    clock.advance(30.0)
    call(state, form, "settle", "tpm", 300, 900, 60.0)  # and more than reserved: counted at its own time
    assert call(state, form, "try_take", "tpm", 100, 1000, 60.0) == pytest.approx(30.0)  # 1050 until t=60


def test_settle_after_the_reservation_expired_changes_nothing(state: RouterState, clock: FakeClock, form: str) -> None:
    assert call(state, form, "try_take", "tpm", 100, 1000, 60.0) == 0.0
    clock.advance(61.0)
    call(state, form, "settle", "tpm", 100, 5000, 60.0)
    assert call(state, form, "try_take", "tpm", 1000, 1000, 60.0) == 0.0


def test_spend_adds_per_key_and_period(state: RouterState, form: str) -> None:
    assert call(state, form, "add_spend", "route", 0.0, "day:2026-11-28") == 0.0
    assert call(state, form, "add_spend", "route", 0.25, "day:2026-11-28") == pytest.approx(0.25)
    assert call(state, form, "add_spend", "route", 0.5, "day:2026-11-28") == pytest.approx(0.75)
    assert call(state, form, "add_spend", "route", 0.1, "day:2026-11-29") == pytest.approx(0.1)
    assert call(state, form, "add_spend", "route", 0.0, "day:2026-11-28") == pytest.approx(0.75)


def _race(workers: int, work: Callable[[], None]) -> None:
    start = threading.Barrier(workers)

    def run() -> None:
        start.wait()
        work()

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_threads_racing_never_pass_the_concurrency_limit(state: RouterState) -> None:
    admitted: list[bool] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(20):
            entered = state.try_enter("k", 5)
            with lock:
                admitted.append(entered)

    _race(8, work)
    assert admitted.count(True) == 5
    assert state.in_flight("k") == 5


def test_threads_racing_never_pass_the_rate_limit(state: RouterState) -> None:
    taken: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(25):
            wait = state.try_take("rpm", 1, 50, 60.0)
            with lock:
                taken.append(wait)

    _race(8, work)
    assert taken.count(0.0) == 50
    assert all(wait > 0.0 for wait in taken if wait != 0.0)


def test_tasks_racing_never_pass_the_concurrency_limit(state: RouterState) -> None:
    async def one() -> bool:
        await asyncio.sleep(0)
        return bool(await state.atry_enter("k", 3))

    async def main() -> list[bool]:
        return list(await asyncio.gather(*(one() for _ in range(40))))

    assert asyncio.run(main()).count(True) == 3
    assert state.in_flight("k") == 3
