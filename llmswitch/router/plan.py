"""One call's decisions, without I/O: which member to try, how long to wait, when to give up.

A :class:`CallPlan` is told what happened (:meth:`~CallPlan.failed`, :meth:`~CallPlan.succeeded`) and asked
what to do next (:meth:`~CallPlan.next_step`); the sync and the async drivers (:mod:`llmswitch.router.driver`)
only carry out its answers: sleep, read the shared state, call a member. So both forms follow one set of
rules, and the rules are tested without sockets or clocks.

The members are tried in the order the route chose (a fallback's own order, a pool's strategy, a split's
weighted draw first). The rules, beyond those of :mod:`llmswitch.router.policy`:

- a member that is cooling down is passed over while another member is not; when every remaining member
  is cooling, the call waits for the first to come back if that is before the deadline and within
  ``retry_after_max_s``, else it fails saying when to try again;
- after a failure that may pass, a fallback retries the same member (its order is a preference); a pool or
  a split moves on to another member at once (its members are equivalent) and retries only when none is left;
- a fallback does not retry (nor wait on) a member that the failure put in cooldown (a 429, or failures piling
  up) while a later member is ready: it moves on, as a pool does; it retries that member only when no other is;
- each member retries, backs off, caps a Retry-After and cools by its own keys (``policies``; a member that
  sets none has its route's), while the deadline (``timeout_total``) and ``replay_after_text`` are the call's:
  the route's (``policy``);
- a failure after text reached the caller ends the call (the text is kept) unless ``replay_after_text``;
- a conversation too long for a member's context window moves on to a member with a larger one: members whose
  window is known and no larger are passed over, those with a larger one go first, those unknown after
  (``windows`` tells a member's window; when the failing member's own is unknown the order stands).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from llmswitch.errors import (
    BackendError,
    BackendTimeoutError,
    ContextLengthError,
    LLMSwitchError,
    UnreachableError,
)
from llmswitch.record import record
from llmswitch.router.policy import RetryPolicy, outcome_name, retry_after, verdict

# The backoff jitter of calls that bring no generator of their own (a plain profile's): one for the process, since
# seeding a new one for every call reads os.urandom, a system call per call.
JITTER = random.Random()


@record
class Attempt:
    """One try of one member: who, how it ended (``ok`` or the error's kind, as the ledger's outcome column
    says it: ``rate_limited``, ``unreachable``, ...), the HTTP status when there was one, how long it took."""

    member: str
    outcome: str
    latency_s: float | None  # None: not timed here (a provider's batch job ran it some time within the job)
    status: int | None = None
    backend: str | None = None
    model: str | None = None

    def as_dict(self) -> dict[str, object]:
        latency = round(self.latency_s, 4) if self.latency_s is not None else None
        return {"member": self.member, "outcome": self.outcome, "status": self.status, "latency_s": latency}


@record
class RouterEvent:
    """A decision worth telling: ``kind`` is ``retry``, ``fallback``, ``cooldown``, ``skip``, ``wait``,
    ``replay`` or ``give_up``; ``message`` is the sentence shown on stderr; ``seconds`` the wait or cooldown;
    ``to_member`` the member a fallback hands over to; ``route`` the profile or route the call was made on."""

    kind: str
    member: str
    message: str
    seconds: float | None = None
    outcome: str | None = None
    to_member: str | None = None
    route: str | None = None


@record
class Try:
    member: str


@record
class Wait:
    seconds: float


@record
class GiveUp:
    error: LLMSwitchError


@record
class _Retry:
    """A retry :meth:`CallPlan.failed` decided on, carried out by the next step unless the member is cooling
    by then and another is ready."""

    member: str
    error: LLMSwitchError
    wait: float
    honoured: bool  # the wait is the server's Retry-After


Step = Try | Wait | GiveUp


def _said(attempt: Attempt) -> str:
    return f"{attempt.member} {attempt.status or attempt.outcome}"


def _whose(limit: str) -> str:
    """``its rpm`` for a member's own limit, ``route fleet's rpm`` for a route's."""
    return limit if limit.startswith("route ") else f"its {limit}"


def describe(error: LLMSwitchError) -> str:
    """A failure in a few words for a decision line: ``429``, ``503``, ``unreachable``, ``timeout``."""
    if isinstance(error, ContextLengthError):
        return "the conversation is too long for its context window"
    return outcome_name(error)


def _no_windows(_member: str) -> int | None:
    return None


@dataclass
class CallPlan:
    """The decisions of one call over ``members`` (names, in the order to try them).

    ``spread`` is True for pools and splits (move on before retrying); ``cools`` is False for a plain profile
    called directly (with no other member to hand over to, cooling it would only delay the next call).
    Times are the driver's monotonic seconds; ``deadline`` is absolute in the same clock, or None.
    ``policies``: each member's own policy where it differs from ``policy`` (the route's, the call's).
    """

    members: Sequence[str]
    policy: RetryPolicy
    now: float
    rng: random.Random = field(default_factory=random.Random)
    spread: bool = False
    cools: bool = True
    windows: Callable[[str], int | None] = _no_windows  # a member's context window in tokens, when known
    policies: Mapping[str, RetryPolicy] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    events: list[RouterEvent] = field(default_factory=list)
    _index: int = 0
    _retries: int = 0
    _retry: _Retry | None = None
    _last_error: LLMSwitchError | None = None
    _deadline_hit: bool = False
    _room_at: dict[str, tuple[float, str]] = field(default_factory=dict)  # member -> (when, whose which limit)
    _waited_for_room: float = 0.0
    _waited_for: str | None = None  # the member the call last waited for the cooldown of

    def __post_init__(self) -> None:
        self.order = list(dict.fromkeys(self.members))
        total = self.policy.timeout_total
        self.deadline = self.now + total if total else None

    # ---- asked by the driver -------------------------------------------------------------------------------

    def policy_of(self, member: str) -> RetryPolicy:
        """How ``member``'s attempts are retried and cooled: its own keys, else the route's."""
        return self.policies.get(member, self.policy)

    def next_step(self, now: float, cooling: Mapping[str, float]) -> Step:
        """What to do now. ``cooling`` gives, for members still to try, the seconds left of their cooldown."""
        if self._retry is not None:
            retry, self._retry = self._retry, None
            if self._cooling_while_another_is_ready(retry.member, now, cooling):
                self._move_on(retry.member, retry.error)
            else:
                why = " (Retry-After)" if retry.honoured else ""
                self._tell("retry", retry.member, f"{retry.member}: {describe(retry.error)}, retrying in "
                           f"{retry.wait:.1f} s{why}", seconds=retry.wait, outcome=describe(retry.error))
                if retry.wait > 0:
                    return Wait(retry.wait)
        if self._deadline_hit or (self.deadline is not None and now >= self.deadline):
            return GiveUp(self._deadline_error())
        if self._index >= len(self.order):
            return GiveUp(self._final_error())
        current = self.order[self._index]
        if self._ready_in(current, now, cooling) <= 0:
            return Try(current)
        # The current member is cooling or has no room: the first later one that is ready takes its turn.
        for position in range(self._index + 1, len(self.order)):
            member = self.order[position]
            if self._ready_in(member, now, cooling) <= 0:
                left = self._cooling_left(current, cooling)
                if left > 0:
                    self._tell("skip", current, f"{current} is cooling down ({left:.0f} s left); answering with "
                               f"{member}", seconds=left)
                self.order.insert(self._index, self.order.pop(position))
                return Try(member)
        return self._wait_for_soonest(now, cooling)

    def _cooling_while_another_is_ready(self, member: str, now: float, cooling: Mapping[str, float]) -> bool:
        """Whether ``member``, about to be retried, is cooling (its failure cooled it) while a later member is
        ready: then the call moves on rather than wait on it."""
        if not self.cools or cooling.get(member, 0.0) <= 0 or not self._others_left():
            return False
        return any(self._ready_in(other, now, cooling) <= 0 for other in self.order[self._index + 1:])

    def _cooling_left(self, member: str, cooling: Mapping[str, float]) -> float:
        """Seconds until ``member``'s cooldown ends, as far as this call heeds it: not for a plain profile, not
        on a retry of the member being tried, not once the call has waited for it."""
        if not self.cools or member == self._waited_for or (self._retries and member == self.order[self._index]):
            return 0.0
        return cooling.get(member, 0.0)

    def _room_left(self, member: str, now: float) -> float:
        """Seconds until ``member`` has room under its rate limits, as far as this call has learnt."""
        return self._room_at[member][0] - now if member in self._room_at else 0.0

    def _ready_in(self, member: str, now: float, cooling: Mapping[str, float]) -> float:
        return max(self._cooling_left(member, cooling), self._room_left(member, now))

    def _wait_for_soonest(self, now: float, cooling: Mapping[str, float]) -> Step:
        """No member still to try is ready: wait for the one ready first, then try it. A wait for a cooldown
        is capped by ``retry_after_max_s``; any wait ends at the deadline. Said on stderr when it is for a
        cooldown, or for room once the waits for room pass a second."""
        soonest = min(range(self._index, len(self.order)),
                      key=lambda position: self._ready_in(self.order[position], now, cooling))
        member = self.order[soonest]
        cool_left, room_left = self._cooling_left(member, cooling), self._room_left(member, now)
        if cool_left >= room_left:
            if cool_left > self.policy_of(member).retry_after_max_s or (self.deadline is not None
                                                              and now + cool_left > self.deadline):
                return GiveUp(self._cooling_error(cool_left))
            self.order.insert(self._index, self.order.pop(soonest))
            self._tell("wait", member, f"every member is cooling down; waiting {cool_left:.1f} s for {member}",
                       seconds=cool_left)
            self._waited_for = member  # tried after the wait, without asking about its cooldown again
            return Wait(cool_left)
        limit = self._room_at[member][1]
        if self.deadline is not None and now + room_left > self.deadline:
            return GiveUp(self._deadline_error(f"{member} had no room under {_whose(limit)} limit"))
        self.order.insert(self._index, self.order.pop(soonest))
        before, self._waited_for_room = self._waited_for_room, self._waited_for_room + room_left
        if room_left > 1.0 or (before <= 1.0 < self._waited_for_room):
            self._tell("wait", member, f"{member} is at {_whose(limit)} limit; waiting {room_left:.1f} s for room",
                       seconds=room_left)
        return Wait(room_left)

    def remaining(self) -> list[str]:
        """The members still to try, whose cooldowns the driver should read before :meth:`next_step`."""
        return self.order[self._index:] if self.cools else []

    # ---- told by the driver --------------------------------------------------------------------------------

    def busy(self, member: str, limit: str, wait_s: float, now: float, owner: str | None = None) -> None:
        """``member`` has no room under ``limit`` for ``wait_s`` seconds; nothing was sent. ``owner``: the route
        whose limit it is, when it is not the member's own."""
        self._room_at[member] = (now + wait_s, limit if owner in (None, member) else f"route {owner}'s {limit}")

    def reorder(self, members: Sequence[str]) -> None:
        """The route's order for this call, known once the driver has read the state (before the first step)."""
        self.order = list(dict.fromkeys(members))

    def succeeded(self, member: str, latency_s: float, *, backend: str | None = None,
                  model: str | None = None) -> None:
        self.attempts.append(Attempt(member, "ok", latency_s, None, backend, model))

    def failed(self, member: str, error: LLMSwitchError, latency_s: float, now: float, *, text_shown: bool,
               backend: str | None = None, model: str | None = None) -> float | None:
        """Take note of a failed attempt; return how long to cool ``member`` (None: not at all). The next
        :meth:`next_step` says what follows."""
        status = error.status_code if isinstance(error, BackendError) else None
        self.attempts.append(Attempt(member, error.kind, latency_s, status, backend, model))
        self._last_error = error
        judged = verdict(error)
        policy = self.policy_of(member)
        cool_s = self._cooldown_for(error, policy) if self.cools else None
        if text_shown and not self.policy.replay_after_text:
            self._index = len(self.order)  # the text is kept; nothing else is tried
            self._tell("give_up", member, f"{member} failed after its answer had begun ({describe(error)}); "
                       "the text so far is kept and not asked again (replay_after_text = true would)")
            return cool_s
        waited = retry_after(error)
        # Equivalent members (a pool, a split) share the load rather than wait; a member that refuses
        # connections is down rather than busy, so a route moves on from it at once too.
        move_on_first = self._others_left() and (self.spread or isinstance(error, UnreachableError))
        if judged == "retry" and self._retries < policy.max_retries and not move_on_first:
            wait = policy.backoff(self._retries, self.rng)
            honoured = waited is not None and waited >= wait
            if waited is not None:
                wait = max(wait, waited)
            too_long = waited is not None and waited > policy.retry_after_max_s
            past_deadline = self.deadline is not None and now + wait >= self.deadline
            if past_deadline:  # nothing may start after the deadline: say it was the deadline that ended it
                self._index, self._deadline_hit = len(self.order), True
                return cool_s
            if not too_long:
                self._retries += 1
                self._retry = _Retry(member, error, wait, honoured)  # said, or given up, at the next step
                return cool_s
        self._move_on(member, error)
        return cool_s

    # ---- inside --------------------------------------------------------------------------------------------

    def _others_left(self) -> bool:
        return self._index + 1 < len(self.order)

    def _cooldown_for(self, error: LLMSwitchError, policy: RetryPolicy) -> float | None:
        waited = retry_after(error)
        if outcome_name(error) == "429" or error.kind == "rate_limited":
            return max(waited or 0.0, policy.cooldown_s)
        return None

    def _prefer_larger_windows(self, member: str) -> None:
        """After ``member`` found the conversation too long: pass over the members whose window is known and no
        larger, and try those with a larger one first (see the module docstring)."""
        mine = self.windows(member)
        if mine is None:
            return
        larger, unknown = [], []
        for other in self.order[self._index + 1:]:
            window = self.windows(other)
            if window is None:
                unknown.append(other)
            elif window > mine:
                larger.append(other)
            else:
                self._tell("skip", other, f"{other} is passed over: its context window ({window:,} tokens) is no "
                           f"larger than {member}'s ({mine:,})")
        larger.sort(key=lambda other: -(self.windows(other) or 0))
        self.order[self._index + 1:] = [*larger, *unknown]

    def _move_on(self, member: str, error: LLMSwitchError) -> None:
        if isinstance(error, ContextLengthError):
            self._prefer_larger_windows(member)
        self._index += 1
        self._retries = 0
        if self._index < len(self.order):
            following = self.order[self._index]
            self._tell("fallback", member, f"{member}: {describe(error)}; answering with {following}",
                       outcome=describe(error), to_member=following)

    def _tell(self, kind: str, member: str, message: str, *, seconds: float | None = None,
              outcome: str | None = None, to_member: str | None = None) -> None:
        self.events.append(RouterEvent(kind, member, message, seconds, outcome, to_member))

    def _final_error(self) -> LLMSwitchError:
        error = self._last_error
        if error is None:  # pragma: no cover - a plan always has a member
            return LLMSwitchError("the route has no member to try")
        if len(self.attempts) > 1:
            tried = ", ".join(_said(attempt) for attempt in self.attempts)
            error.message = f"{error.message} (after {len(self.attempts)} attempts: {tried})"
            error.args = (error.message,)
        return error

    def _deadline_error(self, why: str | None = None) -> LLMSwitchError:
        total = self.policy.timeout_total
        tried = ", ".join(_said(attempt) for attempt in self.attempts) or "none finished"
        last = f"; the last: {self._last_error.message}" if self._last_error is not None else ""
        last = f"; {why}" if why else last
        return BackendTimeoutError(
            f"no answer within timeout_total = {total:g} s (attempts: {tried}{last})",
            remedy="raise timeout_total in the profile, or add a faster member to the route")

    def _cooling_error(self, left: float) -> LLMSwitchError:
        names = ", ".join(self.order[self._index:])
        error = self._last_error
        detail = f" (last failure: {error.message})" if error is not None else ""
        from llmswitch.errors import RateLimitError

        return RateLimitError(f"every member is cooling down: {names}{detail}", retry_after=left,
                              remedy=f"try again in {left:.0f} s, or add a member to the route")
