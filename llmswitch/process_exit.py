"""Ending the ``llmswitch`` process without the interpreter's own tear-down.

After a one-shot ``llmswitch chat`` has printed, recorded and charged its answer, the interpreter's shutdown
still destroys, one by one, every module, class and function start-up made (some 600 modules and 100,000
objects once httpx2 is in): about 12 ms of CPU, 8% of a whole process that streams 2,000 tokens, for memory
the OS takes back at once. The console script (:func:`llmswitch.__main__.run`) ends with :func:`exit_process`
instead, which does first everything of a normal exit that anyone could notice, then ``os._exit``:

- every ``atexit`` handler runs (logging's last flush, a local backend's clean-up, temporary directories);
- every SQLite connection still open is closed (:func:`llmswitch.store.database.close_all`), so the store's
  checkpoint on close (which syncs the answer and its charge to disk) happens as it always did;
- stdout and stderr are flushed.

When it cannot be sure, the process exits the normal way (``sys.exit``): another non-daemon thread still
runs (the interpreter would wait for it), a connection cannot be closed from this thread, flushing fails
(a reader that left: the interpreter's own report and exit status follow), or the code is not a number.
What it gives up: a file some code left open without closing it is not flushed by its finaliser (llmswitch
closes every file it writes, in ``with`` blocks, and its batch output flushes every line as it goes).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn


def exit_process(code: str | int | None) -> NoReturn:
    """Exit with ``code`` (a ``SystemExit`` code) the fast way when it is safe, else with ``sys.exit``."""
    status = 0 if code is None else code
    if type(status) is not int or _other_threads_running():
        sys.exit(code)
    atexit._run_exitfuncs()  # what `sys.exit` would run, in the same order; each runs once
    if not _closed_every_database() or not _flushed():
        sys.exit(code)
    os._exit(status)


def _other_threads_running() -> bool:
    """A non-daemon thread besides this one: the interpreter would wait for it to end, so must this exit."""
    main = threading.main_thread()
    return any(thread is not main and not thread.daemon and thread.is_alive() for thread in threading.enumerate())


def _closed_every_database() -> bool:
    database = sys.modules.get("llmswitch.store.database")  # not imported: nothing was opened
    return database is None or bool(database.close_all())


def _flushed() -> bool:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            return False
    return True
