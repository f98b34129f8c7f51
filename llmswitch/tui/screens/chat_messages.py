"""The chat screen's actions on messages: copy one (or a code block in it), move between them, scroll."""

from __future__ import annotations

from llmswitch.tui.reporting import guarded
from llmswitch.tui.screens.chat_base import ChatScreenBase
from llmswitch.tui.widgets.message import MessageView, UserMessage


class MessageActions(ChatScreenBase):
    def target_message(self) -> MessageView | None:
        """The message the copy actions act on: the selected one, else the last answer."""
        if isinstance(self.focused, MessageView):
            return self.focused
        return self.chat_log.last_assistant()

    @guarded
    async def action_copy_message(self) -> None:
        message = self.target_message()
        if message is None or not message.text:
            self.notify("no message to copy yet", severity="warning")
            return
        self.app.copy_to_clipboard(message.text)
        self.notify(f"copied the {'prompt' if isinstance(message, UserMessage) else 'answer'} "
                    f"({len(message.text):,} characters)")

    @guarded
    async def action_copy_code(self) -> None:
        from llmswitch.tui.screens.dialogs import ChoiceScreen
        from llmswitch.tui.widgets.message import code_blocks

        message = self.target_message()
        blocks = code_blocks(message.text) if message is not None else []
        if not blocks:
            self.notify("no code block in this message", severity="warning")
            return

        def copy(index: int | None) -> None:
            if index is None:
                return
            self.app.copy_to_clipboard(blocks[index].code)
            self.notify(f"copied code block {index + 1} ({blocks[index].preview})")

        if len(blocks) == 1:
            copy(0)
        else:
            self.app.push_screen(ChoiceScreen("Copy which code block?", [b.preview for b in blocks]), copy)

    def action_select_message(self, step: int) -> None:
        messages = self.chat_log.messages()
        if not messages:
            return
        focused = self.focused
        index = messages.index(focused) + step if focused in messages else (len(messages) - 1 if step < 0 else 0)
        if 0 <= index < len(messages):
            messages[index].focus()
            self.chat_log.scroll_to_widget(messages[index], animate=False)
        elif index >= len(messages):
            self.prompt.focus()

    def action_scroll_chat(self, direction: int) -> None:
        """Page through the chat from the keyboard (at the bottom again, it follows new text again)."""
        if direction < 0:
            self.chat_log.scroll_page_up(animate=False)
        else:
            self.chat_log.scroll_page_down(animate=False)
