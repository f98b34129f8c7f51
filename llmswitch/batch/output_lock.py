"""One writer at a time per OUTPUT: an exclusive lock held while a command writes it.

Two runs appending to one file write lines twice: a ``--resume`` started in a second terminal counts what the
first run has written so far and asks the rest, while the first run goes on and writes them too. So a run
takes ``fcntl.flock`` on ``OUTPUT.lock`` (beside the output's real path) before it reads or changes OUTPUT, and
keeps it until it ends. The kernel releases a flock when its process ends, however it ends (``kill -9``
included), so a crash never locks the next run out; the file left behind is harmless. It holds the holder's
pid, for the message the second run gives.

Every command that writes an OUTPUT takes this lock: ``llmswitch batch`` for its whole run, and ``llmswitch
batch status`` while it collects a provider job's results into the job's OUTPUT (before anything is charged, so
a refused collection charges nothing and the next poll collects it). Within one process the lock is re-entrant:
``batch --via provider --wait`` holds OUTPUT for its run and collects its jobs into it through the same code.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from pathlib import Path

from llmswitch.batch.output import OutputError


class OutputBusyError(OutputError):
    """Another run is writing OUTPUT."""

    kind = "output_busy"


# The locks this process holds: lock file -> [fd, holders]. A second flock on a new fd of the same file would
# be refused even within one process, so a holder here re-enters instead.
_held: dict[Path, list[int]] = {}
_held_guard = threading.Lock()
if hasattr(os, "register_at_fork"):  # a forked child shares the parent's flock but is not its holder
    os.register_at_fork(after_in_child=_held.clear)

RESUME = "add --resume to finish its work; or choose another OUTPUT"


class OutputLock:
    """The lock on one OUTPUT file (``-``, stdout, needs none): :meth:`acquire` or raise, then :meth:`release`;
    or ``with OutputLock(output):``."""

    def __init__(self, output: str, *, then: str = RESUME) -> None:
        real = Path(os.path.realpath(output))  # a symlink and its target are one OUTPUT
        self.output = output
        self.then = then  # how the refused command picks its work up once OUTPUT is free
        self.path = real.with_name(real.name + ".lock")
        self._holding = False

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock (again, if this process holds it), or raise OutputBusyError naming the run that holds it."""
        if self._holding:
            return
        with _held_guard:
            held = _held.get(self.path)
            if held is not None:
                held[1] += 1
                self._holding = True
                return
            fd = self._lock()
            if fd is not None:
                _held[self.path] = [fd, 1]
                self._holding = True

    def release(self) -> None:
        """Give the lock up (the last holder in this process removes its file: while still held, so no run locks
        a file about to go)."""
        if not self._holding:
            return
        self._holding = False
        with _held_guard:
            held = _held[self.path]
            held[1] -= 1
            if held[1]:
                return
            del _held[self.path]
            with contextlib.suppress(OSError):
                self.path.unlink()
            os.close(held[0])

    def _lock(self) -> int | None:
        """flock the lock file: its fd, None where locks are not to be had, or OutputBusyError."""
        if sys.platform == "win32":  # no flock: one run at a time per OUTPUT is then the user's care
            return None
        import fcntl

        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError:
                return None  # OUTPUT's folder is missing or read-only: writing OUTPUT fails too, with its own sentence
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _pid_in(fd)
                os.close(fd)
                raise self._busy(holder) from None
            except OSError:  # a file system without locks (some network mounts): run unlocked, as before
                os.close(fd)
                return None
            # A run that ended removed the file between our open and our lock: lock the file now there.
            if _same_file(fd, self.path):
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return fd

    def _busy(self, holder: int | None) -> OutputBusyError:
        who = f"another llmswitch batch (pid {holder})" if holder else "another llmswitch batch"
        stop = f"stop it (kill {holder})" if holder else "stop it"
        return OutputBusyError(
            f"{self.output} is being written by {who}; two runs on one OUTPUT would write lines twice",
            remedy=f"wait for that run to finish, or {stop} and {self.then}",
        )


def _pid_in(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def _same_file(fd: int, path: Path) -> bool:
    try:
        now = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)
