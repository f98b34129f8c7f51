"""A stored conversation as Markdown (to read or share) and as JSON (to process), and the files they go to."""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from llmswitch.store.records import ConversationRecord, HistoryError, MessageRecord, SearchHit
from llmswitch.store.search import HIGHLIGHT_END, HIGHLIGHT_START


def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat(timespec="seconds")


def to_markdown(conversation: ConversationRecord, messages: list[MessageRecord]) -> str:
    """A readable transcript: a heading, the settings, then each message under who wrote it."""
    lines = [f"# {conversation.title or f'Conversation {conversation.id}'}", ""]
    lines.append(f"- conversation: {conversation.id}, started {_timestamp(conversation.created_at)}")
    if conversation.profile:
        lines.append(f"- profile: {conversation.profile}")
    if conversation.settings:
        settings = ", ".join(f"{key} = {value!r}" for key, value in sorted(conversation.settings.items()))
        lines.append(f"- settings: {settings}")
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


def summary(conversation: ConversationRecord) -> dict[str, Any]:
    """A conversation as listed: its id (for ``chat --continue ID``), title, profile and totals."""
    document = asdict(conversation)
    for key in ("system", "settings"):
        del document[key]
    document["created_at"] = _timestamp(conversation.created_at)
    document["updated_at"] = _timestamp(conversation.updated_at)
    return document


def hit_summary(hit: SearchHit) -> dict[str, Any]:
    """A search hit for scripts: the snippet as plain text, and where the matches are in it."""
    plain, highlights, index = [], [], 0
    for number, piece in enumerate(hit.snippet.replace(HIGHLIGHT_END, HIGHLIGHT_START).split(HIGHLIGHT_START)):
        if number % 2:
            highlights.append([index, index + len(piece)])
        plain.append(piece)
        index += len(piece)
    document = asdict(hit)
    document["created_at"] = _timestamp(hit.created_at)
    document["snippet"] = "".join(plain)
    document["highlights"] = highlights
    return document


# ---- files ------------------------------------------------------------------------------------------------

FORMATS: dict[str, str] = {"markdown": ".md", "json": ".json"}  # format -> file suffix

_UNSAFE_IN_FILE_NAMES = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]+')
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{n}" for n in range(10)), *(f"lpt{n}" for n in range(10))}
MAX_NAME_CHARACTERS = 120  # well inside every file system's 255 bytes, even in a 2-byte script


class ExportError(HistoryError):
    """An export could not be written."""

    kind = "export"


def render(conversation: ConversationRecord, messages: list[MessageRecord], format: str) -> str:
    """The conversation as ``format`` (``"markdown"`` or ``"json"``)."""
    if format not in FORMATS:
        raise ValueError(f"unknown export format {format!r}; known: {', '.join(FORMATS)}")
    return to_markdown(conversation, messages) if format == "markdown" else to_json(conversation, messages)


def file_name(conversation: ConversationRecord, format: str) -> str:
    """A file name that keeps the whole title, made safe on every system, with the id to keep it unique:
    ``How do I reverse a list? (12).md`` becomes ``How do I reverse a list (12).md``."""
    title = " ".join(_UNSAFE_IN_FILE_NAMES.sub(" ", conversation.title).split()).strip(" .")
    title = title[:MAX_NAME_CHARACTERS].rstrip(" .")
    if not title or title.lower().split(".")[0] in _WINDOWS_RESERVED:
        title = f"Conversation {title}".strip()
    return f"{title} ({conversation.id}){FORMATS[format]}"


def format_for(path: str | os.PathLike[str], default: str = "markdown") -> str:
    """The format a file name asks for by its suffix (``.json``), else ``default``."""
    suffix = Path(path).suffix.lower()
    return next((name for name, known in FORMATS.items() if known == suffix), default)


def write(text: str, target: Path) -> Path:
    """Write an export, creating the folders it needs; a failure is an :class:`ExportError` with a remedy."""
    target = target.expanduser()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as error:
        raise ExportError(f"cannot write {target}: {error.strerror or error}",
                          remedy="choose another path (a folder you can write to)") from None
    return target
