"""The gateway's protocol-neutral half: which profiles are served, one call from start to ledger row, readiness.

Both protocols (:mod:`.openai_api`, :mod:`.anthropic_api`) turn their request into a :class:`~llmswitch.types.Request`
and hand it here; every call then takes the same steps as ``chat`` does (the budget check before, the ledger
row after, with what was used even when the client left mid-answer), through :class:`~llmswitch.AsyncClient`.
A model id is a profile name: any profile, route or local model the client's config defines.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmswitch import accounting
from llmswitch.client import AsyncClient, AsyncStreamResult, ResolvedProfile
from llmswitch.errors import LLMSwitchError, ProfileNotFoundError
from llmswitch.metrics import Metrics
from llmswitch.types import HealthReport, Request, Status

READY_CACHE_S = 10.0  # /readyz answers from a report this recent (a load balancer polls every few seconds)
READY_TIMEOUT_S = 5.0

# Finish reasons as each protocol names them; the backends report their own provider's words.
OPENAI_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "refusal": "content_filter",
                 "safety": "content_filter", "tool_use": "tool_calls"}
ANTHROPIC_FINISH = {"stop": "end_turn", "length": "max_tokens", "content_filter": "refusal", "safety": "refusal",
                    "tool_calls": "tool_use", "eos": "end_turn"}
OPENAI_FINISH_KNOWN = {"stop", "length", "content_filter", "tool_calls"}
ANTHROPIC_FINISH_KNOWN = {"end_turn", "max_tokens", "stop_sequence", "refusal", "tool_use", "pause_turn"}


def openai_finish(reason: str | None) -> str:
    mapped = OPENAI_FINISH.get(reason or "", reason)
    return mapped if mapped in OPENAI_FINISH_KNOWN else "stop"


def anthropic_finish(reason: str | None) -> str:
    mapped = ANTHROPIC_FINISH.get(reason or "", reason)
    return mapped if mapped in ANTHROPIC_FINISH_KNOWN else "end_turn"


@dataclass
class Call:
    """One answer on its way: the profile that gives it, what was asked, and the result being driven."""

    resolved: ResolvedProfile
    request: Request
    result: AsyncStreamResult
    stream: bool
    cost: Any = None  # the ledger's CallCost once finished (None when unknown)
    finished: bool = False

    @property
    def profile(self) -> str:
        return self.resolved.name


@dataclass
class Gateway:
    """The served profiles of one config, resolved once each, and the bookkeeping of every call."""

    client: AsyncClient
    profiles: Sequence[str] = ()  # empty: every profile of the config
    _resolved: dict[str, ResolvedProfile] = field(default_factory=dict)
    _ready: tuple[float, dict[str, Any]] | None = None
    _ready_lock: asyncio.Lock | None = None
    metrics: Metrics | None = None  # calls in flight (the rest is counted where every call is: accounting)

    def models(self) -> list[str]:
        return list(self.profiles) or self.client.store.names()

    def resolve(self, name: str) -> ResolvedProfile:
        """The served profile of that name, resolved on first use (its key, URL and options)."""
        resolved = self._resolved.get(name)
        if resolved is not None:
            return resolved
        if self.profiles and name not in self.profiles:
            raise ProfileNotFoundError(name, list(self.profiles))
        resolved = self.client.resolve(name)
        self._resolved[name] = resolved
        return resolved

    async def start(self, model: str, build: Callable[[ResolvedProfile], Request], *, stream: bool) -> Call:
        """Resolve the profile, build the request, check the budget; the answer is not read yet."""
        resolved = self.resolve(model)
        request = build(resolved)
        if accounting.budgets_of(resolved.settings):
            await asyncio.to_thread(accounting.check_budget, resolved, request)  # a count may ask the API
        result = resolved.astream(request) if stream else resolved.aanswer_whole(request)
        if self.metrics is not None:
            self.metrics.in_flight.labels(resolved.name).inc()
        return Call(resolved, request, result, stream)

    async def finish(self, call: Call) -> None:
        """Close the upstream and write the ledger row (also for a client that left: what was used is charged).

        Shielded: the task that runs this may be cancelled by a client that disconnects, and the row must still
        be written."""
        if call.finished:
            return
        call.finished = True
        if self.metrics is not None:
            self.metrics.in_flight.labels(call.profile).dec()
        result = call.result
        if result.latency_s is None:
            result.interrupted = True
            result.ended()
        await asyncio.shield(self._record(call))

    async def _record(self, call: Call) -> None:
        await call.result.aclose()
        try:
            call.cost = await asyncio.to_thread(accounting.record_call, call.resolved, call.request, call.result)
        except LLMSwitchError:
            call.cost = None  # bookkeeping must never cost the client the answer

    async def count_tokens(self, model: str, build: Callable[[ResolvedProfile], Request]) -> int:
        resolved = self.resolve(model)
        return (await resolved.acount_tokens(build(resolved))).n

    # ---- readiness --------------------------------------------------------------------------------------

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Each served profile's health, checked at most every READY_CACHE_S; ready when none is down."""
        if self._ready_lock is None:
            self._ready_lock = asyncio.Lock()
        async with self._ready_lock:  # one check at a time, however many probes arrive at once
            now = time.monotonic()
            if self._ready is None or now - self._ready[0] > READY_CACHE_S:
                names = self.models()
                reports = await asyncio.gather(*(self._health(name) for name in names))
                self._ready = (now, dict(zip(names, reports, strict=True)))
            profiles = self._ready[1]
        ready = all(entry["status"] != Status.DOWN.value for entry in profiles.values())
        return ready, profiles

    async def _health(self, name: str) -> dict[str, Any]:
        try:
            report: HealthReport = await asyncio.wait_for(
                self.resolve(name).ahealth(timeout=READY_TIMEOUT_S), READY_TIMEOUT_S + 1)
        except LLMSwitchError as error:
            return {"status": Status.DOWN.value, "detail": error.message}
        except asyncio.TimeoutError:
            return {"status": Status.DOWN.value, "detail": f"no answer in {READY_TIMEOUT_S:.0f} s"}
        failed = [check.detail for check in report.checks if check.status.value == "fail"]
        entry: dict[str, Any] = {"status": report.status.value}
        if failed:
            entry["detail"] = "; ".join(failed)
        return entry
