"""The history database's schema, as numbered upgrade steps (applied by :mod:`llmswitch.store.database`).

A database at version N has had steps 1..N applied. Never edit a released step: add one, and a case for it
in ``tests/test_store.py``'s ``build_database_at``.
"""

from __future__ import annotations

import sqlite3

from llmswitch.store import database

# ---- the steps -------------------------------------------------------------------------------------------


def _step_1_conversations_and_messages(connection: sqlite3.Connection) -> None:
    """Conversations and their messages, each message naming the profile and model behind it."""
    connection.execute(
        """
        CREATE TABLE conversations (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            title       TEXT NOT NULL DEFAULT '',
            created_at  REAL NOT NULL,
            updated_at  REAL NOT NULL
        )
        """
    )
    connection.execute(
        """
        CREATE TABLE messages (
            id              INTEGER PRIMARY KEY AUTOINCREMENT,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            role            TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
            content         TEXT NOT NULL,
            profile         TEXT,
            model           TEXT,
            created_at      REAL NOT NULL
        )
        """
    )
    connection.execute("CREATE INDEX messages_by_conversation ON messages (conversation_id, id)")


def _step_2_usage_per_message(connection: sqlite3.Connection) -> None:
    """What each answer cost and how it ended: tokens, cost, latency, finish reason, error."""
    for column in (
        "backend TEXT",
        "input_tokens INTEGER",
        "output_tokens INTEGER",
        "cost_usd REAL",
        "latency_s REAL",
        "finish_reason TEXT",
        "error TEXT",
    ):
        connection.execute(f"ALTER TABLE messages ADD COLUMN {column}")


def _step_3_conversation_settings(connection: sqlite3.Connection) -> None:
    """Per-conversation profile, system prompt and generation options; newest-first listing index."""
    for column in ("profile TEXT", "system TEXT", "options TEXT NOT NULL DEFAULT '{}'"):
        connection.execute(f"ALTER TABLE conversations ADD COLUMN {column}")
    connection.execute("CREATE INDEX conversations_by_update ON conversations (updated_at DESC)")
    # Conversations from before this step answered with whatever profile their last message names.
    connection.execute(
        """
        UPDATE conversations SET profile = (
            SELECT profile FROM messages WHERE messages.conversation_id = conversations.id
            AND profile IS NOT NULL ORDER BY id DESC LIMIT 1
        )
        """
    )


def _step_4_full_text_search(connection: sqlite3.Connection) -> None:
    """An FTS5 index over every message, kept in step by triggers and filled from existing rows."""
    create_search_index(connection)


def _step_5_one_shot_conversations(connection: sqlite3.Connection) -> None:
    """Mark conversations that are one question and its answer from ``llmswitch chat "..."``, so the TUI can
    group them instead of listing each one. Before this step nothing said where a conversation began; the ones
    with a single prompt are marked (a one-shot is exactly that), and a second prompt unmarks any of them."""
    connection.execute("ALTER TABLE conversations ADD COLUMN one_shot INTEGER NOT NULL DEFAULT 0")
    connection.execute(
        """
        UPDATE conversations SET one_shot = 1 WHERE (
            SELECT COUNT(*) FROM messages WHERE messages.conversation_id = conversations.id AND role = 'user'
        ) = 1
        """
    )


def _step_6_settings_by_their_name(connection: sqlite3.Connection) -> None:
    """The conversation's generation settings are called settings everywhere else: the column too."""
    connection.execute("ALTER TABLE conversations RENAME COLUMN options TO settings")


STEPS: tuple[database.Step, ...] = (
    _step_1_conversations_and_messages,
    _step_2_usage_per_message,
    _step_3_conversation_settings,
    _step_4_full_text_search,
    _step_5_one_shot_conversations,
    _step_6_settings_by_their_name,
)
LATEST_VERSION = len(STEPS)


# ---- the search index -------------------------------------------------------------------------------------

SEARCH_TABLE = "messages_search"


def fts5_available(connection: sqlite3.Connection) -> bool:
    """Whether this SQLite was built with FTS5 (nearly all are; search falls back to LIKE otherwise)."""
    try:
        connection.execute("CREATE VIRTUAL TABLE temp.fts5_probe USING fts5(x)")
    except sqlite3.OperationalError:
        return False
    connection.execute("DROP TABLE temp.fts5_probe")
    return True


def has_search_index(connection: sqlite3.Connection) -> bool:
    row = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (SEARCH_TABLE,)
    ).fetchone()
    return row is not None


def create_search_index(connection: sqlite3.Connection) -> bool:
    """Create the index and its triggers and fill it; False (and no index) when FTS5 is missing."""
    if has_search_index(connection):
        return True
    if not fts5_available(connection):
        return False
    # External content: the text lives once, in messages; the index holds only the terms.
    connection.execute(
        f"""
        CREATE VIRTUAL TABLE {SEARCH_TABLE} USING fts5(
            content, content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
        )
        """
    )
    connection.execute(
        f"""
        CREATE TRIGGER messages_search_insert AFTER INSERT ON messages BEGIN
            INSERT INTO {SEARCH_TABLE} (rowid, content) VALUES (new.id, new.content);
        END
        """
    )
    connection.execute(
        f"""
        CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN
            INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}, rowid, content) VALUES ('delete', old.id, old.content);
        END
        """
    )
    connection.execute(
        f"""
        CREATE TRIGGER messages_search_update AFTER UPDATE OF content ON messages BEGIN
            INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}, rowid, content) VALUES ('delete', old.id, old.content);
            INSERT INTO {SEARCH_TABLE} (rowid, content) VALUES (new.id, new.content);
        END
        """
    )
    connection.execute(f"INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}) VALUES ('rebuild')")
    return True


# ---- applying them ----------------------------------------------------------------------------------------


def upgrade(connection: sqlite3.Connection, target: int = LATEST_VERSION) -> int:
    """Apply the history's steps up to ``target`` (see :func:`llmswitch.store.database.upgrade`)."""
    return database.upgrade(connection, STEPS, target)
