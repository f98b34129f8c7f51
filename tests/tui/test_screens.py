"""Doctor, help, key remapping from the config file, the command palette, start-up options."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CONFIG, palette_offers, wait_for

from llmswitch.errors import ConfigError, ProfileNotFoundError
from llmswitch.store import HistoryStore
from llmswitch.tui import keys
from llmswitch.tui.app import create_app
from llmswitch.tui.screens.chat import ChatScreen
from llmswitch.tui.widgets.prompt_input import PromptInput

pytestmark = pytest.mark.anyio
SIZE = (120, 40)


async def test_doctor_fills_rows_as_results_arrive(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from llmswitch.tui import health

    release = threading.Event()
    real = health.check_profiles

    def slow_for_down(client, names, *, timeout=5.0):  # type: ignore[no-untyped-def]
        # "down" answers only when the test says so: the other rows must not wait for it.
        rows = list(real(client, [n for n in names if n != "down"], timeout=timeout))
        yield from rows
        release.wait(10)
        yield from real(client, ["down"], timeout=timeout)

    monkeypatch.setattr("llmswitch.tui.screens.doctor.check_profiles", slow_for_down)
    app = create_app(profile="fast")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f9")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "DoctorScreen")
        doctor = app.screen
        table = doctor.query_one("DataTable")
        await wait_for(pilot, lambda: "fast" in doctor.rows and "slow" in doctor.rows)  # type: ignore[attr-defined]
        assert str(table.get_cell("fast", "status")) == "ok"  # type: ignore[attr-defined]
        assert "checking" in str(table.get_cell("down", "status"))  # type: ignore[attr-defined]
        assert "down" not in doctor.rows  # type: ignore[attr-defined]
        # A profile whose backend is missing is reported without a check, with the reason.
        assert str(table.get_cell("ghost", "status")) == "down"  # type: ignore[attr-defined]
        assert "not-installed" in str(table.get_cell("ghost", "finding"))  # type: ignore[attr-defined]
        release.set()
        await wait_for(pilot, lambda: "down" in doctor.rows)  # type: ignore[attr-defined]
        assert str(table.get_cell("down", "status")) == "down"  # type: ignore[attr-defined]
        table.move_cursor(row=table.get_row_index("down"))  # type: ignore[attr-defined]
        await pilot.pause()
        assert "hint: start the server" in str(doctor.query_one("#doctor-detail").render())
        await pilot.press("escape")
        assert isinstance(app.screen, ChatScreen)


async def test_help_lists_every_binding_with_the_keys_in_effect(config: Path) -> None:
    config.write_text(CONFIG + '\n[tui.keys]\nregenerate = "f5"\n', encoding="utf-8")
    app = create_app(profile="fast")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "HelpScreen")
        table = app.screen.query_one("DataTable")
        rows = [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]  # type: ignore[attr-defined]
        ids = {row[3] for row in rows}
        assert {spec.id for spec in keys.KEYS} <= ids
        assert rows[[r[3] for r in rows].index("regenerate")][:2] == ["f5", "Regenerate"]
        await pilot.press("escape")
        assert isinstance(app.screen, ChatScreen)


async def test_keys_remapped_in_the_config_file_work_and_show_in_the_footer(config: Path) -> None:
    config.write_text(CONFIG + '\n[tui.keys]\nregenerate = "f5"\nsend = "ctrl+g"\nnewline = ["enter"]\n'
                      'nonsense = "f6"\n', encoding="utf-8")
    app = create_app(profile="fast")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert any("[tui.keys] nonsense: no such binding" in n.message for n in app._notifications)
        prompt = app.screen.query_one(PromptInput)
        await pilot.press(*"one", "enter", *"two")
        assert prompt.text == "one\ntwo"  # enter is now a newline
        await pilot.press("ctrl+g")  # and ctrl+g sends
        screen = app.screen
        assert isinstance(screen, ChatScreen)
        await wait_for(pilot, lambda: screen.current is None and len(screen.chat_log.messages()) == 2)
        await wait_for(pilot, lambda: not screen.views)
        first_answer = screen.chat_log.last_assistant()
        await pilot.press("ctrl+r")  # the old key does nothing now
        await pilot.pause(0.2)
        assert screen.chat_log.last_assistant() is first_answer
        await pilot.press("f5")
        await wait_for(pilot, lambda: screen.chat_log.last_assistant() is not first_answer)
        footer_keys = {binding.id: key for key, (_, binding, _, _) in
                       ((k, v) for k, v in app.screen.active_bindings.items())
                       for _ in [0] if binding.id}
        assert footer_keys.get("regenerate") == "f5" and footer_keys.get("send") == "ctrl+g"


def test_parse_keymap_accepts_strings_and_lists_and_reports_the_rest() -> None:
    keymap, warnings = keys.parse_keymap({"send": "ctrl+g", "newline": ["ctrl+j", "f4"], "regenrate": "f5",
                                          "cancel": 3})
    assert keymap == {"send": "ctrl+g", "newline": "ctrl+j,f4"}
    assert any("regenrate" in w and "did you mean 'regenerate'" in w for w in warnings)
    assert any("cancel" in w for w in warnings)
    assert keys.parse_keymap("not a table")[1]


def test_default_keys_are_each_used_once() -> None:
    keymap, warnings = keys.parse_keymap({})
    assert keymap == {} and warnings == []
    used = [key for spec in keys.KEYS for key in spec.keys.split(",")]
    assert len(used) == len(set(used))


def test_a_remap_onto_another_bindings_key_is_refused_naming_both() -> None:
    keymap, warnings = keys.parse_keymap({"send": "ctrl+s"})
    assert keymap == {}
    (warning,) = warnings
    assert "send" in warning and "settings" in warning and "ctrl+s" in warning and "stays on enter" in warning
    # Moving both is a swap, and fine; so is taking a key another remap freed.
    assert keys.parse_keymap({"send": "ctrl+s", "settings": "f4"}) == ({"send": "ctrl+s", "settings": "f4"}, [])
    assert keys.parse_keymap({"send": "ctrl+g", "newline": "enter"})[1] == []
    # Two remaps onto one key: both refused. A refused remap that frees nothing cascades.
    keymap, warnings = keys.parse_keymap({"regenerate": "f5", "rename": ["f5"]})
    assert keymap == {} and len(warnings) == 2 and all("f5" in w for w in warnings)
    keymap, warnings = keys.parse_keymap({"regenerate": "ctrl+n", "copy_code": "ctrl+r"})
    assert keymap == {} and any("new_conversation" in w for w in warnings)
    assert any("regenerate" in w and "copy_code" in w for w in warnings)
    # Keys Textual answers itself.
    keymap, warnings = keys.parse_keymap({"search": "Ctrl+P"})
    assert keymap == {} and "command palette" in warnings[0]


def readme_keys_example() -> str:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    block = readme.split("[tui.keys]", 1)[1].split("```", 1)[0]
    return "[tui.keys]" + block


async def test_the_readme_remap_example_works_without_a_warning(config: Path) -> None:
    example = readme_keys_example()
    assert "send" in example
    config.write_text(CONFIG + "\n" + example, encoding="utf-8")
    app = create_app(profile="fast")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert not [n.message for n in app._notifications if "tui.keys" in n.message]
        screen = app.screen
        assert isinstance(screen, ChatScreen)
        send_key = app._keymap["send"].split(",")[0]
        settings_key = app._keymap.get("settings", "ctrl+s").split(",")[0]
        await pilot.press(*"hi", send_key)
        await wait_for(pilot, lambda: len(screen.chat_log.messages()) == 2)
        await pilot.press(settings_key)
        await wait_for(pilot, lambda: type(app.screen).__name__ == "SettingsScreen")


async def test_a_conflicting_remap_warns_and_both_keys_keep_working(config: Path) -> None:
    config.write_text(CONFIG + '\n[tui.keys]\nsend = "ctrl+s"\n', encoding="utf-8")
    app = create_app(profile="fast")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        (warning,) = [n.message for n in app._notifications if "tui.keys" in n.message]
        assert "send" in warning and "settings" in warning
        screen = app.screen
        assert isinstance(screen, ChatScreen)
        await pilot.press(*"hi", "enter")  # Enter still sends
        await wait_for(pilot, lambda: len(screen.chat_log.messages()) == 2)
        await wait_for(pilot, lambda: screen.current is None)
        await pilot.press("ctrl+s")  # and the settings screen still opens
        await wait_for(pilot, lambda: type(app.screen).__name__ == "SettingsScreen")


async def test_command_palette_lists_actions_and_profiles(config: Path) -> None:
    app = create_app(profile="fast")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        titles = {command.title for command in app.get_system_commands(app.screen)}
        assert {"Regenerate", "Doctor", "Export to Markdown", "Export to JSON", "Profile: slow",
                "System prompt & settings"} <= titles
        await pilot.press("ctrl+p")
        await pilot.press(*"Doctor")
        await wait_for(pilot, lambda: palette_offers(app, "Doctor"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "DoctorScreen")


def test_a_misspelt_profile_is_an_error_before_the_app_starts(config: Path) -> None:
    with pytest.raises(ProfileNotFoundError):
        create_app(profile="fsat")


def test_continue_a_missing_conversation_is_an_error_before_the_app_starts(config: Path,
                                                                         store: HistoryStore) -> None:
    with pytest.raises(ConfigError):
        create_app(conversation_id=42)


async def test_an_unusable_default_profile_does_not_stop_the_app(config: Path) -> None:
    config.write_text(CONFIG.replace('default_profile = "echo"', 'default_profile = "ghost"'), encoding="utf-8")
    app = create_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        status = str(app.screen.query_one("#status").render())
        assert "ghost" in status and "unavailable" in status
        app.screen.query_one(PromptInput).load_text("hi")
        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, ChatScreen)
        await wait_for(pilot, lambda: not screen.views)
        error = str(screen.chat_log.last_assistant().query_one(".error").render())  # type: ignore[union-attr]
        assert "not-installed" in error and "hint:" in error


def test_tui_command_does_not_import_textual_for_help() -> None:
    import subprocess
    import sys

    code = ("import sys; from llmswitch.cli import cli; "
            "cli.main(['--help'], standalone_mode=False); "
            "cli.main(['tui', '--help'], standalone_mode=False); "
            "print('textual' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"
    assert "Open the terminal chat app" in done.stdout


async def test_continue_latest_opens_the_most_recent_conversation(config: Path, store: HistoryStore) -> None:
    older = store.create_conversation()
    store.add_message(older, "user", "older")
    newer = store.create_conversation()
    store.add_message(newer, "user", "newer")
    app = create_app(conversation_id="latest")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, ChatScreen)
        await wait_for(pilot, lambda: screen.session.conversation_id == newer)
        assert [m.text for m in screen.chat_log.messages()] == ["newer"]


@pytest.mark.parametrize("continue_id", ["latest", "id"])
async def test_profile_given_with_continue_answers_the_stored_conversation(config: Path, store: HistoryStore,
                                                                          continue_id: str) -> None:
    # `llmswitch tui -p slow -c` as `chat -p slow -c`: the conversation opens, and slow answers it.
    stored = store.create_conversation(profile="fast")
    store.add_message(stored, "user", "first", profile="fast", model="echo-fast")
    app = create_app(profile="slow", conversation_id="latest" if continue_id == "latest" else stored)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, ChatScreen)
        await wait_for(pilot, lambda: screen.session.conversation_id == stored)
        assert screen.session.resolved.name == "slow"
        assert "slow" in str(screen.query_one("#status").render())
        screen.query_one(PromptInput).load_text("second")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.current is None and not screen.views)
    assert [(m.content, m.profile) for m in store.messages(stored)][-2:] == [("second", "slow"), ("second", "slow")]
    assert store.get_conversation(stored).profile == "slow"


async def test_continue_without_a_profile_answers_with_the_stored_one(config: Path, store: HistoryStore) -> None:
    stored = store.create_conversation(profile="fast")
    store.add_message(stored, "user", "first", profile="fast", model="echo-fast")
    app = create_app(conversation_id="latest")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, ChatScreen)
        await wait_for(pilot, lambda: screen.session.conversation_id == stored)
        assert screen.session.resolved.name == "fast"


def test_tui_command_rejects_an_id_that_is_not_a_number(config: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "llmswitch", "tui", "--continue", "abc"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and "not a conversation id" in done.stderr and "Traceback" not in done.stderr


async def test_a_health_check_that_crashes_marks_rows_instead_of_ending_the_app(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(client, names, *, timeout=5.0):  # type: ignore[no-untyped-def]
        raise ValueError("doctor exploded")
        yield

    monkeypatch.setattr("llmswitch.tui.screens.doctor.check_profiles", broken)
    monkeypatch.setattr("llmswitch.tui.screens.profiles.check_profiles", broken)
    app = create_app(profile="fast")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f9")
        await wait_for(pilot, lambda: "fast" in getattr(app.screen, "rows", {}))
        assert "doctor exploded" in app.screen.rows["fast"].summary  # type: ignore[attr-defined]
        await pilot.press("escape", "ctrl+o")
        await wait_for(pilot, lambda: "fast" in getattr(app.screen, "health", {}))
        assert app.is_running
