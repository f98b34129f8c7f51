"""``llmswitch bench``: time profiles against each other on the same prompt.

Calls are interleaved (round 1: A, B, C; round 2: A, B, C; ...) so a machine that gets busier half-way hurts
every profile alike. Each call is a real streamed chat through the client: time to the first text, the whole
latency, the tokens the backend reported (or counted here, marked estimated) and what it cost by the price
tables, recorded in the usage ledger like any other call. Warm-up calls come first and are left out of the
numbers; the first of them is the cold start (a local model's load, a new connection), reported apart as the
time it took beyond a warm call's. A failed call is kept as a failure with its error, never a crash.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmswitch.client import Client, ResolvedProfile
from llmswitch.errors import LLMSwitchError
from llmswitch.record import record

# A fixed prompt that makes a chat model write a few hundred tokens, the same for every profile and run.
DEFAULT_PROMPT = (
    "Write a short story, about 250 words, about a lighthouse keeper who finds a message in a bottle. "
    "Give it a title, three paragraphs and an ending that surprises."
)


@record(slots=False)
class Sample:
    """One measured call. Times in seconds; ``error`` is set (and the rest may be None) when it failed."""

    ttft_s: float | None = None
    total_s: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    tokens_estimated: bool = False
    error: str | None = None

    @property
    def tokens_per_s(self) -> float | None:
        """Output tokens over the generation time (after the first token), the rate a reader sees."""
        if self.output_tokens is None or self.total_s is None or self.ttft_s is None:
            return None
        generating = self.total_s - self.ttft_s
        if generating <= 0 or self.output_tokens <= 1:
            return None
        return (self.output_tokens - 1) / generating


@record(slots=False)
class Spread:
    """The median of some numbers, with their minimum and maximum."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float | None]) -> Spread | None:
        known = [value for value in values if value is not None]
        if not known:
            return None
        return cls(statistics.median(known), min(known), max(known))

    def as_dict(self) -> dict[str, float]:
        return {"median": self.median, "min": self.low, "max": self.high}


METRICS: dict[str, Callable[[Sample], float | None]] = {
    "ttft_s": lambda sample: sample.ttft_s,
    "tokens_per_s": lambda sample: sample.tokens_per_s,
    "total_s": lambda sample: sample.total_s,
    "input_tokens": lambda sample: sample.input_tokens,
    "output_tokens": lambda sample: sample.output_tokens,
    "cost_usd": lambda sample: sample.cost_usd,
}


@dataclass
class ProfileBench:
    """Everything measured for one profile."""

    profile: str
    backend: str = ""
    model: str = ""
    samples: list[Sample] = field(default_factory=list)
    warmups: list[Sample] = field(default_factory=list)
    error: str | None = None  # the profile could not be resolved at all

    @property
    def ok(self) -> list[Sample]:
        return [sample for sample in self.samples if sample.error is None]

    @property
    def failures(self) -> list[Sample]:
        return [sample for sample in [*self.warmups, *self.samples] if sample.error is not None]

    def spread(self, metric: str) -> Spread | None:
        return Spread.of([METRICS[metric](sample) for sample in self.ok])

    @property
    def cold_start_s(self) -> float | None:
        """How much longer the first call took to its first text than a warm one (a model load, a new
        connection); None without a warm-up call or a warm one to compare with."""
        if not self.warmups or self.warmups[0].ttft_s is None:
            return None
        warm = self.spread("ttft_s")
        if warm is None:
            return None
        return max(0.0, self.warmups[0].ttft_s - warm.median)

    @property
    def tokens_estimated(self) -> bool:
        return any(sample.tokens_estimated for sample in self.ok)

    def as_dict(self) -> dict[str, Any]:
        stats = {metric: (spread.as_dict() if (spread := self.spread(metric)) else None) for metric in METRICS}
        return {
            "profile": self.profile, "backend": self.backend, "model": self.model, "calls": len(self.samples),
            "ok": len(self.ok), "failed": len(self.failures), "cold_start_s": self.cold_start_s,
            "first_call_ttft_s": self.warmups[0].ttft_s if self.warmups else None,
            "tokens_estimated": self.tokens_estimated, "error": self.error or self.first_error, **stats,
            "samples": [{**{metric: METRICS[metric](s) for metric in METRICS}, "error": s.error} for s in self.samples],
        }

    @property
    def first_error(self) -> str | None:
        return self.failures[0].error if self.failures else None


def measure(resolved: ResolvedProfile, prompt: str) -> Sample:
    """One streamed call, timed; recorded in the ledger; a failure becomes a sample with its error."""
    from llmswitch.accounting import CallCost
    from llmswitch.errors import BudgetExceededError
    from llmswitch.secrets import redact

    request = resolved.request(prompt)
    try:
        result = resolved.stream(request)  # checked against the budget before sending, charged when it ends
    except BudgetExceededError as refused:
        return Sample(error=redact(refused.message))
    started = time.perf_counter()
    for _ in result:
        pass
    total = time.perf_counter() - started
    cost = result.cost or CallCost(None, None, None)
    if result.error is not None:
        return Sample(error=redact(result.error.message))
    return Sample(result.first_token_s, result.latency_s or total, cost.input_tokens, cost.output_tokens, cost.usd,
                  cost.tokens_estimated)


def run_bench(
    client: Client,
    profiles: Sequence[str],
    prompt: str = DEFAULT_PROMPT,
    *,
    runs: int = 5,
    warmup: int = 1,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[ProfileBench]:
    """Time ``runs`` calls per profile after ``warmup`` calls, interleaved round by round."""
    benches: list[ProfileBench] = []
    resolved: dict[str, ResolvedProfile] = {}
    for name in profiles:
        bench = ProfileBench(name)
        benches.append(bench)
        try:
            resolved[name] = client.resolve(name)
        except LLMSwitchError as error:
            bench.error = error.message
            continue
        bench.backend, bench.model = resolved[name].target.backend, resolved[name].target.model
    total = (warmup + runs) * len(resolved)
    done = 0
    for round_index in range(warmup + runs):
        for bench in benches:
            if bench.profile not in resolved:
                continue
            if progress is not None:
                progress(bench.profile, done, total)
            sample = measure(resolved[bench.profile], prompt)
            (bench.warmups if round_index < warmup else bench.samples).append(sample)
            done += 1
    return benches
