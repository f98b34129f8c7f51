"""The toolkit for in-process backends (llama.cpp, transformers): what every local generation loop needs.

- :class:`AnswerShaper`: turns decoded pieces into text fit to show as a chat answer, and finds stop sequences;
- :func:`usable_cpus` / :func:`default_threads`: how many CPU threads a local model should use;
- :func:`last_json_object`: the report a probe child process printed last on its stdout.
"""

from __future__ import annotations

import codecs
import json
import os
from typing import Any


class AnswerShaper:
    """Turns decoded pieces into text that is safe to show now, and spots stop sequences.

    Leading whitespace is dropped, trailing whitespace is held back until more text follows (an answer never
    ends in a stray newline), and text that might be the start of a stop sequence is held back until it is
    clear that it is not. Pieces may be text, or bytes that can split a UTF-8 character (a llama.cpp token).
    """

    def __init__(self, stop: tuple[str, ...]) -> None:
        self.stop = stop
        self.pending = ""
        self.started = False
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, piece: str | bytes) -> tuple[str, bool]:
        """Add a piece; return (text to show now, whether a stop sequence was reached)."""
        buffer = self.pending + (self.decoder.decode(piece) if isinstance(piece, bytes) else piece)
        # Stops are looked for in the raw text: "\nQ:" must match even at the very start of the answer.
        cut = min((buffer.find(s) for s in self.stop if s in buffer), default=-1)
        if cut >= 0:
            text, stopped = buffer[:cut].rstrip(), True
            self.pending = ""
        else:
            held = max((self._prefix_overlap(buffer, s) for s in self.stop), default=0)
            text, stopped = buffer[: len(buffer) - held].rstrip(), False
            self.pending = buffer[len(text):]
        if not self.started:
            text = text.lstrip()
            self.started = bool(text)
        return text, stopped

    def finish(self) -> str:
        """Whatever was held back, now that no more text will come (trailing whitespace dropped)."""
        rest = self.pending + self.decoder.decode(b"", final=True)
        self.pending = ""
        return rest.rstrip() if self.started else rest.strip()

    @staticmethod
    def _prefix_overlap(text: str, stop: str) -> int:
        """Length of the longest end of ``text`` that begins ``stop`` (so may grow into it)."""
        for length in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:length]):
                return length
        return 0


def usable_cpus() -> int:
    """CPUs this process may run on (respects taskset / cgroup affinity where the OS tells us)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def default_threads() -> int:
    """Half the usable CPUs, at least one: on a shared machine, threads beyond the free cores spin and lose
    (measurements in docs/local-models.md)."""
    return max(1, usable_cpus() // 2)


def last_json_object(text: str) -> dict[str, Any] | None:
    """The last line of ``text`` that is a JSON object (a child process's report), or None."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None
