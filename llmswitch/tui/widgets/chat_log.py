"""The scrolling pane of messages. It follows new text only while the reader is at the bottom."""

from __future__ import annotations

from textual.containers import VerticalScroll
from textual.widgets import Static

from llmswitch.tui.widgets.message import AssistantMessage, MessageView, UserMessage

EMPTY_HINT = "Ask anything below. Enter sends; Ctrl+J starts a new line; F1 lists every key."


class ChatLog(VerticalScroll):
    """Messages, oldest first. Anchored: scrolls with a stream until the user scrolls up, and again once
    they scroll back to the bottom."""

    can_focus = False

    def on_mount(self) -> None:
        self.anchor()
        self._show_hint()

    def _show_hint(self) -> None:
        if not self.query(MessageView):
            self.mount(Static(EMPTY_HINT, classes="empty-hint"))

    async def clear(self) -> None:
        await self.remove_children()
        self._show_hint()

    async def add(self, *messages: MessageView) -> None:
        await self.query(".empty-hint").remove()
        await self.mount_all(messages)

    async def add_user(self, text: str, *, message_id: int | None = None) -> UserMessage:
        message = UserMessage(text, message_id=message_id)
        await self.add(message)
        self.anchor()  # sending is a request to see the answer: follow it even if scrolled up before
        return message

    async def add_assistant(self, header: str) -> AssistantMessage:
        message = AssistantMessage(header)
        await self.add(message)
        return message

    def messages(self) -> list[MessageView]:
        return list(self.query(MessageView))

    def last_user(self) -> UserMessage | None:
        prompts = list(self.query(UserMessage))
        return prompts[-1] if prompts else None

    def last_assistant(self) -> AssistantMessage | None:
        answers = list(self.query(AssistantMessage))
        return answers[-1] if answers else None

    async def remove_last_exchange(self) -> None:
        """Drop the last prompt and every message after it (before a regenerate or an edit)."""
        messages = self.messages()
        last_user = next((i for i in range(len(messages) - 1, -1, -1) if isinstance(messages[i], UserMessage)),
                         None)
        if last_user is not None:
            for message in messages[last_user:]:
                await message.remove()
        self._show_hint()
