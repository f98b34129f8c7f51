"""The llmswitch terminal app: a chat over every profile, with history you can search.

    from llmswitch.tui.app import create_app
    create_app(profile="echo").run()
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from textual.app import App, SystemCommand
from textual.screen import Screen

from llmswitch.client import Client
from llmswitch.store import HistoryError, HistoryStore
from llmswitch.tui import keys
from llmswitch.tui.screens.chat import ChatScreen
from llmswitch.tui.session import ChatSession

STYLES = Path(__file__).parent / "styles"


class LLMSwitchApp(App[None]):
    """Build it with :func:`create_app` (which reads the config), or directly with a client and a store."""

    TITLE = "llmswitch"
    CSS_PATH = [STYLES / "app.tcss", STYLES / "chat.tcss", STYLES / "dialogs.tcss"]
    BINDINGS = keys.bindings("app")

    def __init__(
        self,
        client: Client,
        store: HistoryStore | None,
        *,
        profile: str | None = None,
        conversation_id: int | None = None,
        keymap: dict[str, str] | None = None,
        warnings: Iterable[str] = (),
        theme: str | None = None,
        record: bool = True,
    ) -> None:
        super().__init__()
        self.client = client
        self.store = store
        self.session = ChatSession(client, store, profile, record=record)
        self.open_on_start = conversation_id
        self.startup_warnings = list(warnings)
        self.user_keymap = dict(keymap or {})
        self.requested_theme = theme

    def on_mount(self) -> None:
        if self.user_keymap:
            self.set_keymap(self.user_keymap)
        if self.requested_theme:
            if self.requested_theme in self.available_themes:
                self.theme = self.requested_theme
            else:
                self.startup_warnings.append(f"[tui] theme {self.requested_theme!r} is not a theme; known: "
                                             + ", ".join(sorted(self.available_themes)))
        history: list[str] = []
        if self.store is not None:
            try:
                history = self.store.recent_prompts()
            except HistoryError as error:  # a damaged history.db: chat anyway, and say why Up recalls nothing
                self.startup_warnings.append(f"the prompt history cannot be read: {error.message}"
                                             + (f" ({error.remedy})" if error.remedy else ""))
        self.push_screen(ChatScreen(self.session, self.store, history=history, open_on_start=self.open_on_start,
                                    keep_profile_on_start=self.session.profile_name is not None))
        for warning in self.startup_warnings:
            self.notify(warning, severity="warning", timeout=15)
        self.quit_on_signals()

    def on_ready(self) -> None:
        """The first screen is up: what start-up made (Textual, the widgets, the styles, the config) lives as
        long as the app, so it is frozen out of the cycle collector's passes (``gc.freeze``). Otherwise the
        first full pass after start-up walks all of it, some 60 ms in the middle of the first answer.
        ``llmswitch`` itself froze what existed before the app was imported (``cli.end_of_start_up``). The
        garbage is collected first, so none of it is kept for good (an app run before this one in the same
        process, a test's, is garbage by now)."""
        gc.collect()
        gc.freeze()

    def quit_on_signals(self) -> None:
        """SIGTERM and SIGHUP (a kill, a closed terminal) quit the way Ctrl+Q does: the answer so far is kept."""
        import asyncio
        import signal

        loop = asyncio.get_running_loop()
        for name in ("SIGTERM", "SIGHUP"):
            number = getattr(signal, name, None)
            if number is None:  # Windows has no SIGHUP
                continue
            try:
                loop.add_signal_handler(number, self.call_next, self.action_quit)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no such support
                pass

    @property
    def chat(self) -> ChatScreen | None:
        for screen in self.screen_stack:
            if isinstance(screen, ChatScreen):
                return screen
        return None

    async def action_quit(self) -> None:
        """Quit; an answer still coming is kept and recorded as interrupted first (never lost, never "ok")."""
        chat = self.chat
        if chat is not None:
            await chat.stop_for_exit()
        self.exit()

    def action_help(self) -> None:
        from llmswitch.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.user_keymap))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The command palette (Ctrl+P): every action by name, and one entry per profile."""
        yield from super().get_system_commands(screen)
        chat = self.chat
        if chat is None:
            return
        for spec in keys.KEYS:
            if spec.scope == "chat" and spec.id not in ("previous_message", "next_message", "cancel", "scroll_up",
                                                         "scroll_down"):
                action = spec.action
                yield SystemCommand(spec.description, f"{spec.keys.split(',')[0]}",
                                    lambda action=action: self.run_action(action, chat))  # type: ignore[misc]
        yield SystemCommand("Export to Markdown", "write the conversation to a .md file",
                            lambda: self.run_action("export('markdown')", chat))
        yield SystemCommand("Export to JSON", "write the conversation to a .json file",
                            lambda: self.run_action("export('json')", chat))
        for name in self.client.store.names():
            yield SystemCommand(f"Profile: {name}", "answer with this profile from now on (history is kept)",
                                lambda name=name: chat.switch_profile(name))  # type: ignore[misc]

    async def on_unmount(self) -> None:
        if self.store is not None:
            self.store.close()
        gc.unfreeze()  # an app run in-process (a test, a notebook) leaves its objects collectable again


def create_app(
    config: str | os.PathLike[str] | None = None,
    *,
    profile: str | None = None,
    conversation_id: int | str | None = None,
    history: str | os.PathLike[str] | None = None,
    record: bool = True,
) -> LLMSwitchApp:
    """Read the config (profiles, ``[tui]`` settings, ``[tui.keys]``) and open the history; never raise for a
    history that cannot be opened (the app runs without it and says why). ``conversation_id`` opens a
    stored conversation (``"latest"``: the most recent one); ``record=False`` adds nothing to the history."""
    client = Client(config)
    warnings: list[str] = []
    tui_table = client.store.document.get("tui") or {}
    if not isinstance(tui_table, dict):
        warnings.append("[tui] in the config file must be a table; it was ignored")
        tui_table = {}
    keymap, key_warnings = keys.parse_keymap(tui_table.get("keys"))
    warnings += key_warnings
    theme = tui_table.get("theme") if isinstance(tui_table.get("theme"), str) else None
    store: HistoryStore | None
    try:
        store = HistoryStore.open(history)
    except HistoryError as error:
        store = None
        warnings.append(f"history is off: {error.message}" + (f" ({error.remedy})" if error.remedy else ""))
    if profile is not None:
        client.resolve(profile)  # a misspelt --profile is a command-line error, reported before the app starts
    opened: int | None = None
    if conversation_id == "latest" and store is not None:
        opened = store.latest_conversation_id()  # none yet: simply start a new one
    elif isinstance(conversation_id, int) and store is not None:
        opened = store.get_conversation(conversation_id).id  # a wrong id is reported before the app starts
    return LLMSwitchApp(client, store, profile=profile, conversation_id=opened, keymap=keymap,
                        warnings=warnings, theme=theme, record=record)
