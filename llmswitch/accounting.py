"""Cost accounting around each call: the budget check before, the ledger entry after.

Both are called by :class:`llmswitch.conversation.Conversation` for every call from the CLI and the TUI.
(Pricing, the ledger and budgets are filled in by the doctor-and-costs work; until then these do nothing.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmswitch.client import ResolvedProfile, StreamResult
    from llmswitch.types import Request


def check_budget(resolved: ResolvedProfile, request: Request) -> None:
    """Raise BudgetExceededError, before anything is sent, when the call's estimate would pass a budget."""


def record_call(resolved: ResolvedProfile, request: Request, result: StreamResult) -> Any:
    """Append one row to the usage ledger (never the key, never the prompt or answer); return the cost."""
    return None
