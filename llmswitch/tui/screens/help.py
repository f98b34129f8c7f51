"""The help screen: every key in effect (after the user's remapping) and what it does."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static

from llmswitch.tui import keys

SCOPES = {"input": "in the prompt box", "chat": "anywhere in the chat", "app": "everywhere"}
NOTES = (
    "Remap any key in config.toml by the id in the last column:\n\n"
    "    [tui.keys]\n"
    "    regenerate = \"ctrl+g\"\n"
    "    newline = [\"ctrl+j\", \"f4\"]\n\n"
    "Search box: type to search every message of every conversation (\"quoted words\" match a phrase); "
    "Enter jumps to the results, Enter again opens one, Esc clears the search.\n"
    "Sidebar list: Enter opens a conversation; Rename, Export and Delete act on the highlighted one.\n"
    "Copy actions act on the selected message (Ctrl+Up / Ctrl+Down, or click one), else on the last answer.\n"
    "Ctrl+P opens the command palette: every action and every profile, by name."
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,q", "dismiss(None)", "Close")]

    def __init__(self, keymap: dict[str, str]) -> None:
        super().__init__(classes="dialog-screen")
        self._keymap = keymap

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help"):
            yield Label("Keys", classes="dialog-title")
            yield DataTable(id="keys", cursor_type="row", zebra_stripes=True)
            yield Static(NOTES, classes="dialog-hint", markup=False)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Key", "Action", "Where", "Id")
        for spec, active in keys.effective_keys(self._keymap):
            table.add_row(active.replace(",", ", "), spec.description, SCOPES.get(spec.scope, spec.scope), spec.id)
        table.add_row("ctrl+p", "Command palette", "everywhere", "")
