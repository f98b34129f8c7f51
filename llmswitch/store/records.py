"""The history's plain values: what a conversation, a message, an answer to store and a search hit are, and
the history's errors. Nothing here knows SQLite; nothing here knows a client or a conversation."""

from __future__ import annotations

from dataclasses import field
from typing import Any

from llmswitch.errors import ConfigError, LLMSwitchError
from llmswitch.record import record

# Around each match in a search hit's snippet: private-use characters, which cannot clash with anything a
# model writes.
HIGHLIGHT_START = "\ue000"
HIGHLIGHT_END = "\ue001"


class HistoryError(LLMSwitchError):
    """The history database cannot be opened, read or written."""

    kind = "history"


class ConversationNotFoundError(HistoryError, ConfigError):
    """No conversation with that id (a command-line mistake: exit code 2)."""

    kind = "conversation_not_found"


@record(slots=False)
class ConversationRecord:
    """One conversation as listed: its profile, system prompt, generation settings and totals."""

    id: int
    title: str
    created_at: float
    updated_at: float
    profile: str | None = None
    system: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    message_count: int = 0
    cost_usd: float | None = None
    one_shot: bool = False  # one question from `llmswitch chat "..."`, not (yet) continued


@record(slots=False)
class MessageRecord:
    """One stored message, with the profile and model that produced it and what it cost."""

    id: int
    conversation_id: int
    role: str
    content: str
    created_at: float
    profile: str | None = None
    backend: str | None = None
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    latency_s: float | None = None
    finish_reason: str | None = None
    error: str | None = None


@record(slots=False)
class AnswerRecord:
    """An answer to store: its text (whatever arrived, even when it failed), who gave it and what it cost."""

    text: str
    profile: str
    backend: str
    model: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    latency_s: float | None = None
    finish_reason: str | None = None  # "interrupted" when stopped, "error" when it failed
    error: str | None = None  # the failure and its remedy, as shown to the user (redacted again here)


@record(slots=False)
class SearchHit:
    """A message that matches a search; ``snippet`` marks matches with HIGHLIGHT_START/HIGHLIGHT_END."""

    conversation_id: int
    message_id: int
    title: str
    role: str
    snippet: str
    created_at: float
