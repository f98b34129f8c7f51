"""The sidebar and the conversation actions: list, search, open, rename, delete, export; CLI conversations."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for

from llmswitch.store import HIGHLIGHT_END, HIGHLIGHT_START, HistoryStore
from llmswitch.tui.app import create_app
from llmswitch.tui.screens.chat import ChatScreen
from llmswitch.tui.widgets.message import AssistantMessage
from llmswitch.tui.widgets.prompt_input import PromptInput
from llmswitch.tui.widgets.sidebar import Sidebar, highlighted

pytestmark = pytest.mark.anyio
SIZE = (120, 40)


def seed(store: HistoryStore) -> tuple[int, int]:
    first = store.create_conversation(profile="fast")
    store.add_message(first, "user", "How do I reverse a list in Python?", profile="fast", model="echo-fast")
    store.add_message(first, "assistant", "Use `reversed(items)` or:\n\n```python\nitems[::-1]\n```",
                      profile="fast", backend="echo", model="echo-fast", input_tokens=8, output_tokens=9,
                      cost_usd=0.25, finish_reason="stop")
    second = store.create_conversation(profile="slow")
    store.add_message(second, "user", "Name a tokenizer for GPT models", profile="slow", model="echo")
    store.add_message(second, "assistant", "tiktoken", profile="slow", backend="echo", model="echo")
    return first, second


def sidebar(app) -> Sidebar:  # type: ignore[no-untyped-def]
    return app.screen.query_one(Sidebar)


def option_ids(app) -> list[str]:  # type: ignore[no-untyped-def]
    option_list = sidebar(app).option_list
    return [option_list.get_option_at_index(i).id or "" for i in range(option_list.option_count)]


async def test_sidebar_lists_conversations_newest_first_and_opens_one(config: Path, store: HistoryStore) -> None:
    first, second = seed(store)
    app = create_app()
    async with app.run_test(size=SIZE) as pilot:
        assert option_ids(app) == [f"c{second}", f"c{first}"]
        sidebar(app).option_list.focus()
        sidebar(app).option_list.highlighted = 1
        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, ChatScreen)
        await wait_for(pilot, lambda: screen.session.conversation_id == first)
        views = screen.chat_log.messages()
        assert [v.text for v in views] == ["How do I reverse a list in Python?",
                                           "Use `reversed(items)` or:\n\n```python\nitems[::-1]\n```"]
        answer = views[1]
        assert isinstance(answer, AssistantMessage)
        assert "fast · echo-fast" in str(answer.query_one(".header").render())
        assert "in 8 · out 9 tokens" in str(answer.query_one(".meta").render())
        # The stored profile answers next, and the conversation's cost is totalled.
        status = str(screen.query_one("#status").render())
        assert "fast" in status and "$0.2500" in status
        # Continuing adds to the same stored conversation.
        screen.query_one(PromptInput).load_text("and tuples?")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.current is None and not screen.views)
        assert [m.content for m in store.messages(first)][-2:] == ["and tuples?", "and tuples?"]
        assert option_ids(app)[0] == f"c{first}"  # moved to the top


async def test_search_highlights_matches_and_enter_opens_the_hit(config: Path, store: HistoryStore) -> None:
    first, second = seed(store)
    app = create_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+f")
        await pilot.press(*"tokeniz")
        await wait_for(pilot, lambda: sidebar(app).searching and option_ids(app)[0].startswith("m"))
        ids = option_ids(app)
        assert ids == [f"m{second}:{store.messages(second)[0].id}"]
        prompt: Any = sidebar(app).option_list.get_option_at_index(0).prompt
        styled = [span for span in prompt.spans if prompt.plain[span.start:span.end] == "tokenizer"]
        assert styled, "the matching word is highlighted"
        assert "1 match" in str(sidebar(app).option_list.border_title)
        await pilot.press("enter")  # from the search box to the results
        await pilot.press("enter")  # open the hit
        screen = app.screen
        assert isinstance(screen, ChatScreen)
        await wait_for(pilot, lambda: screen.session.conversation_id == second)
        assert app.focused is screen.chat_log.messages()[0]  # the matching message is selected
        # Escape clears the search and the list shows conversations again.
        await pilot.press("ctrl+f", "escape")
        await wait_for(pilot, lambda: not sidebar(app).searching)
        assert option_ids(app) == [f"c{second}", f"c{first}"]


async def test_down_from_the_search_box_reaches_the_results_and_enter_opens(config: Path,
                                                                           store: HistoryStore) -> None:
    first, second = seed(store)
    app = create_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+f", *"tokeniz", "down")  # before the search has even run: it runs now
        assert app.focused is sidebar(app).option_list
        assert option_ids(app)[sidebar(app).option_list.highlighted or 0].startswith(f"m{second}:")
        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, ChatScreen)
        await wait_for(pilot, lambda: screen.session.conversation_id == second)
        assert app.focused is screen.chat_log.messages()[0]
        # With nothing typed, Down walks into the conversations (the open one is highlighted).
        await pilot.press("ctrl+f", "escape")
        await wait_for(pilot, lambda: not sidebar(app).searching)
        await pilot.press("ctrl+f", "down", "down", "enter")
        await wait_for(pilot, lambda: screen.session.conversation_id == first)


async def test_search_with_no_match_and_odd_characters(config: Path, store: HistoryStore) -> None:
    seed(store)
    app = create_app()
    async with app.run_test(size=SIZE) as pilot:
        sidebar(app).run_search('"unclosed AND ( NEAR *')
        await pilot.pause()
        assert sidebar(app).option_list.get_option_at_index(0).disabled
        assert "no matches" in str(sidebar(app).option_list.get_option_at_index(0).prompt)


def test_highlighted_snippet_styles_only_the_marked_words() -> None:
    content = highlighted(f"before {HIGHLIGHT_START}match{HIGHLIGHT_END} after\nnext line")
    assert content.plain == "before match after next line"  # one line per hit
    assert [content.plain[s.start:s.end] for s in content.spans] == ["match"]


async def test_rename_a_conversation(config: Path, store: HistoryStore) -> None:
    first, second = seed(store)
    app = create_app(conversation_id=first)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.screen.session.conversation_id == first)  # type: ignore[attr-defined]
        await pilot.press("f2")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "TextPromptScreen")
        field = app.screen.query_one("Input")
        assert field.value == "How do I reverse a list in Python?"  # type: ignore[attr-defined]
        field.value = "Reversing lists"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_for(pilot, lambda: store.get_conversation(first).title == "Reversing lists")
        await pilot.pause()
        prompt = sidebar(app).option_list.get_option(f"c{first}").prompt
        assert "Reversing lists" in str(prompt)


async def test_rename_and_delete_act_on_the_highlighted_sidebar_entry(config: Path, store: HistoryStore) -> None:
    first, second = seed(store)
    app = create_app(conversation_id=first)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.screen.session.conversation_id == first)  # type: ignore[attr-defined]
        sidebar(app).option_list.focus()
        sidebar(app).option_list.highlighted = option_ids(app).index(f"c{second}")
        await pilot.press("f8")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("n")  # declined: nothing happens
        await pilot.pause()
        assert [c.id for c in store.list_conversations()] == [second, first]
        sidebar(app).option_list.focus()
        await pilot.press("f8")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("y")
        await wait_for(pilot, lambda: [c.id for c in store.list_conversations()] == [first])
        assert store.search("tokenizer") == []  # gone from the index too
        assert app.screen.session.conversation_id == first  # type: ignore[attr-defined]  # the open one is untouched
        assert option_ids(app) == [f"c{first}"]


async def test_deleting_the_open_conversation_starts_a_new_one(config: Path, store: HistoryStore) -> None:
    first, _ = seed(store)
    app = create_app(conversation_id=first)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.session.conversation_id == first)  # type: ignore[attr-defined]
        await pilot.press("f8")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("y")
        await wait_for(pilot, lambda: screen.session.conversation_id is None)  # type: ignore[attr-defined]
        assert screen.chat_log.messages() == []  # type: ignore[attr-defined]
        assert first not in [c.id for c in store.list_conversations()]


@pytest.fixture
def documents(hermetic: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home with a documents folder, where exports are offered to go (never the real one)."""
    home = hermetic / "user-home"
    (home / "Documents").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    return home / "Documents"


@pytest.mark.parametrize(("keys", "suffix"), [(("enter",), ".md"), (("1",), ".md"), (("down", "enter"), ".json"),
                                              (("2",), ".json")])
async def test_export_offers_the_documents_folder_and_the_whole_title(config: Path, store: HistoryStore,
                                                                      documents: Path, keys: tuple[str, ...],
                                                                      suffix: str) -> None:
    first, _ = seed(store)
    app = create_app(conversation_id=first)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.screen.session.conversation_id == first)  # type: ignore[attr-defined]
        await pilot.press("f3")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ChoiceScreen")
        await pilot.press(*keys)  # Enter takes the highlighted (first) format without moving first
        await wait_for(pilot, lambda: type(app.screen).__name__ == "TextPromptScreen")
        default = Path(app.screen.query_one("Input").value)  # type: ignore[attr-defined]
        assert default == documents / f"How do I reverse a list in Python ({first}){suffix}"
        await pilot.press("enter")  # the default is fine
        await wait_for(pilot, default.exists)
    text = default.read_text(encoding="utf-8")
    if suffix == ".md":
        assert text.startswith("# How do I reverse a list in Python?")
        assert "## You\n\nHow do I reverse a list in Python?" in text
        assert "## fast · echo-fast\n\nUse `reversed(items)`" in text and "```python\nitems[::-1]\n```" in text
    else:
        document = json.loads(text)
        assert document["id"] == first and document["profile"] == "fast"
        assert [m["role"] for m in document["messages"]] == ["user", "assistant"]
        assert document["messages"][1]["model"] == "echo-fast" and document["messages"][1]["cost_usd"] == 0.25


async def test_export_without_a_documents_folder_goes_to_the_data_dir_or_where_asked(
        config: Path, store: HistoryStore, hermetic: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(hermetic / "no-documents"))
    first, _ = seed(store)
    app = create_app(conversation_id=first)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.screen.session.conversation_id == first)  # type: ignore[attr-defined]
        await pilot.press("f3", "enter")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "TextPromptScreen")
        field = app.screen.query_one("Input")
        assert Path(field.value).parent == hermetic / "data" / "exports"  # type: ignore[attr-defined]
        target = hermetic / "exports" / "out.md"
        field.value = str(target)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_for(pilot, target.exists)


async def test_export_asks_before_replacing_a_file(config: Path, store: HistoryStore, hermetic: Path) -> None:
    first, _ = seed(store)
    target = hermetic / "kept.md"
    target.write_text("mine", encoding="utf-8")
    app = create_app(conversation_id=first)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.session.conversation_id == first)  # type: ignore[attr-defined]
        screen.write_export(first, "markdown", str(target))  # type: ignore[attr-defined]
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("n")
        await pilot.pause()
        assert target.read_text(encoding="utf-8") == "mine"
        screen.write_export(first, "markdown", str(target))  # type: ignore[attr-defined]
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("y")
        await wait_for(pilot, lambda: target.read_text(encoding="utf-8").startswith("# How do I"))


async def test_export_to_an_unwritable_path_is_an_inline_error(config: Path, store: HistoryStore,
                                                              hermetic: Path) -> None:
    first, _ = seed(store)
    blocker = hermetic / "a-file"
    blocker.write_text("x")
    app = create_app(conversation_id=first)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.screen.session.conversation_id == first)  # type: ignore[attr-defined]
        app.screen.write_export(first, "markdown", str(blocker / "sub" / "out.md"))  # type: ignore[attr-defined]
        await pilot.pause()
        assert any("cannot write" in n.message and "hint:" in n.message for n in app._notifications)


async def test_conversations_held_with_the_cli_appear_in_the_tui(config: Path, hermetic: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "llmswitch", "chat", "--profile", "fast", "a question from the shell"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    app = create_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert option_ids(app) == ["one-shots"]  # a one-shot: in the group, not in the list itself
        sidebar(app).show_one_shots(True)
        await pilot.pause()
        ids = option_ids(app)
        assert len(ids) == 2 and ids[0] == "back"
        prompt = str(sidebar(app).option_list.get_option_at_index(1).prompt)
        assert "a question from the shell" in prompt and "fast" in prompt


def add_one_shots(store: HistoryStore, count: int) -> list[int]:
    ids = []
    for number in range(count):
        one_shot = store.create_conversation(profile="fast", one_shot=True)
        store.add_message(one_shot, "user", f"one-shot question {number}", profile="fast")
        store.add_message(one_shot, "assistant", f"one-shot answer {number}", profile="fast", model="echo-fast")
        ids.append(one_shot)
    return ids


async def test_one_shot_answers_are_grouped_at_the_end_of_the_sidebar(config: Path, store: HistoryStore) -> None:
    first, second = seed(store)
    one_shots = add_one_shots(store, 3)  # the newest, but they do not bury the conversations
    app = create_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert option_ids(app) == [f"c{second}", f"c{first}", "one-shots"]
        assert "3 one-shot answers" in str(sidebar(app).option_list.get_option("one-shots").prompt)
        # Enter on the group lists them; Esc comes back.
        sidebar(app).option_list.focus()
        sidebar(app).option_list.highlighted = 2
        await pilot.press("enter")
        await wait_for(pilot, lambda: sidebar(app).showing_one_shots)
        assert option_ids(app) == ["back", *(f"c{i}" for i in reversed(one_shots))]
        assert "One-shot answers (3)" in str(sidebar(app).option_list.border_title)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not sidebar(app).showing_one_shots)
        assert option_ids(app)[-1] == "one-shots"
        # Search finds one-shots too; opening one and continuing it makes it a conversation.
        sidebar(app).show_one_shots(True)
        sidebar(app).option_list.focus()
        sidebar(app).option_list.highlighted = 1
        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, ChatScreen)
        await wait_for(pilot, lambda: screen.session.conversation_id == one_shots[-1])
        screen.query_one(PromptInput).load_text("a follow-up")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.current is None and not screen.views)
        assert not store.get_conversation(one_shots[-1]).one_shot
        # The list follows it to the conversations.
        await wait_for(pilot, lambda: not sidebar(app).showing_one_shots)
        assert option_ids(app) == [f"c{one_shots[-1]}", f"c{second}", f"c{first}", "one-shots"]
        assert "2 one-shot answers" in str(sidebar(app).option_list.get_option("one-shots").prompt)


@pytest.mark.parametrize("how", ["--no-history", "history = false"])
async def test_nothing_is_saved_with_no_history_or_a_private_profile_and_the_status_says_so(
        config: Path, store: HistoryStore, how: str) -> None:
    first, _ = seed(store)
    if how == "history = false":
        config.write_text(config.read_text() + '\n[profiles.private]\nbackend = "echo"\nhistory = false\n')
        app = create_app(profile="private")
    else:
        app = create_app(profile="fast", record=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, ChatScreen)
        await pilot.pause()
        assert "not saved" in str(screen.query_one("#status").render())
        screen.query_one(PromptInput).load_text("keep this to yourself")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.current is None and not screen.views)
        assert len(screen.chat_log.messages()) == 2
        # Stored conversations can still be read, and continuing one adds nothing to it (with the private
        # profile: once switched to it, as a conversation's own profile answers it when opened).
        await screen.open_conversation(first)
        if how == "history = false":
            assert "not saved" not in str(screen.query_one("#status").render())
            screen.switch_profile("private")
        assert "not saved" in str(screen.query_one("#status").render())
        screen.query_one(PromptInput).load_text("and this")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.current is None and not screen.views)
        # Regenerating the unsaved answer leaves the stored exchange before it alone.
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: screen.current is None and not screen.views)
        assert [v.text for v in screen.chat_log.messages()][-2:] == ["and this", "and this"]
    assert store.search("yourself") == [] and store.search("this") == []
    assert len(store.messages(first)) == 2 and store.count_conversations() == 2


async def test_the_status_line_says_nothing_about_saving_when_answers_are_saved(config: Path,
                                                                               store: HistoryStore) -> None:
    app = create_app(profile="fast")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "not saved" not in str(app.screen.query_one("#status").render())
