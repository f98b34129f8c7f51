"""Rate limits on a profile or a route (``max_concurrent``, ``rpm``, ``tpm``), kept in the router state.

Before a call goes to a profile it is admitted by each of its *gates*: the profile itself, then every route it
is reached through that sets a limit (a pool's ``max_concurrent = 2`` holds across its members, on top of
each member's own). A gate admits with one place in flight (always counted, so ``least-busy`` pools
see every call; refused past ``max_concurrent``), one request from the last minute's ``rpm``, and for ``tpm``
the tokens it may use (its input estimated at four characters a token plus ``max_tokens``, or
:data:`RESERVED_OUTPUT` when the request sets none) reserved from the last minute's. A call that is refused
learns how long until there is room; the plan then prefers another member or waits, up to the deadline.
After the call the place is given back and the reservation settled with the tokens the answer really used.
A gate that refuses gives back what the gates before it took (its request place too: nothing was sent).

Keys in the state: ``flight:NAME``, ``rpm:NAME``, ``tpm:NAME`` for profile or route NAME.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llmswitch.record import record
from llmswitch.router.state import RouterState
from llmswitch.router.steps import Ask, Program, adrive, drive
from llmswitch.types import Request, Usage

UNLIMITED = 1 << 30
WINDOW_S = 60.0
BUSY_RETRY_S = 0.05  # how soon to ask again for a place in flight (no state can say when one frees up)
RESERVED_OUTPUT = 1024


LIMIT_KEYS = ("max_concurrent", "rpm", "tpm")
Gate = tuple[str, Mapping[str, Any]]  # a profile or route whose limits a call passes: its name and its settings


def flight_key(name: str) -> str:
    """The state's key counting calls in flight through profile or route ``name``."""
    return f"flight:{name}"


def sets_limits(settings: Mapping[str, Any]) -> bool:
    return any(settings.get(key) for key in LIMIT_KEYS)


@record
class Held:
    """What one gate gave a call: its place in flight, its request in the rpm window, its token reservation."""

    name: str
    rpm: bool = False
    tokens: float = 0.0
    tpm: int | None = None


@record
class Admission:
    """What one admitted call holds, gate by gate, to give back after it."""

    held: tuple[Held, ...]


@record
class Busy:
    """No room yet: under which limit (``max_concurrent``, ``rpm``, ``tpm``) of which profile or route
    (``owner``), and for how long at most."""

    limit: str
    wait_s: float
    owner: str = ""


@record
class Limits:
    max_concurrent: int | None = None
    rpm: int | None = None
    tpm: int | None = None

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> Limits:
        return cls(settings.get("max_concurrent"), settings.get("rpm"), settings.get("tpm"))


def reserved_tokens(request: Request) -> float:
    """The tokens a call may use at most, as a tpm reservation: its input estimated, plus its output limit."""
    chars = sum(len(message.content) for message in request.messages) + len(request.system or "")
    return max(1, round(chars / 4)) + 4 * len(request.messages) + (request.max_tokens or RESERVED_OUTPUT)


def admitting(gates: Sequence[Gate], request: Request) -> Program[Admission | Busy]:
    """Admit one call through every gate: an :class:`Admission` to release after it, or :class:`Busy` (and
    nothing held). A program over the state (see :mod:`llmswitch.router.steps`)."""
    taken: list[Held] = []
    for name, settings in gates:
        held = yield from _admit_one(name, Limits.of(settings), request)
        if isinstance(held, Busy):
            for earlier in reversed(taken):
                yield from _give_back(earlier)
            return held
        taken.append(held)
    return Admission(tuple(taken))


def _admit_one(name: str, limits: Limits, request: Request) -> Program[Held | Busy]:
    if not (yield Ask("try_enter", (flight_key(name), limits.max_concurrent or UNLIMITED))):
        return Busy("max_concurrent", BUSY_RETRY_S, name)
    if limits.rpm:
        wait = yield Ask("try_take", (f"rpm:{name}", 1, limits.rpm, WINDOW_S))
        if wait:
            yield Ask("leave", (flight_key(name),))
            return Busy("rpm", wait, name)
    if limits.tpm:
        tokens = reserved_tokens(request)
        wait = yield Ask("try_take", (f"tpm:{name}", tokens, limits.tpm, WINDOW_S))
        if wait:
            yield from _give_back(Held(name, bool(limits.rpm)))
            return Busy("tpm", wait, name)
        return Held(name, bool(limits.rpm), tokens, limits.tpm)
    return Held(name, bool(limits.rpm))


def used_tokens(usage: Usage, reserved: float) -> float:
    total = usage.total_tokens
    return float(total) if total is not None else reserved


def _give_back(held: Held) -> Program[None]:
    """Undo a gate's admission of a call that was not sent: its place, its request and its tokens."""
    yield Ask("leave", (flight_key(held.name),))
    if held.rpm:
        yield Ask("settle", (f"rpm:{held.name}", 1, 0, WINDOW_S))
    if held.tpm:
        yield Ask("settle", (f"tpm:{held.name}", held.tokens, 0, WINDOW_S))


def releasing(admission: Admission, usage: Usage) -> Program[None]:
    """Give back the call's places and settle its token reservations with what it used (a program)."""
    for held in admission.held:
        yield Ask("leave", (flight_key(held.name),))
        if held.tpm:
            yield Ask("settle", (f"tpm:{held.name}", held.tokens, used_tokens(usage, held.tokens), WINDOW_S))


def admit(state: RouterState, gates: Sequence[Gate], request: Request) -> Admission | Busy:
    """:func:`admitting` run against ``state``."""
    return drive(admitting(gates, request), state)


async def aadmit(state: RouterState, gates: Sequence[Gate], request: Request) -> Admission | Busy:
    """:func:`admitting` run against ``state``, awaited."""
    return await adrive(admitting(gates, request), state)


def release(state: RouterState, admission: Admission, usage: Usage) -> None:
    """:func:`releasing` run against ``state``."""
    drive(releasing(admission, usage), state)


async def arelease(state: RouterState, admission: Admission, usage: Usage) -> None:
    """:func:`releasing` run against ``state``, awaited."""
    await adrive(releasing(admission, usage), state)
