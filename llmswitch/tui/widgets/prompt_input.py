"""The prompt box: Enter sends, Ctrl+J (or Shift+Enter where the terminal reports it) adds a line,
Up on the first line and Down on the last walk through the prompts sent before."""

from __future__ import annotations

from collections.abc import Callable

from textual import events
from textual.message import Message
from textual.widgets import TextArea

from llmswitch.tui import keys


class PromptInput(TextArea):
    """A multi-line input with a history of sent prompts, like a shell's."""

    BINDINGS = keys.bindings("input")

    class Submitted(Message):
        """The user asked to send ``text``."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, history: list[str] | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id, soft_wrap=True, show_line_numbers=False, tab_behavior="focus", compact=True,
                         placeholder="Ask something… (Enter sends, Ctrl+J new line, F1 help)")
        self.prompt_history: list[str] = list(history or [])
        self._position = len(self.prompt_history)  # == len(history): editing a new prompt, not a recalled one
        self._draft = ""

    # ---- keys -------------------------------------------------------------------------------------

    async def _on_key(self, event: events.Key) -> None:
        # Send and newline are handled here, in order with the typed characters, not as priority bindings
        # (those run ahead of keys still queued, so a fast typist's newline could land before earlier text).
        # The bindings stay declared, so the footer shows them and a keymap can move them.
        action = self._own_keys().get(event.key)
        if action is not None:
            event.stop()
            event.prevent_default()
            action()
            return
        await super()._on_key(event)

    def _own_keys(self) -> dict[str, Callable[[], None]]:
        keymap = getattr(self.app, "user_keymap", {})
        found: dict[str, Callable[[], None]] = {}
        for binding_id, action in (("send", self.action_submit), ("newline", self.action_newline)):
            for key in keymap.get(binding_id, keys.BY_ID[binding_id].keys).split(","):
                found[key.strip()] = action
        return found

    # ---- sending ----------------------------------------------------------------------------------

    def action_submit(self) -> None:
        text = self.text
        if not text.strip():
            return
        self.post_message(self.Submitted(text))

    def remember(self, text: str) -> None:
        """Add a sent prompt to the history and empty the box."""
        if not self.prompt_history or self.prompt_history[-1] != text:
            self.prompt_history.append(text)
        self._position = len(self.prompt_history)
        self._draft = ""
        self.load_text("")

    def action_newline(self) -> None:
        start, end = self.selection
        self.replace("\n", start, end, maintain_selection_offset=False)  # the cursor moves past the new line

    # ---- history ------------------------------------------------------------------------------------

    def action_cursor_up(self, select: bool = False) -> None:
        if select or self.cursor_location[0] > 0 or not self.prompt_history or self._position == 0:
            super().action_cursor_up(select)
            return
        if self._position == len(self.prompt_history):
            self._draft = self.text
        self._position -= 1
        self._recall(self.prompt_history[self._position])

    def action_cursor_down(self, select: bool = False) -> None:
        last_row = self.document.line_count - 1
        if select or self.cursor_location[0] < last_row or self._position >= len(self.prompt_history):
            super().action_cursor_down(select)
            return
        self._position += 1
        self._recall(self._draft if self._position == len(self.prompt_history) else self.prompt_history[self._position])

    def _recall(self, text: str) -> None:
        self.load_text(text)
        self.move_cursor(self.document.end)
