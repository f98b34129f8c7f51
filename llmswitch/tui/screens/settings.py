"""The per-conversation editor: the system prompt and the generation settings (temperature, max_tokens...)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static, TextArea

from llmswitch.errors import LLMSwitchError
from llmswitch.profiles import GENERATION_KEYS, parse_cli_value
from llmswitch.record import record
from llmswitch.tui.session import EDITABLE_SETTINGS


@record(slots=False)
class ConversationSettings:
    system: str | None
    settings: dict[str, Any]


def format_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        import json

        return json.dumps(list(value))
    return str(value)


def parse_settings(texts: Mapping[str, str]) -> dict[str, Any]:
    """The typed-in values (blank = the profile's default), typed like ``-o KEY VALUE`` on the command line."""
    settings: dict[str, Any] = {}
    for key, text in texts.items():
        text = text.strip()
        if not text:
            continue
        spec = GENERATION_KEYS[key]
        if spec.type == "list" and not text.startswith("["):
            settings[key] = [part.strip() for part in text.split(",") if part.strip()]  # stop: a, b
        else:
            settings[key] = parse_cli_value(spec, text)
    return settings


class SettingsScreen(ModalScreen[ConversationSettings | None]):
    """Edit the open conversation's system prompt and settings; Ctrl+S saves, Escape cancels."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel"), Binding("ctrl+s", "save", "Save")]

    def __init__(self, system: str | None, settings: Mapping[str, Any], profile_defaults: Mapping[str, Any]) -> None:
        super().__init__(classes="dialog-screen")
        self._system, self._settings, self._defaults = system, dict(settings), dict(profile_defaults)

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog settings"):
            yield Label("This conversation's system prompt and settings", classes="dialog-title")
            yield Label("System prompt", classes="field-label")
            yield TextArea(self._system or "", id="system", soft_wrap=True, show_line_numbers=False, compact=True)
            with Grid(classes="settings"):
                for key in EDITABLE_SETTINGS:
                    spec = GENERATION_KEYS[key]
                    default = self._defaults.get(key)
                    placeholder = f"profile: {format_value(default)}" if default is not None else "backend default"
                    yield Label(f"{key}", classes="field-label")
                    yield Input(format_value(self._settings.get(key)), placeholder=placeholder, id=f"opt-{key}",
                                tooltip=spec.description, compact=True)
            yield Static("", id="settings-error", classes="error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save (ctrl+s)", id="save", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#settings-error", Static).display = False

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#save")
    @on(Input.Submitted)
    def action_save(self) -> None:
        texts = {key: self.query_one(f"#opt-{key}", Input).value for key in EDITABLE_SETTINGS}
        try:
            settings = parse_settings(texts)
        except LLMSwitchError as error:
            message = Content(error.message + (f"\n{error.remedy}" if error.remedy else ""))
            error_label = self.query_one("#settings-error", Static)
            error_label.update(message)
            error_label.display = True
            return
        system = self.query_one("#system", TextArea).text
        self.dismiss(ConversationSettings(system.strip() or None, settings))
