"""What every part of the chat screen shares: the session, the store, the widgets, the status line, and the
rules for when the conversation may change (see :class:`llmswitch.tui.screens.chat.ChatScreen`)."""

from __future__ import annotations

from textual.screen import Screen

from llmswitch.errors import LLMSwitchError
from llmswitch.store import HistoryStore, MessageRecord
from llmswitch.tui.session import ChatSession
from llmswitch.tui.streaming import TurnRun
from llmswitch.tui.widgets.chat_log import ChatLog
from llmswitch.tui.widgets.message import AssistantMessage, MessageView, UserMessage
from llmswitch.tui.widgets.prompt_input import PromptInput
from llmswitch.tui.widgets.sidebar import Sidebar
from llmswitch.tui.widgets.status import StatusLine, format_tokens, format_usd


class ChatScreenBase(Screen[None]):
    """The chat screen's state and parts; its actions live in the classes that build on this one."""

    def __init__(self, session: ChatSession, store: HistoryStore | None, *, history: list[str],
                 open_on_start: int | None = None, keep_profile_on_start: bool = False) -> None:
        super().__init__()
        self.open_on_start = open_on_start
        self.keep_profile_on_start = keep_profile_on_start  # `tui -p NAME -c`: NAME answers, not the stored one
        self.session = session
        self.store = store
        self.prompt_history = history
        self.current: TurnRun | None = None  # the answer being streamed, if any
        self.previous: TurnRun | None = None  # the last run, possibly still stopping after a cancel
        self.views: dict[int, AssistantMessage] = {}  # id(run) -> where its text goes
        self.user_views: dict[int, UserMessage] = {}  # id(run) -> its prompt on screen
        self.editing = False  # the prompt box holds the last prompt, to resend in its place

    @property
    def prompt(self) -> PromptInput:
        return self.query_one(PromptInput)

    @property
    def chat_log(self) -> ChatLog:
        return self.query_one(ChatLog)

    @property
    def sidebar(self) -> Sidebar:
        return self.query_one(Sidebar)

    @property
    def streaming(self) -> bool:
        return self.current is not None and not self.current.cancelled

    def update_status(self, state: str = "") -> None:
        session = self.session
        try:
            resolved = session.resolved
            profile, backend, model = resolved.name, resolved.target.backend, resolved.target.model
        except LLMSwitchError:
            profile = session.conversation.profile_name or session.client.store.default_name
            backend, model, state = "?", "?", state or "profile unavailable: Ctrl+O picks another"
        if not state and self.editing:
            state = "editing the last prompt"
        self.query_one(StatusLine).show(
            profile=profile, backend=backend, model=model, last=session.last,
            total_cost_usd=session.total_cost_usd, unknown_cost=session.unknown_cost, state=state,
            conversation_id=session.conversation_id, saved=session.saves_history,
        )

    def refuse_while_streaming(self) -> bool:
        """A new prompt waits for nothing but a running answer (a cancelled one is let finish first)."""
        if self.streaming:
            self.notify("an answer is still coming: Esc cancels it", severity="warning")
            return True
        return False

    def refuse_while_busy(self) -> bool:
        """Actions that change the conversation wait until the last answer, even a cancelled one, is
        recorded."""
        if self.refuse_while_streaming():
            return True
        if self.current is not None:
            self.notify("the cancelled answer is still stopping: try again in a moment", severity="warning")
            return True
        return False


def answer_meta(input_tokens: int | None, output_tokens: int | None, latency_s: float | None,
                cost_usd: float | None, finish_reason: str | None) -> str:
    parts = []
    if input_tokens is not None or output_tokens is not None:
        parts.append(f"in {format_tokens(input_tokens)} · out {format_tokens(output_tokens)} tokens")
    if latency_s is not None and finish_reason != "error":  # how long a failure took is noise
        parts.append(f"{latency_s:.2f}s")
    if cost_usd is not None:
        parts.append(format_usd(cost_usd))
    if finish_reason == "interrupted":
        parts.append("cancelled: the partial answer is kept")
    elif finish_reason == "length":
        parts.append("stopped at max_tokens")
    return " · ".join(parts)


def view_for(record: MessageRecord) -> MessageView:
    """A stored message as it is shown."""
    if record.role == "user":
        return UserMessage(record.content, message_id=record.id)
    header = " · ".join(part for part in (record.profile, record.model) if part) or "assistant"
    meta = answer_meta(record.input_tokens, record.output_tokens, record.latency_s, record.cost_usd,
                       record.finish_reason)
    view = AssistantMessage(header, record.content, meta=meta, error=record.error, message_id=record.id)
    if record.error:
        view.add_class("failed")
    return view
