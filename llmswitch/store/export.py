"""A stored conversation as Markdown (to read or share) and as JSON (to process)."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any

from llmswitch.store.history import ConversationRecord, MessageRecord


def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat(timespec="seconds")


def to_markdown(conversation: ConversationRecord, messages: list[MessageRecord]) -> str:
    """A readable transcript: a heading, the settings, then each message under who wrote it."""
    lines = [f"# {conversation.title or f'Conversation {conversation.id}'}", ""]
    lines.append(f"- conversation: {conversation.id}, started {_timestamp(conversation.created_at)}")
    if conversation.profile:
        lines.append(f"- profile: {conversation.profile}")
    if conversation.options:
        settings = ", ".join(f"{key} = {value!r}" for key, value in sorted(conversation.options.items()))
        lines.append(f"- options: {settings}")
    if conversation.cost_usd is not None:
        lines.append(f"- cost: ${conversation.cost_usd:.6f}".rstrip("0").rstrip("."))
    lines.append("")
    if conversation.system:
        lines += ["## System", "", conversation.system, ""]
    for message in messages:
        if message.role == "user":
            heading = "## You"
        else:
            by = " · ".join(part for part in (message.profile, message.model) if part)
            heading = f"## {by or message.role.title()}"
        lines += [heading, ""]
        if message.content:
            lines += [message.content, ""]
        if message.finish_reason == "interrupted":
            lines += ["*(cancelled: the answer above is partial)*", ""]
        if message.error:
            quoted = "\n".join("> " + line for line in message.error.splitlines())
            lines += [f"> **error:** {quoted[2:]}", ""]
    return "\n".join(lines).rstrip() + "\n"


def to_json(conversation: ConversationRecord, messages: list[MessageRecord]) -> str:
    """Everything stored about the conversation, one JSON document (timestamps in ISO 8601, UTC)."""
    document: dict[str, Any] = asdict(conversation)
    document["created_at"] = _timestamp(conversation.created_at)
    document["updated_at"] = _timestamp(conversation.updated_at)
    document["messages"] = []
    for message in messages:
        entry = asdict(message)
        entry["created_at"] = _timestamp(message.created_at)
        del entry["conversation_id"]
        document["messages"].append(entry)
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
