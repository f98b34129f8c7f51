"""Router state shared through Redis: ``[router] state = "redis://host:6379/0"``.

Many processes on many machines then obey one ``rpm``/``tpm``/``max_concurrent``/budget and see one cooldown.
This module is imported only when the config names a Redis URL (``llmswitch --help`` and a plain chat never
load a Redis client); the client is the optional extra ``llmswitch[redis]``.

Why Lua scripts and not the ``limits`` library: the router needs more than "hit or not" from a window. It needs
the seconds until enough of the window expires for a given amount (to wait or to prefer another member), a
reservation that is later settled with the real token count at its original time, amounts above the limit
taken from an empty window, in-flight leases and cooldowns that only ever extend. ``limits``' moving window
answers hit/miss for unit costs and knows none of the rest; its semantics would differ from
:class:`~llmswitch.router.state.LocalState`'s. Each operation here is one script, so one atomic step on the
server: two processes can never both pass a limit by racing. The scripts are registered once per client
(``EVALSHA``, sent again by redis-py on ``NOSCRIPT``) and shared by the sync (``redis.Redis``) and async
(``redis.asyncio``) clients.

Layout (``llmswitch:`` namespace; the router's keys and member names are profile names, never secrets):

- ``llmswitch:cool:<member>``: the cooldown's end, epoch seconds (expires with it).
- ``llmswitch:fail:<member>``: sorted set of failure times.
- ``llmswitch:flight:<key>``: sorted set of leases, scored by when each lease expires. A live process renews
  its leases every third of ``lease_s`` from a background thread; a killed one stops renewing, and its places
  are free again ``lease_s`` later (30 s by default) instead of leaking forever.
- ``llmswitch:window:<key>``: sorted set of ``amount|id`` entries scored by the time they were taken, and
  ``llmswitch:window-total:<key>`` their sum (a take costs the entries that expire, not a sum of the window).
- ``llmswitch:spend:<key>``: hash from period label to the total in USD (kept 32 days after the last add).

Time is the caller's clock (``clock``, ``time.time`` by default) sent to each script as ``now``, so every
implementation of the contract reads time one way; machines sharing a Redis should run NTP.

Redis unreachable, or dying mid-run: one warning on stderr, and the state answers from a
:class:`~llmswitch.router.state.LocalState` of its own (limits then hold per process). It tries Redis again
every ``reconnect_s`` seconds and says once when Redis answers again.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
import uuid
import weakref
from collections.abc import AsyncGenerator, Callable
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.asyncio
from redis.backoff import NoBackoff

from llmswitch.record import record
from llmswitch.router.state import Clock, LocalState

log = logging.getLogger(__name__)

NAMESPACE = "llmswitch"
SPEND_KEPT_S = 32 * 24 * 3600  # the contract: a total is kept at least 32 days after its last add

# Floats cross the Lua boundary as strings: a Lua number returned to Redis is truncated to an integer, and
# %.17g round-trips every double exactly.
_LUA_PRELUDE = """
local function fmt(x) return string.format('%.17g', x) end
local function amount_of(entry) return tonumber(string.match(entry, '^[^|]+')) end
local function keep_for(key, seconds) redis.call('PEXPIRE', key, math.ceil(seconds * 1000) + 1000) end
-- A window is a sorted set of `amount|id` scored by time, with its total beside it, so a take costs the entries
-- that expire rather than a sum over the whole window.
local function store_total(window, total_key, total, seconds)
  redis.call('SET', total_key, fmt(total))
  keep_for(window, seconds)
  keep_for(total_key, seconds)
end
-- `now` never goes back within a window: a caller whose clock reads a little earlier than the newest entry (its
-- step reached Redis after a later caller's, or its machine's clock is behind) is counted at the newest entry's
-- time. Otherwise it would prune less than the later caller did and count a window missing what that one
-- pruned, and the entries would not be in the order the steps ran: two calls could then pass a limit.
local function prune(window, total_key, now, seconds)
  local newest = redis.call('ZRANGE', window, -1, -1, 'WITHSCORES')
  if #newest > 0 and tonumber(newest[2]) > now then now = tonumber(newest[2]) end
  local cutoff = fmt(now - seconds)
  local expired = redis.call('ZRANGEBYSCORE', window, '-inf', cutoff)
  local count = redis.call('ZCARD', window) - #expired
  local stored = redis.call('GET', total_key)
  local used = 0
  if count == 0 then
    used = 0
  elseif stored then
    used = tonumber(stored)
    for i = 1, #expired do used = used - amount_of(expired[i]) end
  else  -- no total kept (it expired first): count it once
    for _, entry in ipairs(redis.call('ZRANGEBYSCORE', window, '(' .. cutoff, '+inf')) do
      used = used + amount_of(entry)
    end
  end
  if #expired > 0 then
    redis.call('ZREMRANGEBYSCORE', window, '-inf', cutoff)
    if count > 0 then redis.call('SET', total_key, fmt(used), 'KEEPTTL') else redis.call('DEL', total_key) end
  end
  return used, count, now
end
"""

SCRIPTS: dict[str, str] = {
    # KEYS[1] cool key; ARGV now -> the cooldown's end, or 0 when it is over
    "cooldown_until": """
local ends = tonumber(redis.call('GET', KEYS[1]) or '0')
if ends > tonumber(ARGV[1]) then return fmt(ends) end
return '0'
""",
    # KEYS[1] cool key; ARGV now, seconds -> the end: max(existing end, now + seconds)
    "cool": """
local now = tonumber(ARGV[1])
local ends = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now + tonumber(ARGV[2]))
redis.call('SET', KEYS[1], fmt(ends))
keep_for(KEYS[1], ends - now)
return fmt(ends)
""",
    # KEYS[1] failure set; ARGV now, window, id -> failures within the window, this one included
    "record_failure": """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', fmt(now - window))
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[3])
keep_for(KEYS[1], window)
return redis.call('ZCARD', KEYS[1])
""",
    "clear_failures": """
redis.call('DEL', KEYS[1])
return 0
""",
    # KEYS[1] lease set; ARGV now, limit, lease id, lease seconds -> 1 when admitted
    "try_enter": """
local now, lease = tonumber(ARGV[1]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], fmt(now + lease), ARGV[3])
keep_for(KEYS[1], lease)
return 1
""",
    # KEYS[1] lease set; ARGV lease id
    "leave": """
return redis.call('ZREM', KEYS[1], ARGV[1])
""",
    # KEYS[1] lease set; ARGV now -> leases not yet expired
    "in_flight": """
return redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[1], '+inf')
""",
    # KEYS[1..n] lease sets; ARGV now + lease seconds, then one lease id per key -> leases still held
    "renew": """
local renewed = 0
for i, key in ipairs(KEYS) do
  renewed = renewed + redis.call('ZADD', key, 'XX', 'CH', ARGV[1], ARGV[i + 1])
  keep_for(key, tonumber(ARGV[1]) - tonumber(ARGV[#KEYS + 2]))
end
return renewed
""",
    # KEYS[1] window, KEYS[2] its total; ARGV now, amount, limit, window, id -> '0' when taken, else the seconds
    # until it would fit
    "try_take": """
local amount, limit, window = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local asked_at = tonumber(ARGV[1])  -- the caller's now: waits are measured from it
local used, count, now = prune(KEYS[1], KEYS[2], asked_at, window)
if used + amount <= limit or count == 0 then
  redis.call('ZADD', KEYS[1], fmt(now), fmt(amount) .. '|' .. ARGV[5])
  store_total(KEYS[1], KEYS[2], used + amount, window)
  return '0'
end
local need = used + amount - limit
if amount > limit then need = used end
local freed, first, last = 0, 0, nil
while true do  -- oldest first, a chunk at a time: usually the first entry or two are enough
  local chunk = redis.call('ZRANGE', KEYS[1], first, first + 127, 'WITHSCORES')
  if #chunk == 0 then break end
  for i = 1, #chunk, 2 do
    freed = freed + amount_of(chunk[i])
    if freed >= need then return fmt(math.max(tonumber(chunk[i + 1]) + window - asked_at, 1e-6)) end
  end
  last, first = chunk[#chunk], first + 128
end
return fmt(math.max(tonumber(last) + window - asked_at, 1e-6))
""",
    # KEYS[1] window, KEYS[2] its total; ARGV now, reserved, actual, window: the newest entry of `reserved`
    # becomes `actual`, at its own time
    "settle": """
local reserved, actual, window = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local used = prune(KEYS[1], KEYS[2], tonumber(ARGV[1]), window)
local first = 0
while true do  -- newest first: the reservation being settled is almost always among the latest
  local chunk = redis.call('ZREVRANGE', KEYS[1], first, first + 127, 'WITHSCORES')
  if #chunk == 0 then return 0 end
  for i = 1, #chunk, 2 do
    if amount_of(chunk[i]) == reserved then
      local id = string.match(chunk[i], '|(.*)$')
      redis.call('ZREM', KEYS[1], chunk[i])
      redis.call('ZADD', KEYS[1], chunk[i + 1], fmt(actual) .. '|' .. id)
      store_total(KEYS[1], KEYS[2], used - reserved + actual, window)
      return 1
    end
  end
  first = first + 128
end
""",
    # KEYS[1] spend hash; ARGV period, usd, kept seconds -> the period's total
    "add_spend": """
local usd = tonumber(ARGV[2])
local total = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') + usd
if usd ~= 0 then
  redis.call('HSET', KEYS[1], ARGV[1], fmt(total))
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return fmt(total)
""",
}


def public_address(url: str) -> str:
    """``host:port/db`` of a Redis URL, without its user name or password (for messages)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path or url.split("?", 1)[0]
    host = parts.hostname or "localhost"
    try:
        port = parts.port or 6379
    except ValueError:
        port = 6379
    return f"{host}:{port}{parts.path or '/0'}"


@record(slots=False)
class _Step:
    """One operation: the script to run on Redis and what to do with its reply, or the same on local state."""

    script: str
    keys: list[str]
    args: list[str]
    decode: Callable[[Any], Any]
    local: Callable[[], Any]


def _text(reply: Any) -> str:
    return reply.decode() if isinstance(reply, bytes) else str(reply)


def _number(value: float) -> str:
    return repr(float(value))  # the shortest text that reads back as the same double


class RedisState:
    """:class:`~llmswitch.router.state.RouterState` kept in Redis, shared by every process that names it."""

    def __init__(
        self,
        url: str,
        clock: Clock = time.time,
        *,
        namespace: str = NAMESPACE,
        lease_s: float = 30.0,
        reconnect_s: float = 5.0,
        timeout_s: float = 0.5,
    ) -> None:
        self.url = url
        self.address = public_address(url)
        self.clock = clock
        self.namespace = namespace
        self.lease_s = lease_s
        self.reconnect_s = reconnect_s
        # Short timeouts and one immediate retry (a pooled connection the server closed is reopened once):
        # an unreachable Redis must cost a call about a second, once, not redis-py's default backoff.
        self._client_options: dict[str, Any] = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
        self._sync = redis.Redis.from_url(
            url, retry=redis.retry.Retry(NoBackoff(), 1), **self._client_options)
        self._sync_scripts = {name: self._sync.register_script(_LUA_PRELUDE + body) for name, body in SCRIPTS.items()}
        # redis.asyncio connections belong to the loop that opened them: one client per running loop, closed
        # when that loop shuts down (see _close_with_loop).
        self._async_clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[Any, dict[str, Any], AsyncGenerator[None, None]]] = (
            weakref.WeakKeyDictionary())
        self._local = LocalState(clock)
        self._lock = threading.Lock()
        self._down_since: float | None = None  # time.monotonic() of the failure while Redis is unreachable
        self.outages = 0  # how many times Redis went away (each with its one warning)
        self._ids = itertools.count()
        self._instance = uuid.uuid4().hex[:12]
        # key -> the leases this process holds under it, newest last (None: a place taken in local state)
        self._held: dict[str, list[str | None]] = {}
        self._keeper: threading.Thread | None = None
        self._closed = threading.Event()

    @classmethod
    def from_url(cls, url: str, clock: Clock = time.time, **options: Any) -> RedisState:
        """The state for ``[router] state = url`` (``redis://``, ``rediss://`` or ``unix://``)."""
        return cls(url, clock, **options)

    # ---- keys and ids -------------------------------------------------------------------------------------

    def _key(self, kind: str, name: str) -> str:
        return f"{self.namespace}:{kind}:{name}"

    def _new_id(self) -> str:
        return f"{self._instance}:{next(self._ids)}"

    # ---- Redis or local: one warning when it goes away, one line when it is back ----------------------------

    def _use_local(self) -> bool:
        with self._lock:
            return self._down_since is not None and time.monotonic() - self._down_since < self.reconnect_s

    def _went_down(self, error: BaseException) -> None:
        with self._lock:
            first = self._down_since is None
            self._down_since = time.monotonic()
            if first:
                self.outages += 1
        if first:
            # A refusal (a read-only replica, maxmemory, an ACL without EVALSHA) is not a network failure, and
            # the remedy differs: say which.
            what = "is unreachable" if isinstance(error, _NETWORK_ERRORS) else "refused router state"
            log.warning("warning: router state: Redis at %s %s (%s); limits, cooldowns and spend are kept in "
                        "this process until it answers again (check [router] state in the config)",
                        self.address, what, _describe(error))

    def _answered(self) -> None:
        if self._down_since is None:  # the usual case, without the lock
            return
        with self._lock:
            was_down, self._down_since = self._down_since is not None, None
        if was_down:
            log.warning("router state: Redis at %s answers again; sharing limits, cooldowns and spend through it",
                        self.address)

    def _run(self, step: _Step) -> Any:
        if self._use_local():
            return step.local()
        try:
            reply = self._sync_scripts[step.script](keys=step.keys, args=step.args)
        except (redis.RedisError, OSError) as error:
            self._went_down(error)
            return step.local()
        self._answered()
        return step.decode(reply)

    async def _arun(self, step: _Step) -> Any:
        if self._use_local():
            return step.local()
        try:
            scripts = await self._async_scripts()
            reply = await scripts[step.script](keys=step.keys, args=step.args)
        except (redis.RedisError, OSError) as error:
            self._went_down(error)
            return step.local()
        self._answered()
        return step.decode(reply)

    async def _async_scripts(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        found = self._async_clients.get(loop)
        if found is None:
            client = redis.asyncio.Redis.from_url(
                self.url, retry=redis.asyncio.retry.Retry(NoBackoff(), 1), **self._client_options)
            closer = _close_with_loop(client)
            await closer.asend(None)
            found = (client, {name: client.register_script(_LUA_PRELUDE + body) for name, body in SCRIPTS.items()},
                     closer)
            self._async_clients[loop] = found
        return found[1]

    # ---- cooldowns and failures ---------------------------------------------------------------------------

    def _cooldown_until(self, member: str) -> _Step:
        return _Step("cooldown_until", [self._key("cool", member)], [_number(self.clock())],
                     lambda reply: float(_text(reply)), lambda: self._local.cooldown_until(member))

    def _cool(self, member: str, seconds: float) -> _Step:
        return _Step("cool", [self._key("cool", member)], [_number(self.clock()), _number(seconds)],
                     lambda reply: float(_text(reply)), lambda: self._local.cool(member, seconds))

    def _record_failure(self, member: str, window_s: float) -> _Step:
        return _Step("record_failure", [self._key("fail", member)],
                     [_number(self.clock()), _number(window_s), self._new_id()],
                     int, lambda: self._local.record_failure(member, window_s))

    def _clear_failures(self, member: str) -> _Step:
        return _Step("clear_failures", [self._key("fail", member)], [],
                     lambda reply: None, lambda: self._local.clear_failures(member))

    def cooldown_until(self, member: str) -> float:
        return float(self._run(self._cooldown_until(member)))

    def cool(self, member: str, seconds: float) -> float:
        return float(self._run(self._cool(member, seconds)))

    def record_failure(self, member: str, window_s: float) -> int:
        return int(self._run(self._record_failure(member, window_s)))

    def clear_failures(self, member: str) -> None:
        self._run(self._clear_failures(member))

    async def acooldown_until(self, member: str) -> float:
        return float(await self._arun(self._cooldown_until(member)))

    async def acool(self, member: str, seconds: float) -> float:
        return float(await self._arun(self._cool(member, seconds)))

    async def arecord_failure(self, member: str, window_s: float) -> int:
        return int(await self._arun(self._record_failure(member, window_s)))

    async def aclear_failures(self, member: str) -> None:
        await self._arun(self._clear_failures(member))

    # ---- concurrency: leases ------------------------------------------------------------------------------

    def _hold(self, key: str, lease: str | None) -> None:
        with self._lock:
            self._held.setdefault(key, []).append(lease)
        if lease is not None:
            self._start_keeper()

    def _release(self, key: str) -> tuple[bool, str | None]:
        """(whether this process held a place under ``key``, and its lease id: None for a local place)."""
        with self._lock:
            leases = self._held.get(key)
            if not leases:
                return False, None
            lease = leases.pop()
            if not leases:
                del self._held[key]
            return True, lease

    def _try_enter(self, key: str, limit: int) -> _Step:
        lease = self._new_id()

        def admitted(reply: Any) -> bool:
            if int(reply) != 1:
                return False
            self._hold(key, lease)
            return True

        def local() -> bool:
            entered = self._local.try_enter(key, limit)
            if entered:
                self._hold(key, None)
            return entered

        return _Step("try_enter", [self._key("flight", key)],
                     [_number(self.clock()), str(int(limit)), lease, _number(self.lease_s)], admitted, local)

    def _leave(self, key: str) -> _Step | None:
        """The step that gives back this process's newest place under ``key``: None when there is nothing to
        send (it held none there, or the place was taken in local state and is given back here)."""
        held, lease = self._release(key)
        if not held:
            return None
        if lease is None:
            self._local.leave(key)
            return None
        # Redis gone: nothing to do locally, the lease expires by itself since it is no longer renewed.
        return _Step("leave", [self._key("flight", key)], [lease], lambda reply: None, lambda: None)

    def _in_flight(self, key: str) -> _Step:
        return _Step("in_flight", [self._key("flight", key)], [_number(self.clock())],
                     int, lambda: self._local.in_flight(key))

    def try_enter(self, key: str, limit: int) -> bool:
        return bool(self._run(self._try_enter(key, limit)))

    def leave(self, key: str) -> None:
        step = self._leave(key)
        if step is not None:
            self._run(step)

    def in_flight(self, key: str) -> int:
        return int(self._run(self._in_flight(key)))

    async def atry_enter(self, key: str, limit: int) -> bool:
        return bool(await self._arun(self._try_enter(key, limit)))

    async def aleave(self, key: str) -> None:
        step = self._leave(key)
        if step is not None:
            await self._arun(step)

    async def ain_flight(self, key: str) -> int:
        return int(await self._arun(self._in_flight(key)))

    def _start_keeper(self) -> None:
        with self._lock:
            if self._keeper is not None or self._closed.is_set():
                return
            self._keeper = threading.Thread(target=self._keep_leases, name="llmswitch-redis-leases", daemon=True)
            self._keeper.start()

    def _keep_leases(self) -> None:
        """Renew this process's leases every third of their life, so only a dead process loses its places."""
        while not self._closed.wait(self.lease_s / 3):
            self.renew_leases()

    def renew_leases(self) -> int:
        """Push back the expiry of every lease this process holds (the keeper thread calls it); how many."""
        with self._lock:
            held = [(key, lease) for key, leases in self._held.items() for lease in leases if lease is not None]
        if not held or self._use_local():
            return 0
        now = self.clock()
        keys = [self._key("flight", key) for key, _ in held]
        try:
            renewed = self._sync_scripts["renew"](
                keys=keys, args=[_number(now + self.lease_s), *(lease for _, lease in held), _number(now)])
        except (redis.RedisError, OSError) as error:
            self._went_down(error)
            return 0
        self._answered()
        return int(renewed)

    # ---- rate windows -------------------------------------------------------------------------------------

    def _try_take(self, key: str, amount: float, limit: float, window_s: float) -> _Step:
        return _Step("try_take", [self._key("window", key), self._key("window-total", key)],
                     [_number(self.clock()), _number(amount), _number(limit), _number(window_s), self._new_id()],
                     lambda reply: float(_text(reply)),
                     lambda: self._local.try_take(key, amount, limit, window_s))

    def _settle(self, key: str, reserved: float, actual: float, window_s: float) -> _Step:
        return _Step("settle", [self._key("window", key), self._key("window-total", key)],
                     [_number(self.clock()), _number(reserved), _number(actual), _number(window_s)],
                     lambda reply: None, lambda: self._local.settle(key, reserved, actual, window_s))

    def try_take(self, key: str, amount: float, limit: float, window_s: float) -> float:
        return float(self._run(self._try_take(key, amount, limit, window_s)))

    def settle(self, key: str, reserved: float, actual: float, window_s: float) -> None:
        self._run(self._settle(key, reserved, actual, window_s))

    async def atry_take(self, key: str, amount: float, limit: float, window_s: float) -> float:
        return float(await self._arun(self._try_take(key, amount, limit, window_s)))

    async def asettle(self, key: str, reserved: float, actual: float, window_s: float) -> None:
        await self._arun(self._settle(key, reserved, actual, window_s))

    # ---- spend --------------------------------------------------------------------------------------------

    def _add_spend(self, key: str, usd: float, period: str) -> _Step:
        return _Step("add_spend", [self._key("spend", key)], [period, _number(usd), str(SPEND_KEPT_S)],
                     lambda reply: float(_text(reply)), lambda: self._local.add_spend(key, usd, period))

    def add_spend(self, key: str, usd: float, period: str) -> float:
        return float(self._run(self._add_spend(key, usd, period)))

    async def aadd_spend(self, key: str, usd: float, period: str) -> float:
        return float(await self._arun(self._add_spend(key, usd, period)))

    # ---- closing ------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Give back this process's places (other processes need not wait for the leases to expire) and close
        the connections."""
        self._closed.set()
        with self._lock:
            held = [(key, lease) for key, leases in self._held.items() for lease in leases if lease is not None]
            self._held.clear()
        if held and not self._use_local():
            try:
                pipe = self._sync.pipeline(transaction=False)
                for key, lease in held:
                    pipe.zrem(self._key("flight", key), lease)
                pipe.execute()
            except (redis.RedisError, OSError):
                pass  # the leases expire by themselves
        self._sync.close()
        # Async clients close with their loops; one whose loop is this very one is closed now.
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        found = self._async_clients.pop(running, None) if running is not None else None
        if running is not None and found is not None:
            running.create_task(found[2].aclose())


async def _close_with_loop(client: Any) -> AsyncGenerator[None, None]:
    """Suspended for the life of the loop; the loop finalizes open async generators when it shuts down
    (``asyncio.run`` calls ``shutdown_asyncgens``), which closes the client's connections on that loop before
    it is gone: a client kept across ``asyncio.run`` calls would otherwise leave its sockets open."""
    try:
        yield
    finally:
        await client.aclose()


_NETWORK_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError)


def _describe(error: BaseException) -> str:
    """A short reason for the warning: the error's own words, or its kind when it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

