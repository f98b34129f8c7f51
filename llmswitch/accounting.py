"""Cost accounting around each call: the estimate and budget check before, the ledger entry after.

Every call made through a resolved profile is checked and charged in ONE place, whichever face made it: the
library (``Client``/``AsyncClient``: ``complete``, ``stream``, ``acomplete``, ``astream``), chat and the TUI
(:class:`~llmswitch.conversation.Conversation`), ``llmswitch batch``, ``llmswitch serve`` and ``llmswitch bench``:

- before sending: :meth:`ResolvedProfile.check_before_sending <llmswitch.client.ResolvedProfile.check_before_sending>`
  (the profile's or route's budget, through :func:`check_budget`; a response-cache hit costs $0 and skips it);
- when the call ends (answered, failed, cancelled, or cut short with part of an answer):
  :meth:`StreamState.settle <llmswitch.client.StreamState.settle>` writes, once, a row for each attempt that
  failed first and the call's own row charged to the member that answered (``result.resolved``) with the route
  named (:func:`charge`, :func:`record_call`), counts it in the metrics, and keeps the cost on ``result.cost``.

A face that needs more than the default passes :class:`Books` (``books=``) to the call: an open ledger (a batch
keeps one for the run, the gateway one on its bookkeeping thread), that it checked the budgets itself (the
gateway checks a key's budget too; async chat checks before it writes the prompt to the history), and where an
async call's rows are written. ``llmswitch cost`` and ``doctor`` use :func:`estimate_cost` and
:func:`budget_status`.

Budgets are per profile (``budget_usd_per_day``, ``budget_usd_per_month``), in local days and months. A call
is refused when the spend so far plus its worst case (the input tokens ``count_tokens`` reports, plus
``max_tokens`` of output, or the model's maximum output when the profile sets no ``max_tokens``) would pass
a budget. A profile with a budget and no known price is refused too: its budget could not be kept.

The spend so far is the larger of two totals: this machine's usage ledger, and the router state's
(:meth:`~llmswitch.router.state.RouterState.add_spend`, to which :func:`record_call` adds every charged call).
In one process the state's total is never the larger (the ledger holds every call the process made, and more);
with ``[router] state`` naming a Redis it holds every process's calls on every machine, so they all obey one
budget. One rule, whichever state is configured.

Nothing is imported here beyond the standard library until it is needed: a profile without a budget costs
the call nothing before it is sent.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llmswitch.errors import BudgetExceededError, LLMSwitchError
from llmswitch.lazy import logger
from llmswitch.record import record
from llmswitch.secrets import redact

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from llmswitch.client import Client, ResolvedProfile, StreamState
    from llmswitch.ledger import Ledger, RowSink, SpendOwner
    from llmswitch.pricing import ModelPrice
    from llmswitch.router.state import RouterState
    from llmswitch.types import Request, TokenCount


# Output assumed for a budget check when neither the request, the profile nor the price table bounds it.
FALLBACK_MAX_OUTPUT = 4096
BUDGET_KEYS = {"day": "budget_usd_per_day", "month": "budget_usd_per_month"}


@record
class CallCost:
    """What one finished call cost. ``usd`` is None when the price (or the token count) is unknown."""

    usd: float | None
    input_tokens: int | None
    output_tokens: int | None
    tokens_estimated: bool = False  # the backend reported no usage: the tokens were counted here
    price_source: str = "unknown"
    price_date: str | None = None  # the date of the price table, so its age can be shown

    def __str__(self) -> str:
        from llmswitch.pricing import format_usd

        if self.usd is None:
            return f"unknown ({self.price_source})"
        if self.price_source == "cached":
            return format_usd(self.usd) + " (cached)"
        return format_usd(self.usd) + (" (estimated tokens)" if self.tokens_estimated else "")

    def as_dict(self) -> dict[str, Any]:
        from llmswitch.pricing import age_in_days

        return {
            "usd": round(self.usd, 10) if self.usd is not None else None,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "tokens_estimated": self.tokens_estimated,
            "price_source": self.price_source,
            "price_date": self.price_date,
            "price_age_days": age_in_days(self.price_date),
        }


@record
class CostEstimate:
    """What a request would cost on one profile, before it is sent."""

    input: TokenCount
    output_tokens: int
    output_basis: str  # where output_tokens came from: "--output-tokens", "max_tokens", "standard request", ...
    price: ModelPrice

    @property
    def usd(self) -> float | None:
        return self.price.cost(self.input.n, self.output_tokens)


@record
class BudgetStatus:
    """Spend in the current day or month against the profile's budget for it."""

    period: str  # "day" or "month"
    budget_usd: float
    spent_usd: float
    since: float  # Unix time the period started

    @property
    def resets_at(self) -> float:
        """Unix time the next period starts (local midnight, or the first of next month)."""
        from llmswitch.ledger import start_of_next

        return start_of_next(self.period, self.since)

    @property
    def remaining_usd(self) -> float:
        return self.budget_usd - self.spent_usd

    def as_dict(self) -> dict[str, Any]:
        return {"period": self.period, "budget_usd": self.budget_usd, "spent_usd": round(self.spent_usd, 10)}


@record
class Books:
    """How one call is checked before it is sent and charged when it ends: what a face passes as ``books=`` to
    a resolved profile's ``complete``, ``stream``, ``answer_whole`` and their async forms. ``Books()`` (the
    default) is what a library call gets: its budget checked, its rows written to the ledger file.

    ``ledger``: an open ledger the rows go to (by default the thread's own, kept open: see
    :func:`llmswitch.ledger.append_kept`).
    ``checked``: the face already ran the check before sending (the gateway, which checks a key's budget too;
    async chat, before the prompt goes into the history), so the call does not run it again.
    ``gateway_key``: the named key a ``serve`` call came with (its budget reads these rows). ``prices``: a
    cache of the members' prices for a face that makes many calls (a batch).
    ``inline``: an async call writes its rows on the event loop (for a ledger used from the loop's thread only,
    as a batch's is); by default they are written in ``executor``, or in a worker thread when that is None (an
    SQLite write must not hold the loop).
    """

    ledger: RowSink | None = None
    checked: bool = False
    inline: bool = False
    executor: Executor | None = None
    gateway_key: str | None = None  # the name of the gateway key the call came with, on each of its rows
    prices: dict[str, ModelPrice] | None = None  # the members' prices, looked up once per run (a batch)

    def price_for(self, member: ResolvedProfile) -> ModelPrice | None:
        """The answering member's price from ``prices`` (looked up the first time); None: look it up per call."""
        if self.prices is None:
            return None
        price = self.prices.get(member.name)
        if price is None:
            price = self.prices[member.name] = price_of(member)
        return price


DEFAULT_BOOKS = Books()


# ---- estimates -----------------------------------------------------------------------------------------


def price_of(resolved: ResolvedProfile) -> ModelPrice:
    """The profile's price per million tokens (its own keys win over the plugin's table)."""
    from llmswitch.pricing import price_for

    target = resolved.target
    return price_for(resolved.handle.info, target.model, resolved.settings, target.base_url)


def count_input(resolved: ResolvedProfile, request: Request) -> TokenCount:
    """Input tokens through the backend's ``count_tokens``; the core's estimate if that fails."""
    from llmswitch.types import estimate_tokens

    try:
        return resolved.count_tokens(request)
    except LLMSwitchError as error:
        logger(__name__).debug("count_tokens failed for %s, estimating: %s", resolved.name, redact(str(error)))
        return estimate_tokens(request)


def estimate_cost(
    resolved: ResolvedProfile,
    request: Request,
    output_tokens: int | None = None,
    *,
    for_budget: bool = False,
    input_count: TokenCount | None = None,
) -> CostEstimate:
    """Price ``request`` on this profile before sending it.

    Input tokens: ``input_count`` when given, else the backend's ``count_tokens`` of the request.
    Output tokens: ``output_tokens`` when given; else, for a budget check (the worst case), the request's
    ``max_tokens``, or the model's maximum output when it sets none; else, for an estimate, the standard request's
    500, whatever ``max_tokens`` allows, so that ``cost`` and ``doctor`` price the same request.
    """
    from llmswitch.pricing import STANDARD_OUTPUT_TOKENS

    price = price_of(resolved)
    if output_tokens is not None:
        assumed, basis = output_tokens, "--output-tokens"
    elif not for_budget:
        assumed, basis = STANDARD_OUTPUT_TOKENS, "standard request"
    elif request.max_tokens is not None:
        assumed, basis = request.max_tokens, "max_tokens"
    elif price.max_output is not None:
        assumed, basis = price.max_output, "the model's maximum output"
    else:
        assumed, basis = FALLBACK_MAX_OUTPUT, "no max_tokens set"
    counted = input_count if input_count is not None else count_input(resolved, request)
    return CostEstimate(counted, assumed, basis, price)


# ---- budgets ---------------------------------------------------------------------------------------------


def budgets_of(settings: Mapping[str, Any]) -> dict[str, float]:
    """The profile's budgets by period (``day``, ``month``); empty when it sets none."""
    return {period: float(settings[key]) for period, key in BUDGET_KEYS.items() if settings.get(key) is not None}


def period_label(period: str, now: float | None = None) -> str:
    """The router state's label for the budget period (``day``, ``month``) that ``now`` (by default the present)
    falls in, in local time: ``day:2026-11-28``, ``month:2026-11``."""
    moment = time.localtime(now)
    return time.strftime("day:%Y-%m-%d" if period == "day" else "month:%Y-%m", moment)


def budget_status(
    owner: str, settings: Mapping[str, Any], *, ledger: Ledger | None = None, now: float | None = None,
    by: SpendOwner = "profile", state: RouterState | None = None,
) -> list[BudgetStatus]:
    """Spend against each budget ``settings`` sets (empty when none, without opening the ledger): the spend of
    the profile ``owner``, or with ``by="gateway_key"`` of the gateway key of that name (``llmswitch serve``).
    A profile's spend is the larger of the ledger's total and ``state``'s (see the module docstring)."""
    budgets = budgets_of(settings)
    if not budgets:
        return []
    from llmswitch.ledger import Ledger, start_of_day, start_of_month

    now = time.time() if now is None else now
    starts = {"day": start_of_day(now), "month": start_of_month(now)}
    own = ledger is None
    ledger = ledger or Ledger()
    try:
        statuses = []
        for period, limit in budgets.items():
            spent = ledger.spend(owner, starts[period], by)
            if state is not None and by == "profile":
                spent = max(spent, state.add_spend(owner, 0.0, period_label(period, now)))
            statuses.append(BudgetStatus(period, limit, spent, starts[period]))
        return statuses
    finally:
        if own:
            ledger.close()


def over_budget(statuses: Iterable[BudgetStatus], worst_usd: float) -> BudgetStatus | None:
    """The first budget that the spend so far plus this call's worst case would pass, or None."""
    for status in statuses:
        if status.spent_usd + worst_usd > status.budget_usd:
            return status
    return None


def budget_refusal(who: str, status: BudgetStatus, worst_usd: float, *, remedy: str, spent_by: str = "",
                   detail: str = "") -> BudgetExceededError:
    """The one wording of a refused call: who spent what of which budget, and what this call could cost."""
    from llmswitch.pricing import format_usd

    period = "daily" if status.period == "day" else "monthly"
    error = BudgetExceededError(
        f"{who} has spent {format_usd(status.spent_usd)} of its {format_usd(status.budget_usd)} {period} budget"
        f"{spent_by}, and this call could cost up to {format_usd(worst_usd)}{detail}; it was not sent",
        remedy=remedy)
    error.retry_after = max(0.0, status.resets_at - time.time())
    return error


def unknown_price_refusal(who: str, what: str, remedy: str, why: str = "") -> BudgetExceededError:
    return BudgetExceededError(f"{who} has a budget but the price of {what} is unknown{why}, so the call was not "
                               "sent", remedy=remedy)


def add_spend(state: RouterState, profile: str, usd: float, now: float | None = None) -> None:
    """Add a charged call to ``profile``'s totals in the router state, for each budget period (the ones ``now``
    falls in, by default the present)."""
    for period in BUDGET_KEYS:
        state.add_spend(profile, usd, period_label(period, now))


def check_budget(resolved: ResolvedProfile, request: Request) -> None:
    """Raise BudgetExceededError, before anything is sent, when the call's estimate would pass a budget."""
    if not budgets_of(resolved.settings):
        return
    estimate = estimate_cost(resolved, request, for_budget=True)
    usd = estimate.usd
    if usd is None:
        raise unknown_price_refusal(
            f"profile '{resolved.name}'", resolved.target.model, why=f" ({estimate.price.source})",
            remedy=f"set price_input_per_mtok and price_output_per_mtok in [profiles.{resolved.name}] "
            "(USD per million tokens), or remove its budget")
    status = over_budget(budget_status(resolved.name, resolved.settings, state=resolved.state), usd)
    if status is not None:
        resets = "at midnight" if status.period == "day" else "on the first of next month"
        raise budget_refusal(
            f"profile '{resolved.name}'", status, usd,
            detail=f" ({estimate.input.n} input + {estimate.output_tokens} output tokens, {estimate.output_basis})",
            remedy=f"the budget resets {resets} (local time); raise budget_usd_per_{status.period} in "
            f"[profiles.{resolved.name}], lower max_tokens, or use another profile")


# ---- after the call -----------------------------------------------------------------------------------


def call_cost(resolved: ResolvedProfile, request: Request | None, result: StreamState, *,
              price: ModelPrice | None = None) -> CallCost:
    """The cost of a finished (or failed, or interrupted) call from the usage the backend reported.

    When the backend reported no usage but text arrived (an interrupted stream, a backend that does not
    say), the tokens are counted here and marked estimated. A call that failed before any answer costs
    nothing we know of: its tokens and cost stay None. ``price``: another price than the profile's (a provider's
    batch price); ``request`` None: a call known only by its answer (input tokens it did not report stay None).
    """
    usage = result.usage
    if result.cached:  # replayed from the response cache: nothing was asked of the backend
        return CallCost(0.0, usage.input_tokens, usage.output_tokens, price_source="cached")
    price = price if price is not None else price_of(resolved)
    input_tokens, output_tokens = usage.input_tokens, usage.output_tokens
    estimated = False
    answered = result.error is None or bool(result.text)  # the text (joined from every piece) only if it matters
    if answered and (input_tokens is None or output_tokens is None):
        estimated = True
        if input_tokens is None and request is not None:
            input_tokens = count_input(resolved, request).n
        if output_tokens is None:
            output_tokens = max(1, round(len(result.text) / 4)) if result.text else 0  # the core's chars/4
    return CallCost(price.cost(input_tokens, output_tokens), input_tokens, output_tokens, estimated, price.source,
                    price.date)


def outcome_of(result: StreamState) -> str:
    if result.error is not None:
        return result.error.kind
    if result.interrupted:
        return "interrupted"
    return "cached" if result.cached else "ok"


def record_call(resolved: ResolvedProfile, request: Request | None, result: StreamState, route: Sequence[str] = (),
                *, ledger: RowSink | None = None, price: ModelPrice | None = None,
                gateway_key: str | None = None) -> CallCost:
    """Append one row to the usage ledger (never the key, never the prompt or answer), count the call in the
    metrics when they are on (:mod:`llmswitch.metrics`); return the cost.

    ``ledger``: an open ledger to write to (a batch keeps one for all its calls); by default this thread's
    ledger file, kept open (:func:`llmswitch.ledger.append_kept`). A ledger that cannot be written is logged,
    never raised: bookkeeping must not cost the user the answer. ``price``: as for :func:`call_cost`.
    ``gateway_key``: the name of the key a ``serve`` call came with (its budget reads these rows). ``route``: the routes the call went through,
    outermost first (empty: the profile was called directly).
    """
    from llmswitch import metrics
    from llmswitch.ledger import LedgerEntry, append_kept, through_routes

    cost = call_cost(resolved, request, result, price=price)
    outcome = outcome_of(result)
    model = result.model or resolved.target.model
    entry = LedgerEntry(
        profile=resolved.name,
        backend=resolved.target.backend,
        model=model,
        input_tokens=cost.input_tokens,
        output_tokens=cost.output_tokens,
        cost_usd=cost.usd,
        latency_s=result.latency_s,
        outcome=outcome,
        tokens_estimated=cost.tokens_estimated,
        gateway_key=gateway_key,
        **through_routes(route),
    )
    active = metrics.active()
    if active is not None:
        active.observe_call(resolved.name, resolved.target.backend, model, result, cost, outcome)
    if cost.usd and resolved.state is not None:  # shared budgets: the state's totals (see budget_status)
        add_spend(resolved.state, resolved.name, cost.usd)
    try:
        if ledger is not None:
            ledger.append(entry)
        else:
            append_kept((entry,))
    except LLMSwitchError as error:
        logger(__name__).warning("usage not recorded: %s", redact(error.message))
    return cost


def charges_at_once(result: StreamState, books: Books) -> bool:
    """Whether charging ``result`` (:func:`charge`) waits on nothing: its rows go to the process's ledger writer
    (:class:`llmswitch.ledger.RowWriter`), its spend to a router state in this process, no metrics file is
    written, and no token count is asked of the backend. Then an async call is charged on its event loop (a few
    microseconds), not in a worker thread it would wait for."""
    from llmswitch import metrics
    from llmswitch.router.state import LocalState

    if books.ledger is not None or metrics.active() is not None:
        return False
    state = result.resolved.state
    if state is not None and type(state) is not LocalState:
        return False
    usage = result.usage
    answered = bool(result.text) or result.error is None  # as call_cost decides whether to count
    return result.cached or usage.input_tokens is not None or not answered or result.request is None


def charge(asked: ResolvedProfile, request: Request | None, result: StreamState, *, ledger: RowSink | None = None,
           gateway_key: str | None = None, price: ModelPrice | None = None) -> CallCost:
    """The ledger rows of one call made on ``asked`` (a profile or a route): a row per retry or fallback that
    failed first, then the call's own row, charged to the member that answered (``result.resolved``) and counted
    under the route, and under each route nested in it that the call went through (``usage --by route``). Use :meth:`StreamState.settle <llmswitch.client.StreamState.settle>`,
    which calls this once per call. ``price``: the answering member's, when the caller looked it up already (a
    batch, once per member)."""
    if result.attempts:
        from llmswitch.router.bookkeeping import record_failed_attempts

        record_failed_attempts(result.attempts, asked, gateway_key=gateway_key, ledger=ledger)
    return record_call(result.resolved, request, result, asked.routes_to(result.resolved.name), ledger=ledger,
                       gateway_key=gateway_key, price=price)


# ---- comparing profiles ----------------------------------------------------------------------------------


@record(slots=False)
class ProfileCost:
    """One row of ``llmswitch cost``: what ``requests`` requests would cost on one profile."""

    profile: str
    backend: str
    model: str | None
    requests: int
    estimate: CostEstimate | None = None
    error: LLMSwitchError | None = None  # the profile could not be priced (plugin missing, invalid, ...)
    member: str | None = None  # a route's row: the member profile priced (whose table holds its price keys)

    @property
    def usd_per_request(self) -> float | None:
        return self.estimate.usd if self.estimate is not None else None

    @property
    def usd_total(self) -> float | None:
        per_request = self.usd_per_request
        return per_request * self.requests if per_request is not None else None


def compare_costs(
    client: Client,
    names: list[str] | None,
    *,
    prompt: str | None = None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    requests: int = 1,
) -> list[ProfileCost]:
    """Price one request (and ``requests`` of them) on each profile (all when ``names`` is None), cheapest
    first; profiles whose price is unknown come after, then those that could not be resolved.

    Input tokens: ``input_tokens`` when given, else ``prompt`` counted by each backend's ``count_tokens``
    (exact or estimate), else the standard request's 500.
    """
    from llmswitch.pricing import STANDARD_INPUT_TOKENS
    from llmswitch.types import TokenCount

    given: TokenCount | None = None  # None: count the prompt with each backend's tokenizer
    if input_tokens is not None:
        given = TokenCount(input_tokens, True, "--input-tokens")
    elif prompt is None:
        given = TokenCount(STANDARD_INPUT_TOKENS, True, "standard request")
    rows: list[ProfileCost] = []
    for name in list(dict.fromkeys(names or client.store.names())):
        profile = client.store.get(name)
        try:
            resolved = client.resolve(name)
        except LLMSwitchError as error:
            rows.append(ProfileCost(name, profile.backend, profile.model, requests, error=error))
            continue
        request = resolved.request(prompt if prompt is not None else "")
        leaves = resolved.leaves()
        if leaves != [resolved]:  # a route costs what the member that answers costs: one row per member
            from llmswitch.router.resolved import member_request

            for leaf in leaves:
                estimate = estimate_cost(leaf, member_request(leaf, request), output_tokens, input_count=given)
                rows.append(ProfileCost(f"{name} → {leaf.name}", leaf.target.backend, leaf.target.model, requests,
                                        estimate, member=leaf.name))
            continue
        estimate = estimate_cost(resolved, request, output_tokens, input_count=given)
        rows.append(ProfileCost(name, resolved.target.backend, resolved.target.model, requests, estimate))

    def order(row: ProfileCost) -> tuple[int, float, str]:
        usd = row.usd_per_request
        return (0 if usd is not None else 1 if row.error is None else 2, usd or 0.0, row.profile)

    return sorted(rows, key=order)
