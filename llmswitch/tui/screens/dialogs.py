"""Small modal dialogs: a line of text, a yes/no question, a choice from a list."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList
from textual.widgets.option_list import Option


class TextPromptScreen(ModalScreen[str | None]):
    """Ask for one line of text (a title, a file name); Enter accepts, Escape cancels."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, title: str, value: str = "", *, hint: str = "") -> None:
        super().__init__(classes="dialog-screen")
        self._title, self._value, self._hint = title, value, hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self._title, classes="dialog-title")
            yield Input(self._value, id="value")
            yield Label(Content(self._hint), classes="dialog-hint")

    @on(Input.Submitted, "#value")
    def _accept(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question; ``y``/Enter on Yes confirms, ``n``/Escape declines."""

    BINDINGS = [Binding("escape,n", "dismiss(False)", "No"), Binding("y", "dismiss(True)", "Yes")]

    def __init__(self, question: str) -> None:
        super().__init__(classes="dialog-screen")
        self._question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Content(self._question), classes="dialog-title")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Yes (y)", id="yes", variant="error")
                yield Button("No (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class ChoiceScreen(ModalScreen[int | None]):
    """Pick one of several items (a code block, an export format); returns its index."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, title: str, items: list[str]) -> None:
        super().__init__(classes="dialog-screen")
        self._title, self._items = title, items

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self._title, classes="dialog-title")
            yield OptionList(*(Option(Content(f"{index}. {item}"), id=str(index - 1))
                               for index, item in enumerate(self._items, 1)), id="choices")

    def on_mount(self) -> None:
        self.query_one(OptionList).highlighted = 0

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(int(event.option_id or 0))

    def on_key(self, event) -> None:  # type: ignore[no-untyped-def]
        # Digits pick directly: "2" copies the second code block.
        if event.character and event.character.isdigit():
            index = int(event.character) - 1
            if 0 <= index < len(self._items):
                event.stop()
                self.dismiss(index)
