"""The profile picker: every profile with its health (checked in the background), the unusable disabled."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from llmswitch.client import Client
from llmswitch.secrets import redact
from llmswitch.terminal import neutralize
from llmswitch.tui.health import HealthRow, ProfileChoice, broken_plugins, check_profiles, profile_choices

STATUS_STYLE = {"ok": "$text-success", "degraded": "$text-warning", "down": "$text-error"}
STATUS_MARK = {"ok": "●", "degraded": "◐", "down": "○"}


class ProfilePickerScreen(ModalScreen[str | None]):
    """Returns the chosen profile's name, or None."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, client: Client, current: str, *, check_health: bool = True) -> None:
        super().__init__(classes="dialog-screen")
        self.client = client
        self.current = current
        self.check_health = check_health
        self.choices: dict[str, ProfileChoice] = {}
        self.health: dict[str, HealthRow] = {}

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog picker"):
            yield Label("Answer with which profile?", classes="dialog-title")
            yield OptionList(id="profiles")
            yield Static("", id="detail", classes="dialog-hint")

    def on_mount(self) -> None:
        option_list = self.query_one(OptionList)
        choices = profile_choices(self.client)
        self.choices = {choice.name: choice for choice in choices}
        options = [Option(self._prompt(choice), id=choice.name, disabled=choice.unavailable is not None)
                   for choice in choices]
        for name, error in broken_plugins(self.client):
            options.append(Option(Content.assemble((f"  plugin {name}", "bold"),
                                                   (f"  failed to load: {error}", "$text-error")),
                                  id=f"plugin:{name}", disabled=True))
        option_list.set_options(options)
        if self.current in self.choices:
            option_list.highlighted = option_list.get_option_index(self.current)
        usable = [choice.name for choice in choices if choice.unavailable is None]
        if self.check_health and usable:
            self.run_checks(usable)

    def _prompt(self, choice: ProfileChoice) -> Content:
        row = self.health.get(choice.name)
        if choice.unavailable is not None:
            status = Content.assemble(("✕ unavailable", "$text-error"))
        elif row is None:
            status = Content.assemble(("… checking" if self.check_health else "", "dim"))
        else:
            latency = f" {row.latency_s:.2f}s" if row.latency_s is not None else ""
            status = Content.assemble((f"{STATUS_MARK.get(row.status, '?')} {row.status}{latency}",
                                       STATUS_STYLE.get(row.status, "")))
        marker = "▶ " if choice.name == self.current else "  "
        return Content.assemble(
            (f"{marker}{choice.name:<16}", "bold"), (f" {choice.backend + ' · ' + choice.model:<36} ", "dim"), status
        )

    @work(thread=True, exclusive=True, group="health", exit_on_error=False)
    def run_checks(self, names: list[str]) -> None:
        try:
            for row in check_profiles(self.client, names):
                self.app.call_from_thread(self._show_health, row)
        except RuntimeError:  # the app is closing
            return
        except Exception as error:  # noqa: BLE001 - a failing check marks the rows, never ends the app
            for name in names:
                if name not in self.health:
                    row = HealthRow(name, "down",
                                    summary=redact(f"the check failed: {type(error).__name__}: {error}"))
                    try:
                        self.app.call_from_thread(self._show_health, row)
                    except RuntimeError:
                        return

    def _show_health(self, row: HealthRow) -> None:
        self.health[row.profile] = row
        choice = self.choices.get(row.profile)
        if choice is None or not self.is_mounted:
            return
        self.query_one(OptionList).replace_option_prompt(row.profile, self._prompt(choice))
        self._show_detail()

    @on(OptionList.OptionHighlighted)
    def _show_detail(self) -> None:
        option = self.query_one(OptionList).highlighted_option
        detail = self.query_one("#detail", Static)
        if option is None or option.id not in self.choices:
            detail.update("")
            return
        choice = self.choices[option.id]
        lines = [choice.description] if choice.description else []
        if choice.unavailable:
            lines.append(f"unavailable: {choice.unavailable}")
        row = self.health.get(choice.name)
        if row is not None and row.status != "ok":
            lines.append(f"{row.status}: {row.summary}")
            if row.remedy:
                lines.append(f"hint: {row.remedy}")
        detail.update(Content(neutralize("\n".join(lines))))

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option_id)
