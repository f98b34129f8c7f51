"""Batches: thousands of prompts asked concurrently, each result committed as it completes.

    from llmswitch import AsyncClient

    async with AsyncClient() as client:
        async for result in client.batch("fast", ["What is 2+2?", "Name a prime."], concurrency=10):
            print(result.id, result.text if result.ok else result.error)

- :func:`run` / :meth:`llmswitch.AsyncClient.batch`: results as they complete (:class:`BatchResult`), nothing
  stored; for a notebook or a service.
- :class:`BatchJob`: what ``llmswitch batch`` does: an input file (:mod:`~llmswitch.batch.inputs`) to an OUTPUT
  file (:mod:`~llmswitch.batch.output`), checkpointed (:mod:`llmswitch.store.checkpoint`), resumable, priced
  before it starts (:mod:`~llmswitch.batch.estimate`).
"""

from __future__ import annotations

from llmswitch.batch.inputs import BatchInput, BatchItem, InputError, InputProblem, read_input
from llmswitch.batch.job import BatchJob, BatchOptions, CostLimitError, Plan, Progress, Summary
from llmswitch.batch.results import BatchResult
from llmswitch.batch.runner import DEFAULT_CONCURRENCY, Runner, run
from llmswitch.router.plan import Attempt

__all__ = [
    "DEFAULT_CONCURRENCY",
    "Attempt",
    "BatchInput",
    "BatchItem",
    "BatchJob",
    "BatchOptions",
    "BatchResult",
    "CostLimitError",
    "InputError",
    "InputProblem",
    "Plan",
    "Progress",
    "Runner",
    "Summary",
    "read_input",
    "run",
]
