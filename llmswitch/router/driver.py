"""Carries out a :class:`~llmswitch.router.plan.CallPlan`, once for ``for`` and ``async for``.

The whole call is one program, :func:`attempts`: a generator that asks the plan for each step, yields what it
needs done (read or update the router state, sleep, check a budget, send an attempt) and hears how it went.
:func:`run` and :func:`arun` are its two runners: they do those steps, blocking or awaited, and pass the
answering member's events on; neither holds a rule of its own (see :mod:`llmswitch.router.steps`).

A call's events are the answering member's events: a failure before any text is absorbed here (the plan
decides what follows), a failure after text ends the stream with it (the text kept), and when the plan gives
up its error ends the stream. ``result.resolved`` always names the member being tried, and
``result.attempts`` lists every attempt so far.
"""

from __future__ import annotations

import time
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from llmswitch.accounting import budgets_of
from llmswitch.errors import ConfigError, LLMSwitchError
from llmswitch.lazy import logger
from llmswitch.router.limits import Busy, Gate, admitting, releasing
from llmswitch.router.plan import CallPlan, GiveUp, RouterEvent, Wait
from llmswitch.router.state import RouterState
from llmswitch.router.steps import Ask, Stepper
from llmswitch.types import StreamEvent, TextDelta, Usage

if TYPE_CHECKING:
    from llmswitch.client import ResolvedProfile, StreamState
    from llmswitch.types import Request

NOTHING_USED = Usage(0, 0)  # a call that failed before any answer: its token reservation is given back

Observer = Callable[[RouterEvent], None]
# Opens one attempt on one member: (member, its request, seconds left before the deadline or None)
Opener = Callable[["ResolvedProfile", "Request", "float | None"], Iterable[StreamEvent]]
AsyncOpener = Callable[["ResolvedProfile", "Request", "float | None"], AsyncIterable[Sequence[StreamEvent]]]


@dataclass(frozen=True, slots=True)
class Blocking:
    """Call ``function(*args)``, which may block (a budget check reads the ledger): the async runner runs it in
    a worker thread. Its exception is thrown into the program."""

    function: Callable[..., Any]
    args: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Send:
    """Pass on the events of an attempt (``for`` or ``async for`` them); the runner answers with :class:`Sent`."""

    source: Any  # Iterable[StreamEvent] for run, AsyncIterable[Sequence[StreamEvent]] for arun


@dataclass(frozen=True, slots=True)
class Sent:
    """How an attempt went: whether text reached the caller, the failure that ended it (None: it answered),
    and whether the caller stopped it (closed the stream, cancelled the task, Ctrl-C)."""

    shown: bool
    error: Exception | None = None
    stopped: bool = False


CallStep = Ask | Wait | Blocking | Send
CallProgram = Generator[CallStep, Any, None]


@dataclass
class RoutedCall:
    """What one call needs besides its plan: the members by name, each one's request, the shared state, and
    who hears about decisions.

    ``gates``: for each member, the profiles and routes whose limits a call to it passes (the member first).
    ``ordering``: for a route whose order depends on the state (a ``least-busy`` pool), the order given the
    in-flight counts under the keys ``counted``; the driver reads those counts (awaited on the async path)
    and calls :meth:`start` before the first step, so the choice itself is made in one place for both.
    """

    plan: CallPlan
    members: Mapping[str, ResolvedProfile]
    requests: Callable[[ResolvedProfile], Request]
    state: RouterState
    observers: Sequence[Observer] = ()
    hook: str = "stream"
    route: str | None = None  # the profile or route the call was made on, named in every event
    gates: Mapping[str, Sequence[Gate]] = field(default_factory=dict)
    ordering: Callable[[Mapping[str, int]], Sequence[str]] | None = None
    counted: Sequence[str] = ()

    def start(self, in_flight: Mapping[str, int]) -> None:
        """Order the members for this call from the state's counts (see ``ordering``)."""
        if self.ordering is not None:
            self.plan.reorder(self.ordering(in_flight))

    def gates_of(self, member: ResolvedProfile) -> Sequence[Gate]:
        return self.gates.get(member.name) or ((member.name, member.settings),)

    def publish(self) -> None:
        """Hand the plan's new decisions to the observers (and the log); an observer's failure is logged."""
        events, self.plan.events = self.plan.events, []
        for event in events:
            if self.route is not None:
                event = replace(event, route=self.route)
            logger("llmswitch.router").info("%s", event.message)
            for observer in self.observers:
                try:
                    observer(event)
                except Exception:  # an observer (a metrics counter, a printer) must never break a call
                    logger("llmswitch.router").exception("router observer failed")

    def remaining_s(self) -> float | None:
        deadline = self.plan.deadline
        return None if deadline is None else max(0.0, deadline - time.monotonic())

    def map_error(self, member: ResolvedProfile, exc: Exception) -> LLMSwitchError:
        from llmswitch.client import plugin_failure

        return exc if isinstance(exc, LLMSwitchError) else plugin_failure(member.handle, self.hook, exc)

    def failed(self, member: ResolvedProfile, error: LLMSwitchError, started: float, shown: bool,
               result: StreamState) -> float | None:
        """Tell the plan; return how long to cool the member (None: not at all)."""
        cool_s = self.plan.failed(member.name, error, time.perf_counter() - started, time.monotonic(),
                                  text_shown=shown, backend=member.target.backend, model=member.target.model)
        result.attempts = list(self.plan.attempts)
        if shown and self.plan.policy.replay_after_text:
            result.parts.clear()  # the next member answers from the start: its text is the answer
        return cool_s

    def cool_for(self, member: str, cool_s: float | None, failures: int) -> float | None:
        """The cooldown after a failure: the plan's (a 429's), or the member's ``cooldown_s`` once its failures
        pile up."""
        policy = self.plan.policy_of(member)
        if failures >= policy.cooldown_failures:
            return max(cool_s or 0.0, policy.cooldown_s)
        return cool_s

    def succeeded(self, member: ResolvedProfile, started: float, result: StreamState) -> None:
        latency = time.perf_counter() - started
        self.plan.succeeded(member.name, latency, backend=member.target.backend,
                            model=result.model or member.target.model)
        result.attempts = list(self.plan.attempts)
        if self.plan.cools:  # a route's member: its speed feeds the latency strategy (time to first token)
            from llmswitch.router.strategies import note_latency

            note_latency(member.name, latency if result.first_token_s is None else result.first_token_s)

    def cool_message(self, member: str, until: float) -> None:
        left = until - time.time()
        self.plan.events.append(RouterEvent("cooldown", member, f"{member} cools down for {left:.0f} s",
                                            seconds=left))


def open_first(call: RoutedCall, opener: Callable[..., Any]) -> Any:
    """Open a plain profile's first attempt at once, so a setting its backend refuses is raised by the call
    itself, before anything is iterated or sent (it is the user's input: nothing to retry). None for a route
    (a member's bad setting moves it on to the next) or when opening failed otherwise (the loop retries it)."""
    if call.plan.cools:  # a route's call: its plan has members to hand over to
        return None
    (member,) = call.members.values()
    try:
        return opener(member, call.requests(member), call.remaining_s())
    except ConfigError:
        raise
    except Exception:
        return None


def attempts(call: RoutedCall, result: StreamState, open_attempt: Opener | AsyncOpener,
             first: Iterable[StreamEvent] | AsyncIterable[Sequence[StreamEvent]] | None = None) -> CallProgram:
    """The call as a program (see the module docstring): every rule of the driver, for both runners.
    ``open_attempt`` opens an attempt (the runner iterates it); ``first`` is the first one when the caller
    already opened it (see :func:`open_first`)."""
    plan = call.plan
    in_flight = {}
    for key in call.counted:
        in_flight[key] = yield Ask("in_flight", (key,))
    call.start(in_flight)
    while True:
        cooling = {}
        now = time.time()
        for name in plan.remaining():
            cooling[name] = max(0.0, (yield Ask("cooldown_until", (name,))) - now)
        step = plan.next_step(time.monotonic(), cooling)
        call.publish()
        if isinstance(step, Wait):
            yield step
            continue
        if isinstance(step, GiveUp):
            raise step.error
        member = call.members[step.member]
        request = call.requests(member)
        admission = yield from admitting(call.gates_of(member), request)
        if isinstance(admission, Busy):
            plan.busy(member.name, admission.limit, admission.wait_s, time.monotonic(), admission.owner)
            continue
        result.resolved = member
        started = time.perf_counter()
        sent = Sent(False)
        if plan.cools and budgets_of(member.settings):  # a member's own budget, on its turn in a route
            try:
                yield Blocking(member.check_budget, (request,))
            except Exception as exc:
                sent = Sent(False, exc)
        if sent.error is None:
            try:
                source = first if first is not None else open_attempt(member, request, call.remaining_s())
            except Exception as exc:
                sent = Sent(False, exc)
            else:
                sent = yield Send(source)
            first = None
        answered = sent.error is None and not sent.stopped
        if answered:
            call.succeeded(member, started, result)
        yield from releasing(admission, result.usage if answered or sent.shown else NOTHING_USED)
        if sent.error is None:  # answered, or stopped by the caller: nothing more to decide
            if answered and plan.cools:
                yield Ask("clear_failures", (member.name,))
            return
        cool_s = call.failed(member, call.map_error(member, sent.error), started, sent.shown, result)
        if plan.cools:
            failures = yield Ask("record_failure", (member.name, plan.policy_of(member.name).cooldown_window_s))
            cool_s = call.cool_for(member.name, cool_s, failures)
            if cool_s:
                call.cool_message(member.name, (yield Ask("cool", (member.name, cool_s))))
        call.publish()


def run(call: RoutedCall, result: StreamState, open_attempt: Opener,
        first: Iterable[StreamEvent] | None = None) -> Iterator[StreamEvent]:
    """The events of the call, for ``for``: the answering member's, after any retries and fallbacks.
    ``first`` is the first attempt when the caller already opened it (see :func:`open_first`)."""
    steps, state = Stepper(attempts(call, result, open_attempt, first)), call.state
    stopping: BaseException | None = None
    while (step := steps.next()) is not None:
        if not isinstance(step, Send):
            try:
                if isinstance(step, Ask):
                    steps.reply = getattr(state, step.method)(*step.args)
                elif isinstance(step, Wait):
                    time.sleep(step.seconds)
                else:
                    steps.reply = step.function(*step.args)
            except Exception as exc:
                steps.failure = exc
            continue
        shown = False
        try:
            for event in step.source:
                shown = shown or type(event) is TextDelta
                yield event
            steps.reply = Sent(shown)
        except BaseException as exc:
            steps.reply, stopping = _ended(shown, exc, stopping)
        finally:
            _close(step.source)
    if stopping is not None:
        raise stopping


async def arun(call: RoutedCall, result: StreamState, open_attempt: AsyncOpener,
               first: AsyncIterable[Sequence[StreamEvent]] | None = None) -> AsyncIterator[Sequence[StreamEvent]]:
    """:func:`run` for ``async for``: the same program, its steps awaited, on lists of events (the
    ``astream_batches`` hook's form: an attempt's text counts as shown once a list holding some was passed on)."""
    import asyncio

    steps, state = Stepper(attempts(call, result, open_attempt, first)), call.state
    stopping: BaseException | None = None
    while (step := steps.next()) is not None:
        if not isinstance(step, Send):
            try:
                if isinstance(step, Ask):
                    steps.reply = await getattr(state, "a" + step.method)(*step.args)
                elif isinstance(step, Wait):
                    await asyncio.sleep(step.seconds)
                else:
                    steps.reply = await asyncio.to_thread(step.function, *step.args)
            except Exception as exc:
                steps.failure = exc
            continue
        shown = False
        try:
            async for batch in step.source:
                if not shown:
                    shown = any(type(event) is TextDelta for event in batch)
                yield batch
            steps.reply = Sent(shown)
        except BaseException as exc:
            steps.reply, stopping = _ended(shown, exc, stopping)
        finally:
            await _aclose(step.source)
    if stopping is not None:
        raise stopping


def _ended(shown: bool, exc: BaseException, stopping: BaseException | None) -> tuple[Sent, BaseException | None]:
    """How an attempt that raised went: a failure (an ``Exception``) for the plan, or the caller stopping the call
    (GeneratorExit when it closed the stream, KeyboardInterrupt, CancelledError), raised once the program has
    let go of what it holds."""
    if isinstance(exc, Exception):
        return Sent(shown, exc), stopping
    return Sent(shown, stopped=True), exc


def _close(source: object) -> None:
    """Close a plugin's generator now (its connection with it); a failure to close changes nothing."""
    close = getattr(source, "close", None)
    if close is not None:
        try:
            close()
        except Exception:
            pass


async def _aclose(source: object) -> None:
    aclose = getattr(source, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:
            pass
