"""The response cache's file (`llmswitch.store.responses`) method by method, on a real SQLite file: what is
kept, when it expires, hits, statistics and clearing. End to end (chat, serve, the CLI) is in
test_response_cache.py."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from llmswitch.store.responses import FILE_NAME, CacheStats, ResponseStore, StoredAnswer


def put(store: ResponseStore, key: str, *, profile: str = "p", now: float = 1000.0, ttl_s: float = 60.0,
        **values: Any) -> None:
    answer: dict[str, Any] = {"backend": "openai", "model": "m", "pieces": ["Hel", "lo"], "finish_reason": "stop",
                              "input_tokens": 3, "output_tokens": 2, **values}
    store.put(key, profile=profile, ttl_s=ttl_s, now=now, **answer)


def test_an_answer_is_replayed_as_stored_until_it_expires_and_each_hit_counts(hermetic: Path) -> None:
    with ResponseStore() as store:
        assert store.path == hermetic / "data" / FILE_NAME
        put(store, "k", pieces=["Ça ", "va ☕"], model=None, input_tokens=None)
        assert store.get("k", now=1059.9) == StoredAnswer(("Ça ", "va ☕"), "stop", None, None, 2, 1000.0)
        assert store.get("k", now=1060.0) is None  # expired at exactly its time
        assert store.get("other", now=1000.0) is None
        store.get("k", now=1001.0)
        assert store.stats(now=1001.0).hits == 2
    raw = sqlite3.connect(hermetic / "data" / FILE_NAME).execute("SELECT pieces FROM responses").fetchone()[0]
    assert raw == '["Ça ", "va ☕"]'  # kept as written, not escaped


def test_storing_again_replaces_and_sweeps_what_has_expired(hermetic: Path) -> None:
    with ResponseStore() as store:
        put(store, "old", ttl_s=10.0)
        put(store, "k", pieces=["first"])
        put(store, "k", pieces=["second"], now=1010.0)  # "old" expires at exactly 1010: swept
        assert store.get("k", now=1011.0) == StoredAnswer(("second",), "stop", "m", 3, 2, 1010.0)
        assert store.stats(now=1011.0).entries == 1


def test_statistics_per_profile_with_expired_entries_and_the_files_size(hermetic: Path) -> None:
    with ResponseStore() as store:
        assert store.stats(now=1000.0) == CacheStats(0, 0, 0, store.stats().size_bytes, {})
        put(store, "a1", profile="a", ttl_s=5.0)
        put(store, "a2", profile="a", ttl_s=100.0)
        put(store, "b1", profile="b", ttl_s=100.0)
        store.get("a2", now=1001.0)
        store.get("a2", now=1002.0)
        stats = store.stats(now=1005.0)
        size = sum(path.stat().st_size for path in store.path.parent.glob(FILE_NAME + "*"))
    assert (stats.entries, stats.expired, stats.hits) == (3, 1, 2)
    assert stats.by_profile == {"a": (2, 2), "b": (1, 0)}
    assert stats.size_bytes == size > 0


def test_clearing_all_one_profile_or_only_what_expired(hermetic: Path) -> None:
    with ResponseStore() as store:
        put(store, "a1", profile="a", ttl_s=5.0)
        put(store, "a2", profile="a", ttl_s=100.0)
        put(store, "b1", profile="b", ttl_s=5.0)
        put(store, "b2", profile="b", ttl_s=100.0)
        assert store.clear("a", expired_only=True, now=1005.0) == 1
        assert store.clear(expired_only=True, now=1004.0) == 0
        assert store.clear(expired_only=True, now=1005.0) == 1
        assert store.stats(now=1005.0).by_profile == {"a": (1, 0), "b": (1, 0)}
        assert store.clear("b") == 1
        assert store.clear() == 1
        assert store.clear() == 0


def test_without_a_time_given_the_clock_decides_what_has_expired(hermetic: Path) -> None:
    with ResponseStore() as store:
        put(store, "fresh", now=time.time(), ttl_s=3600.0)
        put(store, "stale", now=1000.0)  # expired long ago by the clock (stored after: a put sweeps the expired)
        assert store.stats().expired == 1
        assert store.clear(expired_only=True) == 1
        assert store.get("fresh") is not None
        assert store.clear() == 1  # by default everything goes, fresh answers too
