"""The chat history: conversations and messages in SQLite, shared by the CLI and the TUI.

One file, ``data_dir()/history.db``, opened through :mod:`llmswitch.store.database` (WAL, busy timeout,
immediate transactions, numbered upgrade steps), so ``llmswitch chat`` in one terminal and ``llmswitch tui``
in another can both write. Every message is committed on its own as soon as it is
complete: a crash or kill loses at most the answer in flight. Prompts and answers are stored; keys never are
(error texts pass through :func:`llmswitch.secrets.redact`).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from llmswitch.store import database, schema
from llmswitch.store.records import (
    AnswerRecord,
    ConversationNotFoundError,
    ConversationRecord,
    HistoryError,
    MessageRecord,
    SearchHit,
)

BUSY_TIMEOUT_MS = 10_000
_UNCHANGED: Any = object()


def default_path() -> Path:
    from llmswitch.config import data_dir

    return data_dir() / "history.db"


_MESSAGE_COLUMNS = (
    "id, conversation_id, role, content, created_at, profile, backend, model, input_tokens, output_tokens, "
    "cost_usd, latency_s, finish_reason, error"
)


class HistoryStore:
    """Conversations and messages in one SQLite file. Thread-safe: one connection behind a lock."""

    def __init__(self, connection: sqlite3.Connection, path: Path | None) -> None:
        self._connection = connection
        self._lock = threading.RLock()
        self.path = path
        self.last_error: HistoryError | None = None  # set by record_* (which never raise); shown as a warning

    # ---- opening ---------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None) -> HistoryStore:
        """Open (creating and upgrading as needed) the history file; ``":memory:"`` for a throwaway one."""
        in_memory = str(path) == ":memory:"
        target = None if in_memory else Path(path) if path is not None else default_path()
        wait_s = BUSY_TIMEOUT_MS / 1000
        try:
            # shared: the TUI records answers from worker threads; the store's lock serialises them.
            connection = database.open_database(target, schema.STEPS, busy_timeout_s=wait_s, deadline_s=wait_s,
                                                shared=True)
        except (OSError, sqlite3.Error, database.NewerFileError) as exc:
            raise _history_failure(target, exc) from None
        try:
            _build_late_search_index(connection)
        except sqlite3.Error as exc:
            connection.close()
            raise _history_failure(target, exc) from None
        return cls(connection, target)

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        with self._lock:
            return database.current_version(self._connection)

    @property
    def has_full_text_search(self) -> bool:
        with self._lock:
            return schema.has_search_index(self._connection)

    # ---- transactions ------------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction, taken up front (IMMEDIATE) so it never has to upgrade a read lock."""
        with self._lock:
            try:
                with database.immediate(self._connection, deadline_s=BUSY_TIMEOUT_MS / 1000) as connection:
                    yield connection
            except sqlite3.Error as exc:
                raise _write_failed(self.path, exc) from None

    def _read(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                cursor = self._connection.execute(sql, parameters)
                cursor.row_factory = sqlite3.Row
                return cursor.fetchall()
            except sqlite3.Error as exc:
                raise HistoryError(f"cannot read the chat history: {exc}") from None

    # ---- conversations ---------------------------------------------------------------------------

    def create_conversation(
        self,
        title: str = "",
        *,
        profile: str | None = None,
        system: str | None = None,
        settings: dict[str, Any] | None = None,
        one_shot: bool = False,
    ) -> int:
        now = time.time()
        with self._write() as connection:
            cursor = connection.execute(
                "INSERT INTO conversations (title, created_at, updated_at, profile, system, settings, one_shot) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (title, now, now, profile, system, _dump_settings(settings), int(one_shot)),
            )
            return int(cursor.lastrowid or 0)

    def get_conversation(self, conversation_id: int) -> ConversationRecord:
        rows = self._read(_CONVERSATION_QUERY + " WHERE c.id = ? GROUP BY c.id", (conversation_id,))
        if not rows:
            raise ConversationNotFoundError(
                f"no conversation with id {conversation_id} in the chat history",
                remedy="`llmswitch chat --continue` without an id resumes the latest one",
            )
        return _conversation(rows[0])

    def list_conversations(self, limit: int = 500, *, one_shot: bool | None = None) -> list[ConversationRecord]:
        """Newest (most recently updated) first; ``one_shot`` True or False lists only those (-1: no limit)."""
        where, parameters = _one_shot_filter(one_shot)
        rows = self._read(
            _CONVERSATION_QUERY + where + " GROUP BY c.id ORDER BY c.updated_at DESC, c.id DESC LIMIT ?",
            (*parameters, limit),
        )
        return [_conversation(row) for row in rows]

    def count_conversations(self, *, one_shot: bool | None = None) -> int:
        where, parameters = _one_shot_filter(one_shot)
        return int(self._read("SELECT COUNT(*) AS n FROM conversations AS c" + where, parameters)[0]["n"])

    def latest_conversation_id(self) -> int | None:
        rows = self._read("SELECT id FROM conversations ORDER BY updated_at DESC, id DESC LIMIT 1")
        return int(rows[0]["id"]) if rows else None

    def update_conversation(
        self,
        conversation_id: int,
        *,
        title: str = _UNCHANGED,
        profile: str | None = _UNCHANGED,
        system: str | None = _UNCHANGED,
        settings: dict[str, Any] | None = _UNCHANGED,
        one_shot: bool = _UNCHANGED,
    ) -> None:
        """Change any of the named fields (the others are left as they are)."""
        changes: dict[str, Any] = {}
        if one_shot is not _UNCHANGED:
            changes["one_shot"] = int(one_shot)
        if title is not _UNCHANGED:
            changes["title"] = title
        if profile is not _UNCHANGED:
            changes["profile"] = profile
        if system is not _UNCHANGED:
            changes["system"] = system
        if settings is not _UNCHANGED:
            changes["settings"] = _dump_settings(settings)
        if not changes:
            return
        assignments = ", ".join(f"{name} = ?" for name in changes)
        with self._write() as connection:
            cursor = connection.execute(
                f"UPDATE conversations SET {assignments} WHERE id = ?", (*changes.values(), conversation_id)
            )
            if cursor.rowcount == 0:
                raise ConversationNotFoundError(f"no conversation with id {conversation_id} in the chat history")

    def rename(self, conversation_id: int, title: str) -> None:
        self.update_conversation(conversation_id, title=title.strip())

    def delete_conversation(self, conversation_id: int) -> None:
        with self._write() as connection:
            # Messages first, explicitly, so the search index's delete trigger sees every one.
            connection.execute("DELETE FROM messages WHERE conversation_id = ?", (conversation_id,))
            connection.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    # ---- messages ----------------------------------------------------------------------------------

    def add_message(
        self,
        conversation_id: int,
        role: str,
        content: str,
        *,
        profile: str | None = None,
        backend: str | None = None,
        model: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cost_usd: float | None = None,
        latency_s: float | None = None,
        finish_reason: str | None = None,
        error: str | None = None,
    ) -> int:
        """Append one message and commit it; the conversation moves to the top of the list."""
        now = time.time()
        with self._write() as connection:
            cursor = connection.execute(
                f"INSERT INTO messages ({_MESSAGE_COLUMNS.removeprefix('id, ')}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (conversation_id, role, content, now, profile, backend, model, input_tokens, output_tokens,
                 cost_usd, latency_s, finish_reason, error),
            )
            connection.execute(
                "UPDATE conversations SET updated_at = ?, "
                "title = CASE WHEN title = '' AND ? = 'user' THEN ? ELSE title END WHERE id = ?",
                (now, role, title_from(content), conversation_id),
            )
            return int(cursor.lastrowid or 0)

    def messages(self, conversation_id: int) -> list[MessageRecord]:
        rows = self._read(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? ORDER BY id", (conversation_id,)
        )
        return [MessageRecord(**dict(row)) for row in rows]

    def delete_last_exchange(self, conversation_id: int) -> str | None:
        """Remove the last user message and everything after it (to regenerate or edit); return its text."""
        with self._write() as connection:
            row = connection.execute(
                "SELECT id, content FROM messages WHERE conversation_id = ? AND role = 'user' "
                "ORDER BY id DESC LIMIT 1",
                (conversation_id,),
            ).fetchone()
            if row is None:
                return None
            connection.execute("DELETE FROM messages WHERE conversation_id = ? AND id >= ?", (conversation_id, row[0]))
            return str(row[1])

    def recent_prompts(self, limit: int = 200) -> list[str]:
        """The most recent distinct prompts the user sent, oldest first (for the input's history)."""
        rows = self._read(
            "SELECT content FROM messages WHERE role = 'user' GROUP BY content ORDER BY MAX(id) DESC LIMIT ?",
            (limit,),
        )
        return [str(row["content"]) for row in reversed(rows)]

    # ---- search --------------------------------------------------------------------------------------

    def search(self, text: str, limit: int = 100) -> list[SearchHit]:
        """Messages matching every word of ``text``, best match first (see :func:`llmswitch.store.search.search`)."""
        from llmswitch.store import search  # the query parser and its patterns: only when searching

        return search.search(self._read, text, limit, indexed=self.has_full_text_search)

    # ---- recording a conversation as it happens ----------------------------------------------------------

    def record_prompt(
        self,
        conversation_id: int | None,
        profile: str,
        backend: str,
        model: str,
        system: str | None,
        settings: Mapping[str, Any],
        prompt: str,
        *,
        one_shot: bool = False,
    ) -> int | None:
        """Commit the prompt just sent, creating the conversation on its first prompt (``conversation_id``
        None); return the conversation's id (None when it could not be created). Never raises: a failure is
        kept in ``last_error`` so the caller can warn without losing the answer."""
        try:
            if conversation_id is None:
                conversation_id = self.create_conversation(
                    title_from(prompt), profile=profile, system=system, settings=dict(settings), one_shot=one_shot
                )
            else:
                # A second prompt makes any conversation a conversation, one-shots continued with `-c` too.
                self.update_conversation(
                    conversation_id, profile=profile, system=system, settings=dict(settings), one_shot=False
                )
            self.add_message(conversation_id, "user", prompt, profile=profile, backend=backend, model=model)
        except HistoryError as error:
            self.last_error = error
        return conversation_id

    def record_answer(self, conversation_id: int, answer: AnswerRecord) -> None:
        """Commit the answer that just finished, failed or was cancelled. Never raises (see ``last_error``)."""
        from llmswitch.secrets import redact

        try:
            self.add_message(
                conversation_id, "assistant", answer.text,
                profile=answer.profile, backend=answer.backend, model=answer.model,
                input_tokens=answer.input_tokens, output_tokens=answer.output_tokens,
                cost_usd=answer.cost_usd, latency_s=answer.latency_s, finish_reason=answer.finish_reason,
                error=redact(answer.error) if answer.error is not None else None,
            )
        except HistoryError as error:
            self.last_error = error


# ---- helpers ----------------------------------------------------------------------------------------------

_CONVERSATION_QUERY = """
    SELECT c.id, c.title, c.created_at, c.updated_at, c.profile, c.system, c.settings,
           COUNT(m.id) AS message_count, SUM(m.cost_usd) AS cost_usd, c.one_shot
    FROM conversations AS c LEFT JOIN messages AS m ON m.conversation_id = c.id
"""


def _one_shot_filter(one_shot: bool | None) -> tuple[str, tuple[Any, ...]]:
    return ("", ()) if one_shot is None else (" WHERE c.one_shot = ?", (int(one_shot),))

def title_from(prompt: str, width: int = 60) -> str:
    """A conversation's default title: the first line of its first prompt, shortened."""
    line = next((line.strip() for line in prompt.splitlines() if line.strip()), "")
    line = line.lstrip("#>*-+ \t").strip() or line  # "## Heading" or "> quote" reads better without markup
    return line if len(line) <= width else line[: width - 1].rstrip() + "…"


def _dump_settings(settings: dict[str, Any] | None) -> str:
    return json.dumps(settings or {}, sort_keys=True, ensure_ascii=False)


def _conversation(row: sqlite3.Row) -> ConversationRecord:
    values = dict(row)
    values["one_shot"] = bool(values["one_shot"])
    try:
        values["settings"] = json.loads(values.get("settings") or "{}")
    except ValueError:
        values["settings"] = {}
    return ConversationRecord(**values)


def _build_late_search_index(connection: sqlite3.Connection) -> None:
    """The file was upgraded by an SQLite without FTS5; if this one has it, build the index now."""
    if not schema.has_search_index(connection) and schema.fts5_available(connection):
        with database.immediate(connection):
            schema.create_search_index(connection)


def _history_failure(path: Path | None, exc: BaseException) -> HistoryError:
    """Read-only, corrupt or other: each with its own remedy (see :mod:`llmswitch.store.diagnosis`)."""
    from llmswitch.store.diagnosis import describe_failure

    if path is None:
        return HistoryError(f"cannot open an in-memory chat history: {exc}")
    message, remedy = describe_failure("the chat history", path, exc, start_over="start a new history")
    return HistoryError(message, remedy=remedy)


def _write_failed(path: Path | None, exc: sqlite3.Error) -> HistoryError:
    if database.is_contention(exc):
        return HistoryError(
            f"the chat history at {path} stayed locked by another llmswitch for {BUSY_TIMEOUT_MS // 1000}s",
            remedy="close other llmswitch windows that are stuck, then try again",
        )
    return _history_failure(path, exc)
