"""What to do after a failed attempt: retry the same member (after how long) or move on to the next.

Every profile has a :class:`RetryPolicy` (plain profiles too), read from its settings. The rules:

- **Retried on the same member**, with exponential backoff and full jitter (a random wait between 0 and
  ``min(backoff_max_s, backoff_base_s * 2**retry)``, the AWS shape the official SDKs use): rate limits
  (429), 408, 409, 500, 502, 503, 504, Anthropic's 529, timeouts, refused and reset connections.
- A ``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms`` the server sent is a floor: the retry is
  never sooner. One longer than ``retry_after_max_s`` is not waited for on that member (the member cools
  instead and the next one answers, or the call fails saying when to try again).
- **Never retried on the same member**: 400, 401, 403, 404, a model the server lacks, a conversation too
  long, a redirect, a plugin bug, a bad setting. A fallback moves on to its next member at once.
- ``max_retries`` caps the retries on one member (``0`` turns retrying off); ``timeout_total`` is one
  deadline over every retry and every fallback of a call: no wait runs past it and no attempt starts after it.
- Once text has reached the caller a failure is final (the text is kept) unless ``replay_after_text``.

Nothing here does I/O or reads the clock; :mod:`llmswitch.router.plan` applies it.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any, Literal

from llmswitch.errors import (
    BackendError,
    BackendTimeoutError,
    LLMSwitchError,
    RateLimitError,
    UnreachableError,
)
from llmswitch.record import record

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})

Verdict = Literal["retry", "next"]

# The keys of one call as a whole: under a route, the route's apply (the members' own count when they are called
# directly). The other keys are each member's: a member under a route retries, backs off and cools by its own
# keys, and by its route's where it sets none (see :func:`member_keys`).
CALL_KEYS = frozenset({"timeout_total", "replay_after_text"})

@record
class RetryPolicy:
    """How one profile retries, cools and waits, from its settings (:meth:`from_settings`; the keys are
    :data:`llmswitch.profiles.ROUTER_KEYS`). The defaults here are the ones in force when a key is absent."""

    max_retries: int = 2
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0
    retry_after_max_s: float = 60.0
    timeout_total: float | None = None
    replay_after_text: bool = False
    cooldown_s: float = 30.0
    cooldown_failures: int = 3
    cooldown_window_s: float = 60.0

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> RetryPolicy:
        values = {name: settings[name] for name in cls.__dataclass_fields__ if settings.get(name) is not None}
        return cls(**values)

    def backoff(self, retry: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(max, base * 2**retry)] for the ``retry``-th retry (0 first)."""
        ceiling = min(self.backoff_max_s, self.backoff_base_s * (2 ** retry))
        return rng.uniform(0.0, ceiling)


def member_keys(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The retry and cooldown keys ``settings`` sets that apply to each member's own attempts."""
    return {name: settings[name] for name in RetryPolicy.__dataclass_fields__
            if name not in CALL_KEYS and settings.get(name) is not None}


def verdict(error: LLMSwitchError) -> Verdict:
    """Whether a failure may pass on the same member (``retry``) or should go to the next one (``next``).
    Nothing a member answers ends a route's call by itself: a user who stops the call interrupts the driver
    (KeyboardInterrupt, a cancelled task) and never reaches the plan."""
    from llmswitch.errors import BudgetExceededError

    if isinstance(error, BudgetExceededError):
        return "next"  # this member's budget: another may have room
    if not isinstance(error, BackendError):
        return "next"  # a member's own configuration or plugin: another member may still answer
    if error.retryable is not None:
        return "retry" if error.retryable else "next"
    if isinstance(error, (RateLimitError, BackendTimeoutError, UnreachableError)):
        return "retry"
    if error.status_code in RETRY_STATUSES:
        return "retry"
    return "next"


def retry_after(error: LLMSwitchError) -> float | None:
    """The wait the server asked for, if it said (seconds): a 503 or a 529 may say it as a 429 does."""
    return error.retry_after if isinstance(error, BackendError) else None


def outcome_name(error: LLMSwitchError | None) -> str:
    """How an attempt ended, for ``attempts`` and the ledger: ``ok``, or the error's kind with its status."""
    if error is None:
        return "ok"
    status = error.status_code if isinstance(error, BackendError) else None
    return f"{status}" if status else error.kind
