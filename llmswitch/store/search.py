"""Searching the history: what a person types turned into an FTS5 query that cannot be a syntax error, the
query over the index (best match first, matches marked), and a LIKE fallback for an SQLite without FTS5."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from typing import Any

from llmswitch.store import schema
from llmswitch.store.records import HIGHLIGHT_END, HIGHLIGHT_START, SearchHit

Read = Callable[[str, tuple[Any, ...]], list[sqlite3.Row]]


def search(read: Read, text: str, limit: int, *, indexed: bool) -> list[SearchHit]:
    """Messages matching every word of ``text`` (prefixes count; "quoted phrases" match as phrases), best
    match first, with the matches marked in ``snippet``. ``read`` runs a query; ``indexed``: FTS5 is there."""
    query = fts_query(text)
    if not query:
        return []
    if not indexed:
        return _search_without_index(read, text, limit)
    rows = read(
        f"""
        SELECT m.conversation_id, m.id AS message_id, c.title, m.role, m.created_at,
               snippet({schema.SEARCH_TABLE}, 0, ?, ?, '…', 12) AS snippet
        FROM {schema.SEARCH_TABLE} AS s
        JOIN messages AS m ON m.id = s.rowid
        JOIN conversations AS c ON c.id = m.conversation_id
        WHERE {schema.SEARCH_TABLE} MATCH ?
        ORDER BY s.rank, m.id DESC
        LIMIT ?
        """,
        (HIGHLIGHT_START, HIGHLIGHT_END, query, limit),
    )
    return [SearchHit(**dict(row)) for row in rows]


def _search_without_index(read: Read, text: str, limit: int) -> list[SearchHit]:
    """The fallback when SQLite lacks FTS5: substring match on every word, highlighted here."""
    words = _WORD.findall(text)
    conditions = " AND ".join("m.content LIKE ?" for _ in words)
    rows = read(
        f"""
        SELECT m.conversation_id, m.id AS message_id, c.title, m.role, m.created_at, m.content AS snippet
        FROM messages AS m JOIN conversations AS c ON c.id = m.conversation_id
        WHERE {conditions} ORDER BY m.id DESC LIMIT ?
        """,
        (*(f"%{word}%" for word in words), limit),
    )
    hits = []
    for row in rows:
        values = dict(row)
        values["snippet"] = highlight_words(values["snippet"], words)
        hits.append(SearchHit(**values))
    return hits


_WORD = re.compile(r"\w+", re.UNICODE)
_PHRASE = re.compile(r'"([^"]*)"')


def fts_query(text: str) -> str:
    """Turn what a person types into an FTS5 query that cannot be a syntax error: every word must match,
    as a prefix; text in double quotes must match as a phrase."""
    parts: list[str] = []
    for phrase in _PHRASE.findall(text):
        words = _WORD.findall(phrase)
        if words:
            parts.append('"' + " ".join(words) + '"')
    for word in _WORD.findall(_PHRASE.sub(" ", text)):
        parts.append(f'"{word}"*')
    return " ".join(parts)


def highlight_words(text: str, words: list[str], context: int = 60) -> str:
    """Mark ``words`` in ``text`` and cut it down around the first match (the LIKE fallback's snippet)."""
    if not words:
        return text
    pattern = re.compile("|".join(re.escape(word) for word in words), re.IGNORECASE)
    first = pattern.search(text)
    start = max(0, first.start() - context) if first else 0
    excerpt = text[start : start + 3 * context]
    marked = pattern.sub(lambda match: HIGHLIGHT_START + match.group(0) + HIGHLIGHT_END, excerpt)
    return ("…" if start else "") + marked + ("…" if start + 3 * context < len(text) else "")
