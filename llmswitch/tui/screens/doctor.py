"""The doctor screen: every profile's health, checked concurrently, each row filled in as its result arrives."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label, Static

from llmswitch.client import Client
from llmswitch.terminal import neutralize
from llmswitch.tui.health import HealthRow, broken_plugins, check_profiles, profile_choices

STATUS_STYLE = {"ok": "$text-success", "degraded": "$text-warning", "down": "$text-error"}
FINDING_WIDTH = 60  # the whole finding and its remedy are shown below the table for the highlighted row


def shorten(text: str, width: int = FINDING_WIDTH) -> str:
    text = " ".join(neutralize(text).split())  # a finding can quote a server's error body
    return text if len(text) <= width else text[: width - 1] + "…"


class DoctorScreen(Screen[None]):
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back"), Binding("r", "recheck", "Check again")]

    def __init__(self, client: Client, *, timeout: float = 5.0) -> None:
        super().__init__()
        self.client = client
        self.timeout = timeout
        self.rows: dict[str, HealthRow] = {}

    def compose(self) -> ComposeResult:
        yield Label("Doctor: can each profile answer?", classes="screen-title")
        yield DataTable(id="doctor", cursor_type="row", zebra_stripes=True)
        yield Static("", id="doctor-detail")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("Profile", key="profile")
        table.add_column("Backend", key="backend")
        table.add_column("Model", key="model")
        table.add_column("Status", key="status", width=10)
        table.add_column("Latency", key="latency", width=8)
        table.add_column("Finding", key="finding", width=FINDING_WIDTH)
        self.action_recheck()

    def action_recheck(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        self.rows.clear()
        names = []
        for choice in profile_choices(self.client):
            if choice.unavailable is not None:
                table.add_row(choice.name, choice.backend, choice.model, Content.styled("down", "$text-error"),
                              "", Content(shorten(choice.unavailable)), key=choice.name)
                self.rows[choice.name] = HealthRow(choice.name, "down", choice.backend, choice.model,
                                                   summary=choice.unavailable)
            else:
                table.add_row(choice.name, choice.backend, choice.model, Content.styled("checking…", "dim"),
                              "", "", key=choice.name)
                names.append(choice.name)
        for name, error in broken_plugins(self.client):
            table.add_row(f"plugin {name}", "", "", Content.styled("broken", "$text-error"), "",
                          Content(shorten(f"failed to load: {error}")), key=f"plugin:{name}")
        if names:
            self.run_checks(names)

    @work(thread=True, exclusive=True, group="doctor", exit_on_error=False)
    def run_checks(self, names: list[str]) -> None:
        try:
            for row in check_profiles(self.client, names, timeout=self.timeout):
                self.app.call_from_thread(self.show_row, row)
        except RuntimeError:  # the app is closing
            return
        except Exception as error:  # noqa: BLE001 - a failing check marks the rows, never ends the app
            from llmswitch.secrets import redact

            summary = redact(f"the check failed: {type(error).__name__}: {error}")
            for name in names:
                if name not in self.rows:
                    try:
                        self.app.call_from_thread(self.show_row, HealthRow(name, "down", summary=summary))
                    except RuntimeError:
                        return

    def show_row(self, row: HealthRow) -> None:
        if not self.is_mounted:
            return
        self.rows[row.profile] = row
        table = self.query_one(DataTable)
        table.update_cell(row.profile, "status", Content.styled(row.status, STATUS_STYLE.get(row.status, "")))
        table.update_cell(row.profile, "latency", f"{row.latency_s:.2f}s" if row.latency_s is not None else "")
        table.update_cell(row.profile, "finding", Content(shorten(row.summary)))
        self._show_detail()

    @on(DataTable.RowHighlighted)
    def _show_detail(self) -> None:
        table = self.query_one(DataTable)
        detail = self.query_one("#doctor-detail", Static)
        if table.row_count == 0:
            detail.update("")
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        row = self.rows.get(key or "")
        if row is None:
            detail.update("")
            return
        text = f"{row.profile}: {row.status} — {row.summary}"
        if row.remedy:
            text += f"\nhint: {row.remedy}"
        detail.update(Content(neutralize(text)))
