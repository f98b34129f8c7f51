"""The gateway's protocol-neutral half: which profiles are served, one call from start to ledger row, readiness.

Both protocols (:mod:`.openai_api`, :mod:`.anthropic_api`) turn their request into a :class:`~llmswitch.types.Request`
and hand it here; every call then takes the same steps as ``chat`` does (the budget check before, the ledger
row after, with what was used even when the client left mid-answer), through :class:`~llmswitch.AsyncClient`.
A model id is a profile name: any profile, route or local model the client's config defines.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from llmswitch import accounting
from llmswitch.accounting import Books
from llmswitch.client import AsyncClient, AsyncStreamResult, ResolvedProfile
from llmswitch.errors import LLMSwitchError, ProfileNotFoundError
from llmswitch.ledger import Ledger
from llmswitch.metrics import Metrics
from llmswitch.pricing import ModelPrice
from llmswitch.router import limits
from llmswitch.router.driver import NOTHING_USED
from llmswitch.router.limits import Admission, Busy
from llmswitch.router.state import RouterState
from llmswitch.serve import failures
from llmswitch.serve.failures import GatewayRequestError
from llmswitch.serve.keys import GatewayKey
from llmswitch.types import HealthReport, Request, Status, describe_problems

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
    key: GatewayKey | None = None  # the named gateway key it came with
    admission: Admission | None = None  # its place under the key's rate limits, given back when it ends

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
    # Ledger rows are written by one thread of their own, on a ledger it keeps open: opening the file for
    # each row (what a one-shot `chat` does) costs milliseconds, and the last bytes of an answer wait for its row.
    _bookkeeper: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="llmswitch-ledger"))
    _ledger: Ledger | None = None
    # The served profiles' prices, looked up at their first call (a lookup per call cost a third of a row's
    # bookkeeping, which the end of every answer waits for); a served profile's settings do not change.
    _prices: dict[str, ModelPrice] = field(default_factory=dict)

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

    async def start(self, model: str, build: Callable[[ResolvedProfile], Request], *, stream: bool,
                    key: GatewayKey | None = None) -> Call:
        """Resolve the profile, build the request, check the budgets (the profile's, the key's) and the key's
        rate limits; the answer is not read yet."""
        resolved = self.resolve(model)
        request = build(resolved)
        try:
            return await self._start(resolved, request, stream=stream, key=key)
        except GatewayRequestError:
            raise  # the client's request (or its key's rate), not a call: the HTTP counter has it
        except LLMSwitchError as error:  # refused before sending (no key, over budget): a call that failed
            if self.metrics is not None:
                target = resolved.target
                self.metrics.observe_attempt(resolved.name, target.backend, target.model or "", error.kind, None,
                                             error_kind=error.kind)
            raise

    async def _start(self, resolved: ResolvedProfile, request: Request, *, stream: bool,
                     key: GatewayKey | None) -> Call:
        if accounting.budgets_of(resolved.settings) or (key is not None and accounting.budgets_of(key.settings)):
            await asyncio.to_thread(check_budgets, resolved, request, key)  # a count may ask the API
        admission = await admit(self.client.router_state, key, request) if key is not None else None
        # Checked here (the key's budget too: a refusal is an HTTP error, not a broken stream); charged by the call
        # when it ends, on the bookkeeper's thread and ledger (see finish).
        books = Books(ledger=self._rows(), checked=True, executor=self._bookkeeper,
                      gateway_key=key.name if key is not None else None, prices=self._prices)
        try:
            result = resolved.astream(request, books=books) if stream else resolved.aanswer_whole(request,
                                                                                                  books=books)
        except BaseException:
            if admission is not None:
                await limits.arelease(self.client.router_state, admission, NOTHING_USED)
            raise
        if self.metrics is not None:
            self.metrics.in_flight.labels(resolved.name).inc()
        return Call(resolved, request, result, stream, key=key, admission=admission)

    async def finish(self, call: Call) -> None:
        """Close the upstream and write the ledger row (also for a client that left: what was used is charged).

        Shielded: the task that runs this may be cancelled by a client that disconnects, and the row must still
        be written."""
        if call.finished:
            return
        call.finished = True
        if self.metrics is not None:
            self.metrics.in_flight.labels(call.profile).dec()
        call.result.cut_short()  # a call that ends here before its answer did (the client left) is interrupted
        await asyncio.shield(self._record(call))

    async def _record(self, call: Call) -> None:
        call.result.began = True  # a call the client left before reading may have been sent: charged as interrupted
        await call.result.aclose()  # charged once, however many of the call's ends get here
        call.cost = call.result.cost
        if call.admission is not None:
            await limits.arelease(self.client.router_state, call.admission, call.result.usage)

    def _rows(self) -> Ledger:
        """The ledger the calls' rows go to. Its connection opens at the first row, in the bookkeeper's thread,
        which alone uses it (SQLite connections stay in their thread)."""
        if self._ledger is None:
            self._ledger = Ledger()
        return self._ledger

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
        entry: dict[str, Any] = {"status": report.status.value}
        trouble = describe_problems(report.checks)  # a route's names each member that is down, and why
        if trouble:
            entry["detail"] = trouble
        return entry


# ---- a gateway key's budget and rate limits: the router's and the ledger's code, applied to a key -----------

LIMIT_WORDS = {"rpm": "requests a minute", "tpm": "tokens a minute", "max_concurrent": "calls at once"}


def check_budgets(resolved: ResolvedProfile, request: Request, key: GatewayKey | None) -> None:
    """The key's budget, then the profile's, unless the response cache holds the answer (a hit costs $0)."""
    if resolved.answers_from_cache(request):
        return
    if key is not None and accounting.budgets_of(key.settings):
        status = accounting.budget_status(key.name, key.settings, by="gateway_key")
        worst = resolved.worst_case_usd(request)
        who = f"gateway key '{key.name}'"
        if worst is None:
            raise accounting.unknown_price_refusal(
                who, f"profile '{resolved.name}'", remedy="the gateway's operator can set price_input_per_mtok "
                f"and price_output_per_mtok in [profiles.{resolved.name}], or remove the key's budget")
        over = accounting.over_budget(status, worst)
        if over is not None:
            resets = "at midnight" if over.period == "day" else "on the first of next month"
            raise accounting.budget_refusal(
                who, over, worst, remedy=f"the budget resets {resets} (the gateway's local time); the gateway's "
                f"operator can raise budget_usd_per_{over.period} of key '{key.name}' in [serve] keys")
    resolved.check_budget(request)


async def admit(state: RouterState, key: GatewayKey, request: Request) -> Admission | None:
    """A place under the key's ``rpm``, ``tpm`` and ``max_concurrent`` (the router's limiter, under the name
    ``key:NAME``), or a 429 with ``Retry-After`` when there is none. None: the key sets no limit."""
    if not any(key.settings.get(name) for name in LIMIT_WORDS):
        return None
    admission = await limits.aadmit(state, [(f"key:{key.name}", key.settings)], request)
    if isinstance(admission, Busy):
        limit = admission.limit
        raise GatewayRequestError(
            f"gateway key '{key.name}' is at its {limit} limit ({key.settings[limit]} {LIMIT_WORDS[limit]}); "
            f"retry after {max(1, math.ceil(admission.wait_s))} s",
            status=429, gateway_kind=failures.RATE_LIMITED, retry_after=admission.wait_s)
    return admission
