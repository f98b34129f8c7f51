"""Snapshots of the main screens at 120x40 (pytest-textual-snapshot; `--snapshot-update` to accept changes).

Only the echo plugin is loaded (LLMSWITCH_PLUGINS) so the built-in profiles of other backends show the same
"unavailable" rows on every machine, and stored conversations carry fixed timestamps.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for

from llmswitch.store import HistoryStore
from llmswitch.tui.app import create_app

SIZE = (120, 40)
NOON = 1_717_243_200.0  # 2024-06-01 12:00 UTC: the same date in nearly every time zone
ANSWER = """Use `reversed(items)` for an iterator, or slice for a new list:

```python
items = [1, 2, 3]
print(items[::-1])
```

- slicing copies the list
- `list.reverse()` works **in place**
"""


@pytest.fixture
def seeded(config: Path, store: HistoryStore, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("LLMSWITCH_PLUGINS", "echo")
    # The profiles the other plugins bring, written out (only echo is loaded here, and built-in profiles are
    # the plugins' data); their models change between releases, so they are pinned and the pictures do not.
    others = {"anthropic": ("anthropic", "Anthropic's API"), "openai": ("openai", "OpenAI's API"),
              "local": ("llamacpp", "llama.cpp in-process on the embedded Gemma 3 270M demo model (offline, no key)"),
              "ollama": ("ollama", "a local Ollama server")}
    config.write_text(config.read_text() + "".join(
        f'\n[profiles.{name}]\nbackend = "{backend}"\nmodel = "{name}-model"\ndescription = "{description}"\n'
        for name, (backend, description) in others.items()))
    # Conversations started during a test are dated now: show every date the same way.
    monkeypatch.setattr("llmswitch.tui.widgets.sidebar.when", lambda seconds: "2024-06-01")
    first = store.create_conversation(profile="fast")
    store.add_message(first, "user", "How do I reverse a list in Python?", profile="fast", model="echo-fast")
    store.add_message(first, "assistant", ANSWER, profile="fast", backend="echo", model="echo-fast",
                      input_tokens=8, output_tokens=42, cost_usd=0.0012, latency_s=0.84, finish_reason="stop")
    second = store.create_conversation(profile="slow")
    store.add_message(second, "user", "Name a tokenizer for GPT models", profile="slow", model="echo")
    store.add_message(second, "assistant", "tiktoken, with the o200k_base encoding", profile="slow",
                      backend="echo", model="echo", finish_reason="interrupted")
    assert store.path is not None
    with sqlite3.connect(store.path) as connection:
        for table in ("conversations", "messages"):
            column = "created_at" if table == "messages" else "created_at = ?, updated_at"
            connection.execute(f"UPDATE {table} SET {column} = ?", (NOON, NOON) if table != "messages" else (NOON,))
        connection.execute("UPDATE conversations SET updated_at = updated_at + id")  # a stable order
    return first


def screen(app) -> Any:  # type: ignore[no-untyped-def]
    return app.screen


def quiet(app) -> None:  # type: ignore[no-untyped-def]
    """No blinking cursor and no toasts: the same picture every time."""
    for area in screen(app).query("TextArea"):
        area.cursor_blink = False
    app.clear_notifications()


def test_chat_with_a_stored_conversation(snap_compare, seeded: int) -> None:  # type: ignore[no-untyped-def]
    app = create_app(conversation_id=seeded)

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await wait_for(pilot, lambda: len(screen(app).chat_log.messages()) == 2)
        screen(app).prompt.focus()
        quiet(app)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_search_results_are_highlighted(snap_compare, seeded: int) -> None:  # type: ignore[no-untyped-def]
    app = create_app()

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.press("ctrl+f", *"list")
        # Each key restarts the search timer; under load an early one may fire for "li": wait for "list".
        await wait_for(pilot, lambda: screen(app).sidebar.searched_for == "list")
        quiet(app)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_one_shot_answers_grouped_at_the_end_of_the_sidebar(snap_compare, seeded: int,  # type: ignore[no-untyped-def]
                                                             store: HistoryStore) -> None:
    for question in ("What is a quokka?", "Capital of Peru?"):
        one_shot = store.create_conversation(profile="echo", one_shot=True)
        store.add_message(one_shot, "user", question, profile="echo")
        store.add_message(one_shot, "assistant", question, profile="echo", model="echo")
    app = create_app()

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await wait_for(pilot, lambda: screen(app).sidebar.option_list.option_count == 3)
        quiet(app)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_profile_picker_with_health(snap_compare, seeded: int) -> None:  # type: ignore[no-untyped-def]
    app = create_app(profile="fast")

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ProfilePickerScreen")
        await wait_for(pilot, lambda: {"echo", "fast", "slow"} <= set(screen(app).health))
        quiet(app)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_doctor_screen(snap_compare, seeded: int) -> None:  # type: ignore[no-untyped-def]
    app = create_app(profile="fast")

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.press("f9")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "DoctorScreen")
        await wait_for(pilot, lambda: {"echo", "fast", "slow"} <= set(screen(app).rows))
        quiet(app)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_help_screen(snap_compare, seeded: int) -> None:  # type: ignore[no-untyped-def]
    app = create_app(profile="fast")

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.press("f1")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "HelpScreen")
        quiet(app)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_settings_editor(snap_compare, seeded: int) -> None:  # type: ignore[no-untyped-def]
    app = create_app(conversation_id=seeded)

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await wait_for(pilot, lambda: len(screen(app).chat_log.messages()) == 2)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "SettingsScreen")
        quiet(app)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_inline_error_from_a_failing_backend(snap_compare, seeded: int) -> None:  # type: ignore[no-untyped-def]
    app = create_app(profile="cut")

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        screen(app).prompt.load_text("Tell me everything")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen(app).current is None and not screen(app).views)
        quiet(app)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
