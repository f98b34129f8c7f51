"""Every key binding of the TUI in one table, and the user's remapping from the config file.

Each binding has an id; ``[tui.keys]`` in config.toml maps ids to keys (Textual key names, several separated
by commas or given as a list)::

    [tui.keys]
    regenerate = "ctrl+g"
    newline = ["ctrl+j", "f4"]

The footer and the help screen show whatever keys are in effect. Every key does one thing: a remap that
would give a key to two bindings (the prompt box, the screen and the app all listen at once, so the inner one
would silently win) is refused with a warning naming both, and the binding keeps its default key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from textual.binding import Binding, BindingType

from llmswitch.record import record


@record(slots=False)
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
    KeySpec("settings", "ctrl+s", "settings", "System prompt & settings", "chat", show=False),
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
# Keys Textual itself answers everywhere; a binding moved onto one would never fire, or would hide them.
RESERVED_KEYS = {"ctrl+p": "the command palette", "ctrl+c": "copying the selected text", "tab": "moving the focus",
                 "shift+tab": "moving the focus"}


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
    return refuse_conflicts(keymap, warnings)


def refuse_conflicts(keymap: dict[str, str], warnings: list[str]) -> tuple[dict[str, str], list[str]]:
    """Drop each remap that gives a key to two bindings (or to one Textual keeps for itself), with a warning
    naming both; the dropped binding keeps its default key, which may free or clash in turn, so repeat."""
    keymap = dict(keymap)
    while True:
        holders: dict[str, list[str]] = {}
        for spec, keys in effective_keys(keymap):
            for key in _key_names(keys):
                holders.setdefault(key, []).append(spec.id)
        refused: dict[str, str] = {}  # binding id -> warning
        for key, ids in holders.items():
            moved = [binding_id for binding_id in ids if binding_id in keymap]
            if key in RESERVED_KEYS:
                for binding_id in moved:
                    refused[binding_id] = (f"[tui.keys] {binding_id} = {keymap[binding_id]!r}: {key} is kept for "
                                           f"{RESERVED_KEYS[key]}; {binding_id} stays on "
                                           f"{BY_ID[binding_id].keys}. Choose another key.")
            if len(ids) < 2:
                continue
            for binding_id in moved:
                others = [other for other in ids if other != binding_id]
                named = ", ".join(f"{other} ({BY_ID[other].description})" for other in others)
                refused.setdefault(binding_id, (
                    f"[tui.keys] {binding_id} = {keymap[binding_id]!r}: {key} is already the key of {named}; "
                    f"{binding_id} stays on {BY_ID[binding_id].keys}. Move {others[0]} too "
                    f"({others[0]} = \"f4\", say) or choose another key."))
        if not refused:
            return keymap, warnings
        for binding_id, warning in refused.items():
            del keymap[binding_id]
            warnings.append(warning)


def _key_names(keys: str) -> list[str]:
    return [key.strip().lower() for key in keys.split(",") if key.strip()]


def effective_keys(keymap: Mapping[str, str]) -> list[tuple[KeySpec, str]]:
    """Every binding with the keys now in effect (the help screen's table)."""
    return [(spec, keymap.get(spec.id, spec.keys)) for spec in KEYS]
