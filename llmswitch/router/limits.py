"""Rate limits on a profile (``max_concurrent``, ``rpm``, ``tpm``), kept in the router state.

Before a call goes to a profile it is admitted: one place in flight (always counted, so ``least-busy`` pools
see every call; refused past ``max_concurrent``), one request from the last minute's ``rpm``, and for ``tpm``
the tokens it may use (its input estimated at four characters a token plus ``max_tokens``, or
:data:`RESERVED_OUTPUT` when the request sets none) reserved from the last minute's. A call that is refused
learns how long until there is room; the plan then prefers another member or waits, up to the deadline.
After the call the place is given back and the reservation settled with the tokens the answer really used.

Keys in the state: ``flight:NAME``, ``rpm:NAME``, ``tpm:NAME`` for profile NAME.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmswitch.router.state import RouterState
from llmswitch.types import Request, Usage

UNLIMITED = 1 << 30
WINDOW_S = 60.0
BUSY_RETRY_S = 0.05  # how soon to ask again for a place in flight (no state can say when one frees up)
RESERVED_OUTPUT = 1024


@dataclass(frozen=True, slots=True)
class Admission:
    """What one admitted call holds, to give back after it: its place in flight and its token reservation."""

    name: str
    tokens: float = 0.0
    tpm: int | None = None


@dataclass(frozen=True, slots=True)
class Busy:
    """No room yet: under which limit (``max_concurrent``, ``rpm``, ``tpm``), and for how long at most."""

    limit: str
    wait_s: float


@dataclass(frozen=True, slots=True)
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


def admit(state: RouterState, name: str, settings: Mapping[str, Any], request: Request) -> Admission | Busy:
    """Admit one call to profile ``name``: an :class:`Admission` to release after it, or :class:`Busy`."""
    limits = Limits.of(settings)
    if not state.try_enter(f"flight:{name}", limits.max_concurrent or UNLIMITED):
        return Busy("max_concurrent", BUSY_RETRY_S)
    if limits.rpm:
        wait = state.try_take(f"rpm:{name}", 1, limits.rpm, WINDOW_S)
        if wait:
            state.leave(f"flight:{name}")
            return Busy("rpm", wait)
    tokens = 0.0
    if limits.tpm:
        tokens = reserved_tokens(request)
        wait = state.try_take(f"tpm:{name}", tokens, limits.tpm, WINDOW_S)
        if wait:
            state.leave(f"flight:{name}")
            return Busy("tpm", wait)
    return Admission(name, tokens, limits.tpm)


async def aadmit(state: RouterState, name: str, settings: Mapping[str, Any], request: Request) -> Admission | Busy:
    """:func:`admit`, awaited."""
    limits = Limits.of(settings)
    if not await state.atry_enter(f"flight:{name}", limits.max_concurrent or UNLIMITED):
        return Busy("max_concurrent", BUSY_RETRY_S)
    if limits.rpm:
        wait = await state.atry_take(f"rpm:{name}", 1, limits.rpm, WINDOW_S)
        if wait:
            await state.aleave(f"flight:{name}")
            return Busy("rpm", wait)
    tokens = 0.0
    if limits.tpm:
        tokens = reserved_tokens(request)
        wait = await state.atry_take(f"tpm:{name}", tokens, limits.tpm, WINDOW_S)
        if wait:
            await state.aleave(f"flight:{name}")
            return Busy("tpm", wait)
    return Admission(name, tokens, limits.tpm)


def used_tokens(usage: Usage, reserved: float) -> float:
    total = usage.total_tokens
    return float(total) if total is not None else reserved


def release(state: RouterState, admission: Admission, usage: Usage) -> None:
    """Give back the call's place and settle its token reservation with what it used."""
    state.leave(f"flight:{admission.name}")
    if admission.tpm:
        state.settle(f"tpm:{admission.name}", admission.tokens, used_tokens(usage, admission.tokens), WINDOW_S)


async def arelease(state: RouterState, admission: Admission, usage: Usage) -> None:
    await state.aleave(f"flight:{admission.name}")
    if admission.tpm:
        await state.asettle(f"tpm:{admission.name}", admission.tokens, used_tokens(usage, admission.tokens),
                            WINDOW_S)
