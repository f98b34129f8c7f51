"""Picking a stored conversation back up: its messages, system prompt, options and profile.

Used by ``llmswitch chat --continue [ID]`` and by the TUI when a conversation is opened from the sidebar.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmswitch.errors import ConfigError
from llmswitch.store.history import ConversationNotFoundError, ConversationRecord, HistoryStore, MessageRecord
from llmswitch.types import Message

if TYPE_CHECKING:
    from llmswitch.conversation import Conversation


def chat_messages(records: list[MessageRecord]) -> list[Message]:
    """Stored messages as a request's history: every prompt, and every answer that has text (an answer
    that failed before any text arrived was never part of the conversation the model saw)."""
    messages: list[Message] = []
    for record in records:
        if record.role == "user" or (record.role == "assistant" and record.content):
            messages.append(Message(record.role, record.content))  # type: ignore[arg-type]
    return messages


def parse_continue_value(value: str, prompt: tuple[str, ...]) -> tuple[int | None, tuple[str, ...]]:
    """``--continue`` takes an optional ID, so ``-c "why?"`` hands it the question: a value that is not a
    number is the first word of the prompt, and the latest conversation is meant."""
    if value in ("", "latest"):
        return None, prompt
    if value.isdigit():
        return int(value), prompt
    return None, (value, *prompt)


def resume(
    conversation: Conversation,
    store: HistoryStore,
    conversation_id: int | None = None,
    *,
    keep_profile: bool = False,
    keep_system: bool = False,
) -> ConversationRecord:
    """Load a stored conversation (the latest when ``conversation_id`` is None) into ``conversation``.

    Its profile, system prompt and options come back too, unless the caller chose them (``keep_*``: the
    command line's ``--profile`` and ``--system`` win). New messages are added to the same conversation.
    """
    if conversation_id is None:
        conversation_id = store.latest_conversation_id()
        if conversation_id is None:
            raise ConfigError(
                "there is no stored conversation to continue",
                remedy="start one with `llmswitch chat \"...\"` (or `llmswitch tui`)",
            )
    try:
        record = store.get_conversation(conversation_id)
    except ConversationNotFoundError as error:
        latest = store.latest_conversation_id()
        if latest is not None:
            error.remedy = f"the latest conversation is {latest}; `llmswitch history` lists them all"
        raise
    conversation.messages = chat_messages(store.messages(conversation_id))
    conversation.conversation_id = conversation_id
    if not keep_system:
        conversation.system = record.system
    if not keep_profile and record.profile and record.profile in conversation.client.store.names():
        conversation.profile_name = record.profile  # (a profile removed since falls back to the default)
    conversation.settings = {**record.options, **conversation.settings}
    conversation._resolved = None  # profile or settings changed: resolve again on next use
    return record
