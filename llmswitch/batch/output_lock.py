"""One ``llmswitch batch`` run at a time per OUTPUT: an exclusive lock held for the whole run.

Two runs appending to one file write lines twice: a ``--resume`` started in a second terminal counts what the
first run has written so far and asks the rest, while the first run goes on and writes them too. So a run
takes ``fcntl.flock`` on ``OUTPUT.lock`` (beside the output's real path) before it reads or changes OUTPUT, and
keeps it until it ends. The kernel releases a flock when its process ends, however it ends (``kill -9``
included), so a crash never locks the next run out; the file left behind is harmless. It holds the holder's
pid, for the message the second run gives.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from llmswitch.batch.output import OutputError


class OutputBusyError(OutputError):
    """Another run is writing OUTPUT."""

    kind = "output_busy"


class OutputLock:
    """The lock on one OUTPUT file (``-``, stdout, needs none): :meth:`acquire` or raise, then :meth:`release`."""

    def __init__(self, output: str) -> None:
        real = Path(os.path.realpath(output))  # a symlink and its target are one OUTPUT
        self.output = output
        self.path = real.with_name(real.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise OutputBusyError naming the run that holds it."""
        if sys.platform == "win32":  # no flock: one run at a time per OUTPUT is then the user's care
            return
        import fcntl

        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError:
                return  # OUTPUT's folder is missing or read-only: writing OUTPUT fails too, with its own sentence
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _pid_in(fd)
                os.close(fd)
                raise self._busy(holder) from None
            except OSError:  # a file system without locks (some network mounts): run unlocked, as before
                os.close(fd)
                return
            # A run that ended removed the file between our open and our lock: lock the file now there.
            if _same_file(fd, self.path):
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Give the lock up (and remove its file: while still held, so no run locks a file about to go)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(fd)

    def _busy(self, holder: int | None) -> OutputBusyError:
        who = f"another llmswitch batch (pid {holder})" if holder else "another llmswitch batch"
        stop = f"stop it (kill {holder})" if holder else "stop it"
        return OutputBusyError(
            f"{self.output} is being written by {who}; two runs on one OUTPUT would write lines twice",
            remedy=f"wait for that run to finish, or {stop} and add --resume to finish its work; or choose "
                   "another OUTPUT",
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
