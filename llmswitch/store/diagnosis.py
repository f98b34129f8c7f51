"""What to say when a SQLite file of ours (the chat history, the usage ledger) cannot be opened or used.

Four different problems need four different remedies, and mixing them up costs data: a file from a newer
llmswitch is fine and must be left as it is; a read-only file or directory is fine and must not be moved away;
a corrupt file can be recovered; anything else is named as is.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from llmswitch.store.database import NewerFileError

_READ_ONLY = ("readonly", "read-only", "unable to open database file", "permission denied")
_CORRUPT = ("file is not a database", "malformed", "disk image")


def unwritable_part(path: Path) -> Path | None:
    """The file, or the directory it lives in (or would be created in), that this process cannot write."""
    if path.exists() and not os.access(path, os.W_OK):
        return path
    directory = path.parent
    while not directory.exists() and directory != directory.parent:
        directory = directory.parent
    return None if os.access(directory, os.W_OK) else directory


def describe_failure(what: str, path: Path, exc: BaseException, *, start_over: str) -> tuple[str, str]:
    """The message and the remedy for ``exc`` raised while opening or using ``path``. ``what`` names the file
    ("the chat history"); ``start_over`` is what moving it away gives ("start a new history")."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, NewerFileError):
        return (f"{what} at {path} was written by a newer llmswitch ({text})",
                "upgrade llmswitch, or set LLMSWITCH_DATA_DIR to use another data directory; the file itself is "
                "intact: do not move it away")
    lowered = text.lower()
    blocked = unwritable_part(path)
    if isinstance(exc, PermissionError) or (blocked is not None and any(s in lowered for s in _READ_ONLY)):
        where = blocked or path.parent
        return (f"{what} at {path} is read-only: {where} cannot be written ({text})",
                f"make {where} writable (chmod u+w {where}), or set LLMSWITCH_DATA_DIR to a writable directory; "
                "the file itself is intact: do not move it away")
    if isinstance(exc, sqlite3.DatabaseError) and any(s in lowered for s in _CORRUPT):
        return (f"{what} at {path} is corrupt ({text})",
                f"recover what it still holds with `sqlite3 {path} .recover | sqlite3 {path}.recovered` and put "
                f"{path.name}.recovered in its place, or move {path} away to {start_over}")
    return (f"cannot use {what} at {path}: {text}",
            "check free disk space and the data directory's permissions (LLMSWITCH_DATA_DIR moves it)")
