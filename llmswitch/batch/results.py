"""One line's outcome, and its JSON record: what OUTPUT holds and the checkpoint keeps.

A record is one JSON object::

    {"id": 7, "line": 7, "text": "...", "finish_reason": "stop",
     "usage": {"input_tokens": 12, "output_tokens": 40}, "cost": {"usd": 0.0000258, ...},
     "model": "gpt-4o-mini", "profile": "fast", "latency_s": 0.81,
     "attempts": [{"member": "fast", "outcome": "ok", "status": null, "latency_s": 0.81}], "cached": false,
     "error": null}

``error`` is ``{"kind", "message", "remedy"}`` for a line that failed (``text`` then holds what arrived before
the failure, often nothing). ``cached`` is true for an answer replayed from the response cache (asked of no one,
$0), as in ``chat --json``. ``profile`` is the profile (a route's member) that answered; ``attempts`` are the
router's (:class:`llmswitch.router.plan.Attempt`): every try of every member, the answering one last.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmswitch.record import record
from llmswitch.types import Usage

if TYPE_CHECKING:
    from llmswitch.accounting import CallCost
    from llmswitch.errors import LLMSwitchError
    from llmswitch.router.plan import Attempt

Record = dict[str, Any]


@record
class BatchResult:
    """How one line of a batch ended. ``index`` is its position in the input (for ``--ordered``)."""

    id: str | int | None
    line: int
    index: int
    text: str = ""
    finish_reason: str | None = None
    usage: Usage = Usage()
    cost: CallCost | None = None
    model: str | None = None
    profile: str | None = None
    latency_s: float | None = None
    attempts: tuple[Attempt, ...] = ()
    error: LLMSwitchError | None = None
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def key(self) -> str:
        return record_key({"id": self.id, "line": self.line})

    def record(self) -> Record:
        return {
            "id": self.id,
            "line": self.line,
            "text": self.text,
            "finish_reason": self.finish_reason,
            "usage": {"input_tokens": self.usage.input_tokens, "output_tokens": self.usage.output_tokens},
            "cost": self.cost.as_dict() if self.cost is not None else None,
            "model": self.model,
            "profile": self.profile,
            "latency_s": round(self.latency_s, 4) if self.latency_s is not None else None,
            "attempts": [attempt.as_dict() for attempt in self.attempts],
            "cached": self.cached,
            "error": self.error.as_dict() if self.error is not None else None,
        }


def record_key(record: Record) -> str:
    """The id a record answers (``line N`` for a line that had no id): the checkpoint's key."""
    item_id = record.get("id")
    return str(item_id) if item_id is not None else f"line {record.get('line')}"


def record_failed(record: Record) -> bool:
    return record.get("error") is not None


def record_cost(record: Record) -> float:
    cost = record.get("cost") or {}
    return float(cost.get("usd") or 0.0)
