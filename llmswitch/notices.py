"""Things said once per data directory: which notices were shown is remembered in ``notices.json`` there."""

from __future__ import annotations

import hashlib
import json
import os

from llmswitch.config import data_dir

_FILE = "notices.json"


def first_time(key: str) -> bool:
    """True the first time ``key`` is asked about in this data directory (and remember it).

    When the directory cannot be written, every time is the first: a notice shown twice beats one never shown.
    """
    path = data_dir() / _FILE
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    try:
        shown = set(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        shown = set()
    if digest in shown:
        return False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{_FILE}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(sorted(shown | {digest})), encoding="utf-8")
        os.replace(temporary, path)
    except OSError:
        pass
    return True
