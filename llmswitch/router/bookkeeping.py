"""The usage ledger's rows for the attempts that did not answer: one row per retry or fallback that failed,
with its outcome and no cost, so ``llmswitch usage`` shows what the router did (and the same attempts counted
in the metrics, when they are on). The answering attempt's row is
written by :func:`llmswitch.accounting.record_call`, charged to the member that answered."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from llmswitch.errors import LLMSwitchError
from llmswitch.lazy import logger
from llmswitch.router.plan import Attempt
from llmswitch.secrets import redact

if TYPE_CHECKING:
    from llmswitch.client import ResolvedProfile
    from llmswitch.ledger import RowSink


def route_of(asked: ResolvedProfile) -> str | None:
    """The route's name when ``asked`` is a route (its calls are counted under it: ``usage --by route``)."""
    leaves = asked.leaves()
    return asked.name if len(leaves) != 1 or leaves[0] is not asked else None


def record_failed_attempts(attempts: Sequence[Attempt], asked: ResolvedProfile, *,
                           gateway_key: str | None = None, ledger: RowSink | None = None) -> None:
    """Append a row for each attempt but the last (the last is the call's own row) of a call made on ``asked``
    (each under the routes it went through) to ``ledger`` (by default
    this thread's ledger file, kept open: :func:`llmswitch.ledger.append_kept`), and count each in the metrics
    when they are on. Never raises."""
    if len(attempts) < 2:
        return
    from llmswitch import metrics
    from llmswitch.ledger import LedgerEntry, append_kept, through_routes

    active = metrics.active()
    if active is not None:
        for attempt in attempts[:-1]:
            active.observe_attempt(attempt.member, attempt.backend or "", attempt.model or "", attempt.outcome,
                                   attempt.latency_s, flush=False,
                                   error_kind=attempt.outcome if attempt.outcome != "ok" else None)
        active.flush()
    rows = [LedgerEntry(profile=attempt.member, backend=attempt.backend or "", model=attempt.model, input_tokens=None,
                        output_tokens=None, cost_usd=None, latency_s=attempt.latency_s, outcome=attempt.outcome,
                        gateway_key=gateway_key, **through_routes(asked.routes_to(attempt.member)))
            for attempt in attempts[:-1]]
    try:
        if ledger is not None:
            for row in rows:
                ledger.append(row)
        else:
            append_kept(rows)
    except LLMSwitchError as error:
        logger(__name__).warning("the failed attempts were not recorded: %s", redact(error.message))
