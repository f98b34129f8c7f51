"""Every key binding of the TUI in one table, and the user's remapping from the config file.

Each binding has an id; ``[tui.keys]`` in config.toml maps ids to keys (Textual key names, several separated
by commas or given as a list)::

    [tui.keys]
    regenerate = "ctrl+g"
    newline = ["ctrl+j", "f4"]

The footer and the help screen show whatever keys are in effect.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from textual.binding import Binding, BindingType


@dataclass(frozen=True)
class KeySpec:
    """One remappable binding: where it lives, its default keys, what it does."""

    id: str
    keys: str
    action: str
    description: str
    scope: str  # "chat" (main screen), "input" (prompt box), "sidebar" (conversation list), "app"
    show: bool = True
    priority: bool = False


KEYS: tuple[KeySpec, ...] = (
    KeySpec("send", "enter", "submit", "Send", "input"),
    KeySpec("newline", "ctrl+j,shift+enter", "newline", "Newline", "input"),
    KeySpec("cancel", "escape", "cancel", "Cancel", "chat"),
    KeySpec("new_conversation", "ctrl+n", "new_conversation", "New", "chat"),
    KeySpec("search", "ctrl+f", "search", "Search", "chat"),
    KeySpec("pick_profile", "ctrl+o", "pick_profile", "Profile", "chat"),
    KeySpec("settings", "ctrl+s", "settings", "System prompt & options", "chat", show=False),
    KeySpec("regenerate", "ctrl+r", "regenerate", "Regenerate", "chat"),
    KeySpec("edit_last", "ctrl+l", "edit_last", "Edit last prompt", "chat", show=False),
    KeySpec("copy_message", "ctrl+t", "copy_message", "Copy message", "chat", show=False),
    KeySpec("copy_code", "ctrl+b", "copy_code", "Copy code", "chat"),
    KeySpec("previous_message", "ctrl+up", "select_message(-1)", "Previous message", "chat", show=False),
    KeySpec("next_message", "ctrl+down", "select_message(1)", "Next message", "chat", show=False),
    KeySpec("scroll_up", "shift+pageup", "scroll_chat(-1)", "Scroll the chat up", "chat", show=False),
    KeySpec("scroll_down", "shift+pagedown", "scroll_chat(1)", "Scroll the chat down", "chat", show=False),
    KeySpec("rename", "f2", "rename", "Rename", "chat", show=False),
    KeySpec("export", "f3", "export", "Export", "chat", show=False),
    KeySpec("delete", "f8", "delete", "Delete conversation", "chat", show=False),
    KeySpec("doctor", "f9", "doctor", "Doctor", "chat", show=False),
    KeySpec("help", "f1", "help", "Help", "app"),
    KeySpec("quit", "ctrl+q", "quit", "Quit", "app", show=False),
)
BY_ID = {spec.id: spec for spec in KEYS}


def bindings(scope: str) -> list[BindingType]:
    """Textual bindings for one scope, each carrying its id so a keymap can move it."""
    return [
        Binding(spec.keys, spec.action, spec.description, show=spec.show, priority=spec.priority, id=spec.id)
        for spec in KEYS
        if spec.scope == scope
    ]


def parse_keymap(table: Any) -> tuple[dict[str, str], list[str]]:
    """The ``[tui.keys]`` table as a Textual keymap, and a warning for each entry that cannot be used."""
    keymap: dict[str, str] = {}
    warnings: list[str] = []
    if table is None:
        return keymap, warnings
    if not isinstance(table, Mapping):
        return keymap, ["[tui.keys] must be a table of binding = \"key\" lines; it was ignored"]
    for binding_id, value in table.items():
        if binding_id not in BY_ID:
            from llmswitch.errors import close_matches

            close = close_matches(str(binding_id), BY_ID)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(BY_ID)})"
            warnings.append(f"[tui.keys] {binding_id}: no such binding{hint}")
            continue
        keys = [value] if isinstance(value, str) else value
        if not isinstance(keys, list) or not keys or not all(isinstance(key, str) and key.strip() for key in keys):
            warnings.append(f"[tui.keys] {binding_id}: give a key name such as \"ctrl+g\" or a list of them")
            continue
        keymap[binding_id] = ",".join(part.strip() for key in keys for part in key.split(",") if part.strip())
    return keymap, warnings


def effective_keys(keymap: Mapping[str, str]) -> list[tuple[KeySpec, str]]:
    """Every binding with the keys now in effect (the help screen's table)."""
    return [(spec, keymap.get(spec.id, spec.keys)) for spec in KEYS]
