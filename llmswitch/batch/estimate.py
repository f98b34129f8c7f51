"""What a batch could cost, before anything is sent: every line's input counted, ``max_tokens`` as the bound.

Input tokens come from the backend's ``count_tokens`` (exact where the backend can, e.g. tiktoken for OpenAI
models; an estimate otherwise, and the total says so). Output is bounded by each line's ``max_tokens`` (its
own, else the profile's), else the model's maximum output, else 4,096 tokens, as a budget check bounds it.
The per-line worst cases are kept, so ``--max-cost`` can hold each call's worst case while it is in flight.

On a route, a line may be answered by any member (a pool spreads, a fallback hands over), so each line is
priced on every member, with that member's own settings and tokenizer, and its worst case is the dearest:
the estimate is never below what the batch can cost, wherever the router sends each line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from llmswitch.accounting import FALLBACK_MAX_OUTPUT, count_input, price_of
from llmswitch.batch.inputs import BatchItem
from llmswitch.errors import LLMSwitchError
from llmswitch.record import record
from llmswitch.wording import counted

if TYPE_CHECKING:
    from llmswitch.client import ResolvedProfile
    from llmswitch.pricing import ModelPrice
    from llmswitch.types import Request


@record
class Unpriced:
    """A profile whose price is unknown, so the lines it could answer cannot be priced."""

    profile: str
    model: str | None
    source: str


@dataclass
class BatchEstimate:
    """The worst case of sending ``lines`` lines: each priced on the dearest profile that could answer it."""

    lines: int = 0
    input_tokens: int = 0
    output_tokens: int = 0  # the bound: max_tokens per line
    exact: bool = True  # every input count was exact
    methods: set[str] = field(default_factory=set)
    worst_usd: dict[str, float] = field(default_factory=dict)  # line id -> its worst case
    priced_usd: float = 0.0  # the worst cases added up
    unpriced: dict[str, Unpriced] = field(default_factory=dict)  # profile name -> why it has no price
    route: str | None = None  # priced across this route's members
    members: int = 1
    batch_price: bool = False

    @property
    def usd(self) -> float | None:
        """The total worst case, or None when a price is unknown."""
        return None if self.unpriced else self.priced_usd

    def describe(self) -> str:
        from llmswitch.pricing import format_usd

        tokens = f"{self.input_tokens:,} input tokens" + ("" if self.exact else " (estimated)")
        usd = self.usd
        if usd is not None:
            money = f"at most {format_usd(usd)}"
        else:
            money = "cost unknown (" + "; ".join(f"{u.profile}: {u.source}" for u in self.unpriced.values()) + ")"
        text = f"{counted(self.lines, 'line')} to send: {tokens} + up to {self.output_tokens:,} output tokens, {money}"
        if self.batch_price:
            text += " at the batch price"
        if self.route is not None:
            text += (f", each line priced on the dearest of route '{self.route}''s {self.members} members "
                     "(any of them may answer it)")
        return text


def output_bound(max_tokens: int | None, price: ModelPrice) -> int:
    if max_tokens is not None:
        return max_tokens
    return price.max_output if price.max_output is not None else FALLBACK_MAX_OUTPUT


@dataclass
class _Leaf:
    """One profile a line may land on, with its price (looked up once for the whole batch)."""

    resolved: ResolvedProfile
    price: ModelPrice


def estimate_batch(resolved: ResolvedProfile, items: Iterable[BatchItem], *,
                   batch_price: bool = False) -> BatchEstimate:
    """Count and price every line on ``resolved`` (each member of a route); ``batch_price``: at the
    provider's batch price (``--via provider``).

    A line whose request cannot be built (a setting the backend refuses) is left out: it fails when sent,
    without cost.
    """
    from llmswitch.router.bookkeeping import route_of

    route = route_of(resolved)
    leaves = [_Leaf(profile, price_of(profile).batch if batch_price else price_of(profile))
              for profile in resolved.leaves()]
    estimate = BatchEstimate(route=route, members=len(leaves), batch_price=batch_price)
    for leaf in leaves:
        if not leaf.price.known:
            name = leaf.resolved.name
            estimate.unpriced[name] = Unpriced(name, leaf.resolved.target.model, leaf.price.source)
    for item in items:
        try:
            request = item.request(resolved)
        except LLMSwitchError:
            continue
        line = _dearest(leaves, request, routed=route is not None)
        if line is None:
            continue
        tokens_in, tokens_out, exact, method, worst = line
        estimate.lines += 1
        estimate.input_tokens += tokens_in
        estimate.output_tokens += tokens_out
        estimate.exact = estimate.exact and exact
        estimate.methods.add(method)
        if worst is not None:
            estimate.worst_usd[item.key] = worst
            estimate.priced_usd += worst
    return estimate


def _dearest(leaves: list[_Leaf], request: Request, *,
             routed: bool) -> tuple[int, int, bool, str, float | None] | None:
    """(input tokens, output bound, exact, method, worst USD) of the line on the member where it costs most
    (the most tokens when no price is known); None when no member can take the line."""
    from llmswitch.router.resolved import member_request

    found: tuple[int, int, bool, str, float | None] | None = None
    for leaf in leaves:
        try:
            asked = member_request(leaf.resolved, request) if routed else request
        except LLMSwitchError:
            continue
        counted = count_input(leaf.resolved, asked)
        bound = output_bound(asked.max_tokens, leaf.price)
        worst = leaf.price.cost(counted.n, bound)
        line = (counted.n, bound, counted.exact, counted.method, worst)
        if found is None or (worst or 0.0, counted.n + bound) > (found[4] or 0.0, found[0] + found[1]):
            found = line
    return found
