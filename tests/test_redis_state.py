"""Router state shared through a real redis-server: the RouterState contract, leases, and Redis going away."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmswitch.router.state import LocalState, RouterState, open_state
from llmswitch.testing.redis_server import RedisServer
from tests.router_state_contract import *  # noqa: F403
from tests.router_state_contract import FakeClock

redis = pytest.importorskip("redis")  # llmswitch[redis], installed by scripts/install.sh --test

from llmswitch.router.redis_state import RedisState, public_address  # noqa: E402


@pytest.fixture
def make_state(redis_server: RedisServer) -> Iterator[Callable[[FakeClock], RouterState]]:
    made: list[RedisState] = []

    def make(clock: FakeClock) -> RouterState:
        made.append(RedisState.from_url(redis_server.url, clock=clock))
        return made[-1]

    yield make
    for state in made:
        state.close()
        assert state.outages == 0, "the state fell back to local state: the contract was not tested on Redis"


def _raw(server: RedisServer) -> redis.Redis:
    return redis.Redis.from_url(server.url, decode_responses=True)


def _dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again: nothing listens there


# ---- shared across processes (two states are two processes as far as Redis can tell) -------------------------


def test_two_states_on_one_redis_share_limits_cooldowns_and_spend(
    two_states: tuple[FakeClock, RedisState, RedisState],
) -> None:
    _, first, second = two_states
    assert first.try_take("rpm:a", 1, 2, 60.0) == 0.0
    assert second.try_take("rpm:a", 1, 2, 60.0) == 0.0
    assert first.try_take("rpm:a", 1, 2, 60.0) == pytest.approx(60.0)
    assert first.try_enter("flight:a", 1) is True
    assert second.try_enter("flight:a", 1) is False
    assert second.in_flight("flight:a") == 1
    until = first.cool("a", 30.0)
    assert second.cooldown_until("a") == pytest.approx(until)
    assert second.record_failure("a", 60.0) == 1
    assert first.record_failure("a", 60.0) == 2
    first.add_spend("route", 0.25, "day:2026-11-28")
    assert second.add_spend("route", 0.5, "day:2026-11-28") == pytest.approx(0.75)


def test_keys_live_under_the_llmswitch_namespace_and_hold_no_secret(redis_server: RedisServer) -> None:
    state = RedisState.from_url(redis_server.url)
    try:
        state.cool("claude", 10.0)
        state.record_failure("claude", 10.0)
        assert state.try_enter("flight:claude", 2)
        state.try_take("tpm:claude", 120, 1000, 60.0)
        state.add_spend("claude", 0.01, "day:2026-11-28")
        raw = _raw(redis_server)
        keys = sorted(raw.keys("*"))
        assert keys == ["llmswitch:cool:claude", "llmswitch:fail:claude", "llmswitch:flight:flight:claude",
                        "llmswitch:spend:claude", "llmswitch:window-total:tpm:claude", "llmswitch:window:tpm:claude"]
        # Every key expires by itself: nothing piles up in a shared Redis.
        assert all(raw.pttl(key) > 0 for key in keys)
        assert 31 * 86400 < raw.ttl("llmswitch:spend:claude") <= 32 * 86400
    finally:
        state.close()


def test_floats_survive_the_trip_through_lua_exactly(redis_server: RedisServer) -> None:
    """Every answer is the very double LocalState computes: nothing is rounded on the way through Lua."""

    def run(state: RouterState, clock: FakeClock) -> list[float]:
        answers = [state.cool("m", 0.1), state.add_spend("k", 0.1, "p"), state.add_spend("k", 0.2, "p"),
                   state.try_take("w", 0.3, 0.3, 60.0)]
        clock.advance(0.000001)
        answers += [state.try_take("w", 0.3, 0.3, 60.0), state.cooldown_until("m")]
        state.settle("w", 0.3, 0.1 + 0.2, 60.0)
        answers.append(state.try_take("w", 0.3 - 1e-17, 0.6, 60.0))
        return answers

    local_clock, shared_clock = FakeClock(1_800_000_000.123456), FakeClock(1_800_000_000.123456)
    shared = RedisState.from_url(redis_server.url, clock=shared_clock)
    try:
        expected = run(LocalState(local_clock), local_clock)
        assert run(shared, shared_clock) == expected
        assert expected[2] == 0.1 + 0.2 and expected[4] > 59.9
    finally:
        shared.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.sampled_from(["take", "settle", "advance", "drop-total"]),
                                st.integers(1, 400), st.integers(0, 400)), max_size=40))
def test_a_window_answers_as_local_state_does_whatever_the_sequence(redis_server: RedisServer,
                                                                     steps: list[tuple[str, int, int]]) -> None:
    """The window's running total (kept beside it, so a take is not a sum over the window) never drifts from
    what LocalState computes by summing: same answers for any sequence of takes, settlements and time passing,
    also when the total key has gone missing."""
    local_clock, shared_clock = FakeClock(), FakeClock()
    local = LocalState(local_clock)
    shared = RedisState.from_url(redis_server.url, clock=shared_clock, namespace=f"t{uuid.uuid4().hex}")
    try:
        for kind, amount, other in steps:
            if kind == "take":
                assert shared.try_take("tpm", amount, 1000, 60.0) == local.try_take("tpm", amount, 1000, 60.0)
            elif kind == "settle":
                shared.settle("tpm", amount, other, 60.0)
                local.settle("tpm", amount, other, 60.0)
            elif kind == "advance":
                local_clock.advance(other / 10)
                shared_clock.advance(other / 10)
            else:
                _raw(redis_server).delete(f"{shared.namespace}:window-total:tpm")
        assert shared.try_take("tpm", 1000, 1000, 60.0) == local.try_take("tpm", 1000, 1000, 60.0)
    finally:
        shared.close()


def test_a_take_does_not_cost_a_sum_over_the_whole_window(redis_server: RedisServer) -> None:
    state = RedisState.from_url(redis_server.url, clock=FakeClock())
    try:
        for _ in range(5000):
            assert state.try_take("rpm", 1, 1_000_000, 60.0) == 0.0
        raw = _raw(redis_server)
        raw.config_set("slowlog-log-slower-than", "0")
        raw.config_set("slowlog-max-len", "1000")
        raw.slowlog_reset()
        for _ in range(50):
            state.try_take("rpm", 1, 1_000_000, 60.0)
        durations = [entry["duration"] for entry in raw.slowlog_get(1000) if "EVALSHA" in str(entry["command"])]
        assert len(durations) == 50, raw.slowlog_get(1000)[:3]
        # Summing 5000 entries in Lua takes milliseconds; a take with the running total, microseconds.
        assert sorted(durations)[25] < 500, durations
    finally:
        state.close()


def test_a_caller_whose_clock_reads_earlier_is_counted_at_the_newest_time(redis_server: RedisServer) -> None:
    """Two callers' steps reach Redis out of the order of their clocks (or one machine's clock is behind): the
    later step must not count a window that misses what the earlier one pruned."""
    ahead, behind = FakeClock(99.0002), FakeClock(100.000)
    first = RedisState.from_url(redis_server.url, clock=ahead)
    second = RedisState.from_url(redis_server.url, clock=behind)
    try:
        assert first.try_take("rpm", 1, 2, 1.0) == 0.0  # at 99.0002
        ahead.advance(0.0001)
        assert first.try_take("rpm", 1, 2, 1.0) == 0.0  # at 99.0003
        ahead.now = 100.001
        assert first.try_take("rpm", 1, 2, 1.0) == 0.0  # both earlier ones have left its window
        # The second caller's clock says 100.000: counted there, the window (99.000, 100.000] would hold three.
        assert second.try_take("rpm", 1, 2, 1.0) == 0.0
        scores = [score for _, score in _raw(redis_server).zrange("llmswitch:window:rpm", 0, -1, withscores=True)]
        assert scores == [100.001, 100.001]
        assert second.try_take("rpm", 1, 2, 1.0) == pytest.approx(1.0 + 0.001)  # and the wait counts from there
    finally:
        first.close()
        second.close()


# ---- leases: a dead process does not keep its places ----------------------------------------------------------


@pytest.fixture
def two_states(redis_server: RedisServer) -> Iterator[tuple[FakeClock, RedisState, RedisState]]:
    """Two processes, as far as Redis can tell, on one fake clock."""
    clock = FakeClock()
    first, second = (RedisState.from_url(redis_server.url, clock=clock, lease_s=30.0) for _ in range(2))
    yield clock, first, second
    first.close()
    second.close()


def test_a_place_held_by_a_killed_process_is_free_once_its_lease_expires(redis_server: RedisServer) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from llmswitch.router.redis_state import RedisState\n"
         "state = RedisState.from_url(sys.argv[1], lease_s=1.0)\n"
         "assert state.try_enter('k', 1)\n"
         "print('entered', flush=True)\n"
         "time.sleep(60)\n", redis_server.url],
        stdout=subprocess.PIPE, text=True)
    other = RedisState.from_url(redis_server.url)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "entered"
        time.sleep(1.5)  # longer than the lease: the live holder renews it
        assert other.try_enter("k", 1) is False
        holder.kill()  # SIGKILL: it never leaves
        holder.wait()
        killed = time.monotonic()
        while not other.try_enter("k", 1):
            assert time.monotonic() - killed < 5.0, "the dead process kept its place"
            time.sleep(0.05)
        assert time.monotonic() - killed <= 1.5  # one lease at most
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        other.close()


def test_a_lease_expires_one_lease_after_its_last_renewal(
    two_states: tuple[FakeClock, RedisState, RedisState],
) -> None:
    clock, holder, other = two_states
    assert holder.try_enter("k", 1) is True
    for _ in range(5):  # a long stream: 100 s, renewed every 20 s as the keeper thread would
        clock.advance(20.0)
        assert holder.renew_leases() == 1
        assert other.try_enter("k", 1) is False
    clock.advance(29.0)  # the holder stops renewing (it died)
    assert other.in_flight("k") == 1
    clock.advance(1.5)
    assert other.in_flight("k") == 0
    assert other.try_enter("k", 1) is True


def test_the_keeper_thread_renews_leases_in_real_time(redis_server: RedisServer) -> None:
    holder = RedisState.from_url(redis_server.url, lease_s=0.6)
    other = RedisState.from_url(redis_server.url, lease_s=0.6)
    try:
        assert holder.try_enter("k", 1) is True
        raw = _raw(redis_server)
        first_expiry = raw.zrange("llmswitch:flight:k", 0, -1, withscores=True)[0][1]
        end = time.monotonic() + 5
        while time.monotonic() < end:  # wait for a renewal, not a fixed time
            if raw.zrange("llmswitch:flight:k", 0, -1, withscores=True)[0][1] > first_expiry:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the lease was never renewed")
        time.sleep(0.8)  # past the first lease's end: still held, since it was renewed
        assert other.try_enter("k", 1) is False
    finally:
        holder.close()
        other.close()


def test_closing_gives_the_places_back_at_once(two_states: tuple[FakeClock, RedisState, RedisState]) -> None:
    _, first, second = two_states
    assert first.try_enter("k", 2) and first.try_enter("k", 2)
    assert second.try_enter("k", 2) is False
    first.close()
    assert second.in_flight("k") == 0
    assert second.try_enter("k", 2) is True


def test_leave_gives_back_only_this_process_places(two_states: tuple[FakeClock, RedisState, RedisState]) -> None:
    _, first, second = two_states
    assert first.try_enter("k", 5)
    second.leave("k")  # it holds nothing there: nothing changes
    assert first.in_flight("k") == 1
    first.leave("k")
    assert second.in_flight("k") == 0


# ---- Redis unreachable or dying: one warning, local state, never a crash ---------------------------------------


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]


def test_an_unreachable_redis_gives_one_warning_and_local_state(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    state = RedisState.from_url(f"redis://:hunter2secret@127.0.0.1:{_dead_port()}/0", clock=clock)
    try:
        with caplog.at_level(logging.WARNING):
            assert state.try_enter("k", 1) is True
            assert state.try_enter("k", 1) is False  # local state still enforces the limit
            assert state.try_take("rpm", 1, 1, 60.0) == 0.0
            assert state.try_take("rpm", 1, 1, 60.0) == pytest.approx(60.0)
            assert state.cool("m", 5.0) == pytest.approx(clock.now + 5.0)
            assert state.cooldown_until("m") == pytest.approx(clock.now + 5.0)
            assert state.record_failure("m", 10.0) == 1
            assert state.add_spend("k", 0.5, "p") == 0.5
            state.leave("k")
            assert state.in_flight("k") == 0

            async def twins() -> float:
                assert await state.atry_enter("k", 1) is True
                await state.aleave("k")
                return await state.atry_take("rpm", 1, 1, 60.0)

            assert asyncio.run(twins()) == pytest.approx(60.0)
        warnings = _warnings(caplog)
        assert len(warnings) == 1, warnings
        assert "Redis at 127.0.0.1:" in warnings[0] and "unreachable" in warnings[0]
        assert "in this process" in warnings[0]
        assert "hunter2secret" not in caplog.text
    finally:
        state.close()


def test_redis_dying_mid_run_falls_back_and_comes_back(redis_server: RedisServer,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    state = RedisState.from_url(redis_server.url, clock=clock, reconnect_s=0.2)
    other = RedisState.from_url(redis_server.url, clock=clock, reconnect_s=0.2)
    try:
        with caplog.at_level(logging.WARNING):
            assert state.try_take("rpm", 1, 2, 60.0) == 0.0
            assert state.try_enter("k", 1) is True
            redis_server.stop()
            for _ in range(3):
                state.try_take("rpm", 1, 2, 60.0)  # answered locally, never raised
            assert len(_warnings(caplog)) == 1
            state.leave("k")  # the lease was in Redis: it expires by itself
            assert asyncio.run(state.atry_enter("k2", 1)) is True  # a local place ...
            redis_server.start()
            time.sleep(0.25)
            assert other.try_enter("k2", 1) is True  # ... not seen by the other process
            state.leave("k2")  # goes back to local state, where it was taken
            assert state.try_take("rpm", 1, 1, 60.0) == 0.0  # shared again: a fresh Redis
            assert other.try_take("rpm", 1, 1, 60.0) == pytest.approx(60.0)
        warnings = _warnings(caplog)
        assert len(warnings) == 2, warnings
        assert "answers again" in warnings[1]
    finally:
        state.close()
        other.close()


def test_a_redis_that_never_answers_costs_a_call_about_a_second_once(caplog: pytest.LogCaptureFixture) -> None:
    # A server that accepts the connection and never replies: the socket timeout, not a hang.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        state = RedisState.from_url(f"redis://127.0.0.1:{port}/0", timeout_s=0.3)
        try:
            started = time.monotonic()
            with caplog.at_level(logging.WARNING):
                assert state.try_enter("k", 1) is True
            first = time.monotonic() - started
            started = time.monotonic()
            for _ in range(20):
                state.try_take("rpm", 1, 100, 60.0)
            later = time.monotonic() - started
        finally:
            state.close()
    assert first < 2.0
    assert later < 0.5  # no more waiting on Redis until it is tried again
    assert len(_warnings(caplog)) == 1


def test_the_address_in_messages_never_carries_the_password() -> None:
    assert public_address("redis://user:s3cret@cache.internal:6380/2") == "cache.internal:6380/2"
    assert public_address("rediss://:s3cret@cache.internal") == "cache.internal:6379/0"
    assert public_address("unix:///run/redis.sock?db=1") == "/run/redis.sock"


def test_open_state_gives_redis_state_for_a_redis_url(redis_server: RedisServer) -> None:
    state = open_state(redis_server.url)
    try:
        assert isinstance(state, RedisState)
        assert state.try_take("rpm", 1, 1, 60.0) == 0.0
    finally:
        state.close()


def test_a_redis_that_refuses_scripts_is_named_as_refusing_not_unreachable(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture,
) -> None:
    # A user whose ACL forbids scripts: the server answers, and says no.
    _raw(redis_server).acl_setuser("limited", enabled=True, passwords=["+limitedpass1"], keys=["*"],
                                   commands=["+@all", "-evalsha", "-eval", "-script"])
    state = RedisState.from_url(f"redis://limited:limitedpass1@127.0.0.1:{redis_server.port}/0")
    try:
        with caplog.at_level(logging.WARNING):
            assert state.try_take("rpm", 1, 1, 60.0) == 0.0
            assert state.try_take("rpm", 1, 1, 60.0) > 0.0  # local state keeps the limit
        warnings = _warnings(caplog)
        assert len(warnings) == 1, warnings
        assert "refused router state" in warnings[0] and "unreachable" not in warnings[0]
        assert "limitedpass1" not in caplog.text
    finally:
        state.close()
