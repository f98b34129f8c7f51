"""The TUI's conversation, without any widgets: which conversation is open, its settings, its totals.

Screens call these methods and render the results; everything here is plain Python and can be tested
without an app. A turn is started here and iterated by :mod:`llmswitch.tui.streaming`: on the app's event loop
when the backend has async hooks, in a worker thread when it has only sync ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmswitch.client import Client, ResolvedProfile
from llmswitch.conversation import AsyncTurn, Conversation, Turn
from llmswitch.errors import LLMSwitchError
from llmswitch.profiles import GENERATION_KEYS
from llmswitch.store import ConversationRecord, HistoryStore, MessageRecord

# The generation settings the settings editor offers (system has its own box).
EDITABLE_SETTINGS = tuple(key for key in GENERATION_KEYS if key != "system")


@dataclass
class TurnStats:
    """What the status line shows about the last answer."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_s: float | None = None
    cost_usd: float | None = None
    cached: bool = False  # replayed from the response cache


@dataclass
class ChatSession:
    """One open conversation (new or stored) and the profile answering it."""

    client: Client
    store: HistoryStore | None
    profile_name: str | None = None
    conversation: Conversation = field(init=False)
    last: TurnStats = field(default_factory=TurnStats)
    total_cost_usd: float | None = None
    unknown_cost: bool = False  # some answer's cost is unknown, so the total is a lower bound
    record: bool = True  # False (`tui --no-history`): read the history, add nothing to it
    last_recorded: bool = True  # the last exchange is in the history (not so with `history = false`)

    def __post_init__(self) -> None:
        self.conversation = Conversation(self.client, self.profile_name, store=self.store if self.record else None)

    # ---- what is open ------------------------------------------------------------------------------

    @property
    def conversation_id(self) -> int | None:
        return self.conversation.conversation_id

    @property
    def resolved(self) -> ResolvedProfile:
        return self.conversation.resolved

    @property
    def settings(self) -> dict[str, Any]:
        """The conversation's generation settings (what the settings editor shows)."""
        return {key: value for key, value in self.conversation.settings.items() if key in EDITABLE_SETTINGS}

    @property
    def system(self) -> str | None:
        return self.conversation.system

    @property
    def saves_history(self) -> bool:
        """Whether the next answer is saved (False with --no-history, or a profile with ``history = false``)."""
        try:
            return self.conversation.saves_history
        except LLMSwitchError:  # the profile does not resolve: nothing will be sent, so nothing is unsaved
            return True

    def new(self) -> None:
        """Start a new conversation with the same profile; it is stored on its first prompt."""
        self.conversation.reset()
        self.conversation.system = None
        self.last = TurnStats()
        self.last_recorded = True
        self.total_cost_usd, self.unknown_cost = None, False
        if self.conversation.settings:
            self.conversation.switch(self.resolved.name, model=self.conversation.model)

    def open(self, conversation_id: int, *, keep_profile: bool = False) -> tuple[ConversationRecord,
                                                                                list[MessageRecord]]:
        """Load a stored conversation; its profile answers next (unless that profile no longer works, or
        ``keep_profile``: the command line's ``--profile`` wins, as with ``chat -p NAME --continue``)."""
        if self.store is None:
            raise RuntimeError("no history store")
        record, records = self.conversation.resume(
            self.store, conversation_id, keep_profile=keep_profile, fall_back=True
        )
        self.last = TurnStats()
        self.last_recorded = True
        self._recount_cost(records)
        return record, records

    def _recount_cost(self, records: list[MessageRecord]) -> None:
        answers = [record for record in records if record.role == "assistant"]
        known = [record.cost_usd for record in answers if record.cost_usd is not None]
        self.total_cost_usd = sum(known) if known else None
        self.unknown_cost = len(known) < len(answers)

    # ---- changing it --------------------------------------------------------------------------------

    def switch_profile(self, name: str) -> ResolvedProfile:
        """Answer with another profile from the next prompt; the history and the settings are kept."""
        resolved = self.conversation.switch(name, settings=self.settings)
        store = self.conversation.store
        if store is not None and self.conversation_id is not None:
            store.update_conversation(self.conversation_id, profile=name)
        return resolved

    def configure(self, system: str | None, settings: Mapping[str, Any]) -> None:
        """Set the system prompt and generation settings (validated against the profile before use)."""
        unknown = [key for key in settings if key not in EDITABLE_SETTINGS]
        if unknown:
            raise ValueError(f"not generation settings: {', '.join(unknown)}")
        self.conversation.switch(self.resolved.name, model=self.conversation.model, settings=dict(settings))
        self.conversation.system = system or None
        store = self.conversation.store
        if store is not None and self.conversation_id is not None:
            store.update_conversation(self.conversation_id, system=system or None, settings=dict(settings))

    def begin(self, prompt: str) -> Turn:
        """Send a prompt; iterate the turn for events (in a worker thread)."""
        return self.conversation.stream(prompt)

    async def abegin(self, prompt: str) -> AsyncTurn:
        """Send a prompt; iterate the turn with ``async for`` (on the app's loop)."""
        return await self.conversation.astream(prompt)

    @property
    def streams_on_loop(self) -> bool:
        """True when the backend answers with async hooks, so no thread is needed for a turn."""
        try:
            return "astream" in self.resolved.handle.hooks
        except LLMSwitchError:
            return False  # the thread path reports the problem as the turn's error

    def rewind(self) -> str | None:
        """Take back the last prompt and its answer (to regenerate or edit it); return the prompt."""
        messages = self.conversation.messages
        last_user = next((i for i in range(len(messages) - 1, -1, -1) if messages[i].role == "user"), None)
        if last_user is None:
            return None
        prompt = messages[last_user].content
        del messages[last_user:]
        store = self.conversation.store
        if store is not None and self.conversation_id is not None and self.last_recorded:
            stored = store.delete_last_exchange(self.conversation_id)
            if stored is not None:
                prompt = stored
            self._recount_cost(store.messages(self.conversation_id))
        return prompt

    def finished(self, turn: Turn | AsyncTurn) -> None:
        """Fold a finished turn into the totals the status line shows."""
        result = turn.result
        self.last_recorded = turn.recorded
        cost = turn.cost.usd if turn.cost is not None else None
        latency = None if result.error is not None else result.latency_s
        self.last = TurnStats(result.usage.input_tokens, result.usage.output_tokens, latency, cost, result.cached)
        if cost is not None:
            self.total_cost_usd = (self.total_cost_usd or 0.0) + cost
        elif result.text or result.usage.output_tokens:
            self.unknown_cost = True

