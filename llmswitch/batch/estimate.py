"""What a batch could cost, before anything is sent: every line's input counted, ``max_tokens`` as the bound.

Input tokens come from the backend's ``count_tokens`` (exact where the backend can, e.g. tiktoken for OpenAI
models; an estimate otherwise, and the total says so). Output is bounded by each line's ``max_tokens`` (its
own, else the profile's), else the model's maximum output, else 4,096 tokens, as a budget check bounds it.
The per-line worst cases are kept, so ``--max-cost`` can hold each call's worst case while it is in flight.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from llmswitch.accounting import FALLBACK_MAX_OUTPUT, count_input, price_of
from llmswitch.batch.inputs import BatchItem
from llmswitch.errors import LLMSwitchError

if TYPE_CHECKING:
    from llmswitch.client import ResolvedProfile
    from llmswitch.pricing import ModelPrice


@dataclass
class BatchEstimate:
    """The worst case of sending ``lines`` lines at ``price``."""

    price: ModelPrice
    lines: int = 0
    input_tokens: int = 0
    output_tokens: int = 0  # the bound: max_tokens per line
    exact: bool = True  # every input count was exact
    methods: set[str] = field(default_factory=set)
    worst_usd: dict[str, float] = field(default_factory=dict)  # line id -> its worst case

    @property
    def usd(self) -> float | None:
        """The total worst case, or None when the price is unknown."""
        return self.price.cost(self.input_tokens, self.output_tokens)

    def describe(self) -> str:
        from llmswitch.pricing import format_usd

        counted = f"{self.input_tokens:,} input tokens" + ("" if self.exact else " (estimated)")
        usd = self.usd
        money = f"at most {format_usd(usd)}" if usd is not None else f"cost unknown ({self.price.source})"
        return f"{self.lines:,} lines to send: {counted} + up to {self.output_tokens:,} output tokens, {money}"


def output_bound(max_tokens: int | None, price: ModelPrice) -> int:
    if max_tokens is not None:
        return max_tokens
    return price.max_output if price.max_output is not None else FALLBACK_MAX_OUTPUT


def estimate_batch(resolved: ResolvedProfile, items: Iterable[BatchItem], *,
                   price: ModelPrice | None = None) -> BatchEstimate:
    """Count and price every line (``price``: another price than the profile's, such as its batch price).

    A line whose request cannot be built (a setting the backend refuses) is left out: it fails when sent,
    without cost.
    """
    price = price or price_of(resolved)
    estimate = BatchEstimate(price)
    for item in items:
        try:
            request = item.request(resolved)
        except LLMSwitchError:
            continue
        counted = count_input(resolved, request)
        bound = output_bound(request.max_tokens, price)
        estimate.lines += 1
        estimate.input_tokens += counted.n
        estimate.output_tokens += bound
        estimate.exact = estimate.exact and counted.exact
        estimate.methods.add(counted.method)
        worst = price.cost(counted.n, bound)
        if worst is not None:
            estimate.worst_usd[item.key] = worst
    return estimate
