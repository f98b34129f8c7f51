"""A conversation with whichever profile is current: the history, the switch, the bookkeeping per call.

The CLI's one-shot and REPL modes and the TUI all go through :class:`Conversation`, so budgets, the usage
ledger and the chat history are handled the same way wherever a call is made. ``stream`` and ``astream``
share every step (``_begin`` checks the budget and records the prompt, ``_finish`` records the answer and its
cost); :class:`Turn` and :class:`AsyncTurn` only differ in how they are iterated.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llmswitch.accounting import Books, CallCost
from llmswitch.client import AsyncStreamResult, Client, ResolvedProfile, StreamResult, StreamState
from llmswitch.errors import ConfigError, LLMSwitchError
from llmswitch.profiles import GENERATION_KEYS
from llmswitch.types import Message, Request, Response, StreamEvent

if TYPE_CHECKING:
    from llmswitch.store import AnswerRecord, ConversationRecord, HistoryStore, MessageRecord


@dataclass
class Conversation:
    """Messages so far plus the profile that will answer next. Switching profile keeps the history."""

    client: Client
    profile_name: str | None = None
    model: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    system: str | None = None
    messages: list[Message] = field(default_factory=list)
    api_key: str | None = None
    _resolved: ResolvedProfile | None = None
    # Chat history: with a store, each prompt and each answer is committed as it completes (unless the
    # answering profile says ``history = false``). A one-shot is grouped apart in the TUI until continued.
    store: HistoryStore | None = None
    conversation_id: int | None = None
    one_shot: bool = False
    use_cache: bool = True  # False (`chat --no-cache`): every profile of the conversation asks its model

    def _with_cache_choice(self, settings: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """The settings to resolve with: the conversation's choice about the cache holds for every profile."""
        return settings if self.use_cache else {**(settings or {}), "cache": False}

    @property
    def resolved(self) -> ResolvedProfile:
        if self._resolved is None:
            self._resolved = self.client.resolve(
                self.profile_name, model=self.model, settings=self._with_cache_choice(self.settings),
                api_key=self.api_key,
            )
        return self._resolved

    def switch(
        self, profile_name: str, *, model: str | None = None, settings: Mapping[str, Any] | None = None
    ) -> ResolvedProfile:
        """Answer with another profile from now on; validated before anything changes. Its own settings
        (``settings``) replace the previous profile's; ``use_cache`` stays as it is."""
        resolved = self.client.resolve(profile_name, model=model, settings=self._with_cache_choice(settings),
                                       api_key=self.api_key)
        self.profile_name, self.model, self._resolved = profile_name, model, resolved
        self.settings = dict(settings or {})
        return resolved

    def reset(self) -> None:
        """Forget the messages; with a store, the next prompt starts a new stored conversation."""
        self.messages.clear()
        self.conversation_id = None

    def resume(
        self,
        history: HistoryStore,
        conversation_id: int | None = None,
        *,
        keep_profile: bool = False,
        keep_system: bool = False,
        fall_back: bool = False,
    ) -> tuple[ConversationRecord, list[MessageRecord]]:
        """Pick up a stored conversation (the latest when ``conversation_id`` is None): its messages, system
        prompt, settings and profile; new messages are added to it. Returns what was loaded.

        The caller's choices win where it says so (``keep_*``: the command line's ``--profile`` and
        ``--system``). A stored profile that was removed since gives way to the current one. With
        ``fall_back`` (the TUI, which must open whatever the history holds), a stored profile or setting that
        no longer resolves gives way to the current profile without settings instead of raising.
        """
        if conversation_id is None:
            conversation_id = history.latest_conversation_id()
            if conversation_id is None:
                raise ConfigError(
                    "there is no stored conversation to continue",
                    remedy="start one with `llmswitch chat \"...\"` (or `llmswitch tui`)",
                )
        from llmswitch.store import ConversationNotFoundError

        try:
            record = history.get_conversation(conversation_id)
        except ConversationNotFoundError as error:
            latest = history.latest_conversation_id()
            if latest is not None:
                error.remedy = f"the latest conversation is {latest}; `llmswitch history` lists them all"
            raise
        records = history.messages(conversation_id)
        current_profile = self.profile_name
        self.messages = _chat_messages(records)
        self.conversation_id = conversation_id
        if not keep_system:
            self.system = record.system
        if not keep_profile and record.profile and record.profile in self.client.store.names():
            self.profile_name = record.profile
        self.settings = stored_settings(record.settings)
        self._resolved = None  # profile or settings changed: resolve again on next use
        if fall_back:
            try:
                self.resolved  # noqa: B018 - resolving is the check
            except LLMSwitchError:
                self.profile_name, self.settings, self._resolved = current_profile, {}, None
        return record, records

    def request_for(self, prompt: str | None) -> Request:
        messages = [*self.messages, Message("user", prompt)] if prompt is not None else list(self.messages)
        return self.resolved.request(messages, system=self.system)

    def stream(self, prompt: str, *, whole: bool = False) -> Turn:
        """Ask; iterate the returned turn for events. The answer joins the history when the turn ends,
        even when it was interrupted or failed part-way (whatever text arrived is kept).

        ``whole=True`` asks the backend for the whole answer at once (its ``complete`` hook: some servers
        report usage, or their own error message, only that way); the turn then yields it as one piece.
        """
        request = self.request_for(prompt)
        # Checked by the call itself, before the prompt goes into the history; charged when it ends.
        result = self.resolved.answer_whole(request) if whole else self.resolved.stream(request)
        return Turn(self, prompt, request, result, recorded=self._begin(prompt))

    async def astream(self, prompt: str, *, whole: bool = False) -> AsyncTurn:
        """:meth:`stream` for async code: ``async for event in await conversation.astream(prompt)``."""
        request = self.request_for(prompt)
        # Checked here, before the prompt goes into the history (the call would check at its first event).
        await self.resolved.acheck_before_sending(request)
        books = Books(checked=True)
        result = self.resolved.aanswer_whole(request, books=books) if whole else self.resolved.astream(request,
                                                                                                        books=books)
        return AsyncTurn(self, prompt, request, result, recorded=self._begin(prompt))

    def complete(self, prompt: str) -> Response:
        """Ask and wait for the whole answer (``--no-stream``), through the backend's ``complete`` hook."""
        turn = self.stream(prompt, whole=True)
        for event in turn:
            del event
        return _answer(turn.result)

    async def acomplete(self, prompt: str) -> Response:
        """:meth:`complete`, awaited (the backend's ``acomplete`` or ``complete`` hook)."""
        turn = await self.astream(prompt, whole=True)
        async with turn:
            async for event in turn:
                del event
        return _answer(turn.result)

    @property
    def saves_history(self) -> bool:
        """Whether the next turn goes into the chat history: there is one, and the profile allows it."""
        return self.store is not None and self.resolved.profile.keeps_history

    def _begin(self, prompt: str) -> bool:
        """Record the prompt if this turn is to be kept; return whether it is (its answer follows it)."""
        recorded = self.saves_history
        if self.store is not None and recorded:
            resolved = self.resolved
            # Committed now: a crash loses at most the answer.
            self.conversation_id = self.store.record_prompt(
                self.conversation_id, resolved.name, resolved.target.backend, resolved.target.model, self.system,
                stored_settings(self.settings), prompt, one_shot=self.one_shot,
            )
        return recorded

    def _finish(self, prompt: str, result: StreamState, cost: CallCost | None, *, recorded: bool) -> None:
        """Add the turn to the history, with its cost (the call charged itself to the ledger: ``result.settle``,
        to the member that answered, which may no longer be the current profile after a switch mid-answer)."""
        self.messages.append(Message("user", prompt))
        if result.text:
            self.messages.append(Message("assistant", result.text))
        if self.store is not None and recorded and self.conversation_id is not None:
            # Never raises; a failure is in store.last_error.
            self.store.record_answer(self.conversation_id, _answer_record(result, cost))


def stored_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a stored conversation keeps: generation settings (the system prompt is kept apart)."""
    return {key: value for key, value in settings.items() if key in GENERATION_KEYS and key != "system"}


def _chat_messages(records: list[MessageRecord]) -> list[Message]:
    """Stored messages as a request's history: every prompt, and every answer that has text (an answer
    that failed before any text arrived was never part of the conversation the model saw)."""
    return [
        Message(record.role, record.content)  # type: ignore[arg-type]
        for record in records
        if record.role == "user" or (record.role == "assistant" and record.content)
    ]


def _answer_record(result: StreamState, cost: CallCost | None) -> AnswerRecord:
    """A finished (failed, interrupted) answer as the history stores it."""
    from llmswitch.store import AnswerRecord

    resolved = result.resolved
    error: str | None = None
    if result.error is not None:
        finish_reason: str | None = "error"
        error = result.error.message
        if result.error.remedy:
            error += "\nhint: " + result.error.remedy
    else:
        finish_reason = "interrupted" if result.interrupted else result.finish_reason
    return AnswerRecord(
        result.text, resolved.name, resolved.target.backend, result.model or resolved.target.model,
        input_tokens=result.usage.input_tokens, output_tokens=result.usage.output_tokens,
        cost_usd=cost.usd if cost is not None else None, latency_s=result.latency_s,
        finish_reason=finish_reason, error=error,
    )


def _answer(result: StreamState) -> Response:
    if result.error is not None:
        raise result.error
    return result.response()


@dataclass
class Turn:
    """One question and its streamed answer."""

    conversation: Conversation
    prompt: str
    request: Request
    result: StreamResult
    cost: CallCost | None = None
    recorded: bool = False  # its prompt went into the chat history, so its answer goes there too
    _finished: bool = False
    _finishing: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __iter__(self) -> Iterator[StreamEvent]:
        try:
            yield from self.result
        finally:
            self.finish()

    def finish(self) -> None:
        """Record the turn (history, ledger) once, whichever thread gets here first."""
        with self._finishing:
            if self._finished:
                return
            self._finished = True
        self.result.close()
        self.result.began = True  # an interrupted turn may have sent its request: it is charged as interrupted
        self.cost = self.result.settle()
        self.conversation._finish(self.prompt, self.result, self.cost, recorded=self.recorded)

    def interrupt(self) -> None:
        """Record the turn now, as interrupted, with the text so far: for a caller that cannot wait for the
        thread iterating it (the app is quitting while the server is silent)."""
        result = self.result
        result.interrupted = True
        if result.latency_s is None:
            result.latency_s = time.perf_counter() - result.started
        self.finish()


@dataclass
class AsyncTurn:
    """One question and its answer, for ``async for``; ``async with`` finishes it even on an early exit."""

    conversation: Conversation
    prompt: str
    request: Request
    result: AsyncStreamResult
    cost: CallCost | None = None
    recorded: bool = False  # its prompt went into the chat history, so its answer goes there too
    _finished: bool = False

    async def __aiter__(self) -> AsyncIterator[StreamEvent]:
        try:
            async for event in self.result:
                yield event
        finally:
            await self.finish()

    async def finish(self) -> None:
        if not self._finished:
            self._finished = True
            self.result.began = True  # an interrupted turn may have sent its request: it is charged as interrupted
            await self.result.aclose()
            self.cost = self.result.cost
            self.conversation._finish(self.prompt, self.result, self.cost, recorded=self.recorded)

    async def __aenter__(self) -> AsyncTurn:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.result.__aexit__(*exc)
        await self.finish()
