"""Where the router keeps what it must remember between calls: cooldowns, failure counts, calls in flight,
rate-limit windows and spend.

:class:`RouterState` is the contract; :class:`LocalState` keeps everything in this process (the default) and
``llmswitch_redis``-style implementations share it across processes and machines. The router never holds
any of this itself, so swapping the state shares every rule at once.

Semantics every implementation must keep (``tests/router_state_contract.py`` checks them; run it against a
new implementation by giving its fixture a factory):

- **Time.** An implementation takes a ``clock`` (a callable returning epoch seconds, ``time.time`` by
  default) and reads the time only through it, also when the work happens elsewhere (a Redis script gets the
  caller's ``now`` as an argument). Windows are *sliding*: an entry recorded at ``t`` counts while
  ``now < t + window_s``.
- **Keys.** ``member`` and ``key`` are opaque strings chosen by the router (``"rpm:vllm-a"``); an
  implementation may prefix them (a Redis namespace) but must not interpret them. Different keys never share
  anything.
- **Atomicity.** Each method is one atomic step: two callers (threads, tasks, processes) can never both be
  admitted past a limit by racing; ``try_enter``/``try_take`` check and record in one step.
- **Twins.** Each method has an ``a``-prefixed async twin with the same arguments, result and semantics;
  a sync method may be called from a worker thread while the twin runs on a loop.
- **Failure.** A shared implementation whose store is unreachable must not raise out of these methods:
  it warns once and answers from a :class:`LocalState` of its own (the router then keeps working, per
  process).

Which state a router uses comes from the config's ``[router] state``: absent or ``"local"`` is
:class:`LocalState`; a ``redis://``, ``rediss://`` or ``unix://`` URL loads ``llmswitch.router.redis_state``
(only then: ``--help`` never imports a Redis client) and calls ``RedisState.from_url(url, clock=clock)``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol, runtime_checkable

Clock = Callable[[], float]


@runtime_checkable
class RouterState(Protocol):
    """The router's memory. See the module docstring for the rules every method follows."""

    # ---- cooldowns and failures ---------------------------------------------------------------------------

    def cooldown_until(self, member: str) -> float:
        """Epoch seconds until which ``member`` is cooling, or 0.0 when it is not (an expired cooldown is 0.0)."""
        ...

    def cool(self, member: str, seconds: float) -> float:
        """Cool ``member`` for ``seconds`` from now, never shortening a cooldown already running: the new end
        is ``max(existing end, now + seconds)``. Returns that end (epoch seconds)."""
        ...

    def record_failure(self, member: str, window_s: float) -> int:
        """Record one failure of ``member`` now; return how many failures it had within the last ``window_s``
        seconds, this one included (older ones are forgotten)."""
        ...

    def clear_failures(self, member: str) -> None:
        """Forget ``member``'s failures (it answered): the next ``record_failure`` returns 1."""
        ...

    # ---- concurrency --------------------------------------------------------------------------------------

    def try_enter(self, key: str, limit: int) -> bool:
        """Count one more call in flight under ``key`` if fewer than ``limit`` are; True when it was counted.
        Every True must be paired with one :meth:`leave`."""
        ...

    def leave(self, key: str) -> None:
        """One call under ``key`` finished; the count never goes below zero."""
        ...

    def in_flight(self, key: str) -> int:
        """How many calls are in flight under ``key`` (0 for a key never entered)."""
        ...

    # ---- rate windows (rpm, tpm) --------------------------------------------------------------------------

    def try_take(self, key: str, amount: float, limit: float, window_s: float) -> float:
        """Take ``amount`` from a sliding window of ``window_s`` seconds that admits at most ``limit`` in any
        window. Returns 0.0 when taken (recorded at now), else the seconds until enough of the window expires
        for ``amount`` to fit (> 0; nothing recorded). An ``amount`` above ``limit`` is taken only when the
        window is empty, so a large call waits for a quiet window rather than forever."""
        ...

    def settle(self, key: str, reserved: float, actual: float, window_s: float) -> None:
        """Replace one earlier ``try_take`` of ``reserved`` under ``key`` (the newest still in the window) by
        ``actual``, keeping its time: a token reservation of input + max_tokens settled with the real usage.
        When no such entry is left in the window (it expired) nothing changes. ``actual`` may exceed
        ``reserved``."""
        ...

    # ---- spend --------------------------------------------------------------------------------------------

    def add_spend(self, key: str, usd: float, period: str) -> float:
        """Add ``usd`` to ``key``'s spend in ``period`` and return the total for that period. ``period`` is an
        opaque label chosen by the caller (``"day:2026-11-28"``, ``"month:2026-11"``); ``usd=0`` only reads.
        A total is kept at least 32 days after it was last added to."""
        ...

    # ---- async twins --------------------------------------------------------------------------------------

    async def acooldown_until(self, member: str) -> float: ...
    async def acool(self, member: str, seconds: float) -> float: ...
    async def arecord_failure(self, member: str, window_s: float) -> int: ...
    async def aclear_failures(self, member: str) -> None: ...
    async def atry_enter(self, key: str, limit: int) -> bool: ...
    async def aleave(self, key: str) -> None: ...
    async def ain_flight(self, key: str) -> int: ...
    async def atry_take(self, key: str, amount: float, limit: float, window_s: float) -> float: ...
    async def asettle(self, key: str, reserved: float, actual: float, window_s: float) -> None: ...
    async def aadd_spend(self, key: str, usd: float, period: str) -> float: ...

    def close(self) -> None:
        """Release connections (nothing for local state). The state is not used afterwards."""
        ...


class LocalState:
    """:class:`RouterState` in this process: one lock guards everything, so threads and asyncio tasks (which
    never await while holding it) see each step as atomic. Nothing here blocks for long, so the async twins
    call the sync methods directly."""

    def __init__(self, clock: Clock = time.time) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._cool: dict[str, float] = {}
        self._failures: dict[str, deque[float]] = {}
        self._flight: dict[str, int] = {}
        self._windows: dict[str, deque[list[float]]] = {}  # key -> [[time, amount], ...], oldest first
        self._spend: dict[tuple[str, str], float] = {}

    # ---- cooldowns and failures ---------------------------------------------------------------------------

    def cooldown_until(self, member: str) -> float:
        with self._lock:
            until = self._cool.get(member, 0.0)
            return until if until > self.clock() else 0.0

    def cool(self, member: str, seconds: float) -> float:
        with self._lock:
            until = max(self._cool.get(member, 0.0), self.clock() + seconds)
            self._cool[member] = until
            return until

    def record_failure(self, member: str, window_s: float) -> int:
        with self._lock:
            now = self.clock()
            times = self._failures.setdefault(member, deque())
            times.append(now)
            while times and times[0] <= now - window_s:
                times.popleft()
            return len(times)

    def clear_failures(self, member: str) -> None:
        with self._lock:
            self._failures.pop(member, None)

    # ---- concurrency --------------------------------------------------------------------------------------

    def try_enter(self, key: str, limit: int) -> bool:
        with self._lock:
            count = self._flight.get(key, 0)
            if count >= limit:
                return False
            self._flight[key] = count + 1
            return True

    def leave(self, key: str) -> None:
        with self._lock:
            self._flight[key] = max(0, self._flight.get(key, 0) - 1)

    def in_flight(self, key: str) -> int:
        with self._lock:
            return self._flight.get(key, 0)

    # ---- rate windows -------------------------------------------------------------------------------------

    def _window(self, key: str, now: float, window_s: float) -> deque[list[float]]:
        entries = self._windows.setdefault(key, deque())
        while entries and entries[0][0] <= now - window_s:
            entries.popleft()
        return entries

    def try_take(self, key: str, amount: float, limit: float, window_s: float) -> float:
        with self._lock:
            now = self.clock()
            entries = self._window(key, now, window_s)
            used = sum(amount_ for _, amount_ in entries)
            if used + amount <= limit or not entries:
                entries.append([now, amount])
                return 0.0
            # The earliest moment enough old entries have left the window for this amount to fit.
            need = used if amount > limit else used + amount - limit
            freed = 0.0
            for at, taken in entries:
                freed += taken
                if freed >= need:
                    return max(at + window_s - now, 1e-6)
            return max(entries[-1][0] + window_s - now, 1e-6)

    def settle(self, key: str, reserved: float, actual: float, window_s: float) -> None:
        with self._lock:
            entries = self._window(key, self.clock(), window_s)
            for entry in reversed(entries):
                if entry[1] == reserved:
                    entry[1] = actual
                    return

    # ---- spend --------------------------------------------------------------------------------------------

    def add_spend(self, key: str, usd: float, period: str) -> float:
        with self._lock:
            total = self._spend.get((key, period), 0.0) + usd
            self._spend[(key, period)] = total
            return total

    # ---- async twins: nothing here waits, so they are the sync steps --------------------------------------

    async def acooldown_until(self, member: str) -> float:
        return self.cooldown_until(member)

    async def acool(self, member: str, seconds: float) -> float:
        return self.cool(member, seconds)

    async def arecord_failure(self, member: str, window_s: float) -> int:
        return self.record_failure(member, window_s)

    async def aclear_failures(self, member: str) -> None:
        self.clear_failures(member)

    async def atry_enter(self, key: str, limit: int) -> bool:
        return self.try_enter(key, limit)

    async def aleave(self, key: str) -> None:
        self.leave(key)

    async def ain_flight(self, key: str) -> int:
        return self.in_flight(key)

    async def atry_take(self, key: str, amount: float, limit: float, window_s: float) -> float:
        return self.try_take(key, amount, limit, window_s)

    async def asettle(self, key: str, reserved: float, actual: float, window_s: float) -> None:
        self.settle(key, reserved, actual, window_s)

    async def aadd_spend(self, key: str, usd: float, period: str) -> float:
        return self.add_spend(key, usd, period)

    def close(self) -> None:
        pass


SHARED_SCHEMES = ("redis://", "rediss://", "unix://")


_opened: dict[str, RouterState] = {}
_opening = threading.Lock()


def shared_local_state() -> RouterState:
    """The process's one :class:`LocalState`: every client in the process sees the same cooldowns and limits."""
    return state_for(None)


def state_for(url: str | None) -> RouterState:
    """The process's one state for ``url`` (see :func:`open_state`), opened on first use."""
    key = url or "local"
    with _opening:
        state = _opened.get(key)
        if state is None:
            state = _opened[key] = open_state(url)
        return state


def forget_states() -> None:
    """Close and forget the process's states (tests start each from nothing)."""
    with _opening:
        for state in _opened.values():
            state.close()
        _opened.clear()


def open_state(url: str | None, clock: Clock = time.time) -> RouterState:
    """The state named by ``[router] state``: local by default, Redis for a Redis URL (imported only here)."""
    from llmswitch.errors import ConfigError

    if not url or url == "local":
        return LocalState(clock)
    if not url.startswith(SHARED_SCHEMES):
        raise ConfigError(f"[router] state = {url!r} is neither \"local\" nor a Redis URL",
                          remedy="use state = \"local\" (the default) or a URL such as \"redis://host:6379/0\"")
    try:
        from llmswitch.router.redis_state import RedisState
    except ImportError as exc:
        raise ConfigError(f"[router] state names Redis but its client is not installed ({exc})",
                          remedy="pip install 'llmswitch[redis]', or remove [router] state to keep state "
                          "in this process") from exc
    return RedisState.from_url(url, clock=clock)  # type: ignore[no-any-return]
