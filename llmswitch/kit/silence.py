"""The read timeout as a user means it: ``timeout`` seconds without an answer, not without a byte.

An HTTP read timeout restarts with every byte, so a server (or a proxy) that sends only keep-alives (SSE
``: comment`` lines, Anthropic ``ping`` events, blank NDJSON lines) would keep a stalled answer open
forever. :class:`AnswerWatch` restarts only when the stream yields an event (text, usage, the end) and is
checked each time bytes arrive; the byte-level read timeout still catches a server that goes fully silent.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator

from llmswitch.errors import BackendTimeoutError
from llmswitch.types import StreamEvent


class AnswerWatch:
    """Raises :class:`~llmswitch.errors.BackendTimeoutError` when ``seconds`` pass without a stream event,
    however many bytes arrive. ``server`` names it in the message (``the server at http://...``)."""

    __slots__ = ("seconds", "server", "profile", "backend", "_since", "_answered")

    def __init__(self, seconds: float, server: str, *, profile: str, backend: str | None = None) -> None:
        self.seconds, self.server, self.profile, self.backend = seconds, server, profile, backend
        self._since = time.monotonic()
        self._answered = False

    def heard(self) -> None:
        """An event arrived: the wait starts again."""
        self._since = time.monotonic()
        self._answered = True

    def check(self) -> None:
        """Bytes arrived: fail if they were all that arrived for too long."""
        if time.monotonic() - self._since > self.seconds:
            where = "in the middle of the answer" if self._answered else "before the answer began"
            raise BackendTimeoutError(
                f"{self.server} sent no answer for {self.seconds:g} s {where}, only keep-alive messages",
                remedy=f"try again; raise timeout in profile '{self.profile}' if the model is just slow to answer",
                backend=self.backend,
            )

    def chunks(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """``chunks``, checked as each arrives (for a plugin reading bytes itself)."""
        check = self.check
        for chunk in chunks:
            check()
            yield chunk

    def events(self, events: Iterable[StreamEvent]) -> Iterator[StreamEvent]:
        """``events``, each restarting the wait (for a plugin reading bytes itself)."""
        for event in events:
            self._since = time.monotonic()
            self._answered = True
            yield event

    async def achunks(self, chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            self.check()
            yield chunk
