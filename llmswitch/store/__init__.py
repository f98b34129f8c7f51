"""The chat history store: SQLite conversations and messages with full-text search.

    from llmswitch.store import HistoryStore
    with HistoryStore.open() as history:            # data_dir()/history.db
        for conversation in history.list_conversations():
            print(conversation.id, conversation.title)
        for hit in history.search("tokenizer"):
            print(hit.title, hit.snippet)
"""

from __future__ import annotations

from llmswitch.store.history import HistoryStore, default_path
from llmswitch.store.records import (
    HIGHLIGHT_END,
    HIGHLIGHT_START,
    AnswerRecord,
    ConversationNotFoundError,
    ConversationRecord,
    HistoryError,
    MessageRecord,
    SearchHit,
)

__all__ = [
    "HIGHLIGHT_END",
    "HIGHLIGHT_START",
    "AnswerRecord",
    "ConversationNotFoundError",
    "ConversationRecord",
    "HistoryError",
    "HistoryStore",
    "MessageRecord",
    "SearchHit",
    "default_path",
]
