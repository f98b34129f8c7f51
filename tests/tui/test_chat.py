"""The chat screen driven as a person would, with Pilot: the echo backend through its entry point, and a
backend that fails."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import palette_offers, wait_for

from llmswitch.store import HistoryStore, MessageRecord
from llmswitch.tui.app import create_app
from llmswitch.tui.screens.chat import ChatScreen
from llmswitch.tui.widgets.message import AssistantMessage, UserMessage
from llmswitch.tui.widgets.prompt_input import PromptInput
from llmswitch.tui.widgets.status import StatusLine

pytestmark = pytest.mark.anyio
SIZE = (120, 40)


def chat(app) -> ChatScreen:  # type: ignore[no-untyped-def]
    screen = app.screen
    assert isinstance(screen, ChatScreen), screen
    return screen


def stored(app) -> list[MessageRecord]:  # type: ignore[no-untyped-def]
    """The open conversation's messages as the history holds them."""
    conversation_id = chat(app).session.conversation_id
    assert app.store is not None and conversation_id is not None
    return app.store.messages(conversation_id)  # type: ignore[no-any-return]


def status_text(app) -> str:  # type: ignore[no-untyped-def]
    return str(app.screen.query_one(StatusLine).render())


async def send(pilot, text: str) -> None:  # type: ignore[no-untyped-def]
    app = pilot.app
    app.screen.query_one(PromptInput).load_text(text)
    await pilot.press("enter")
    await wait_for(pilot, lambda: chat(app).current is None and not chat(app).views)


async def test_enter_sends_and_the_answer_streams_in_as_markdown(config: Path) -> None:
    app = create_app(profile="fast")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"hello")
        await pilot.press("ctrl+j")
        await pilot.press(*"**world**")
        assert app.screen.query_one(PromptInput).text == "hello\n**world**"
        await pilot.press("enter")
        await wait_for(pilot, lambda: chat(app).current is None)
        await wait_for(pilot, lambda: not chat(app).views)
        user, answer = chat(app).chat_log.messages()
        assert isinstance(user, UserMessage) and user.text == "hello\n**world**"
        assert isinstance(answer, AssistantMessage) and answer.text == "hello\n**world**"
        # Rendered as Markdown: the bold is a styled span, not literal asterisks.
        rendered = str(answer.markdown.query("MarkdownParagraph").last().render())
        assert "world" in rendered and "**" not in rendered
        assert str(answer.query_one(".header").render()) == "fast · echo-fast"
        assert app.screen.query_one(PromptInput).text == ""
        status = status_text(app)
        assert "fast" in status and "echo-fast" in status and "in 2 out 2" in status and "$0" in status


async def test_code_blocks_are_highlighted_fences(config: Path) -> None:
    app = create_app(profile="fast")
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "Look:\n\n```python\ndef f(x):\n    return x + 1\n```\n")
        answer = chat(app).chat_log.last_assistant()
        assert answer is not None
        fence = answer.markdown.query_one("MarkdownFence")
        assert fence.lexer == "python"  # type: ignore[attr-defined]
        spans = fence._highlighted_code.spans  # type: ignore[attr-defined]
        assert spans, "the code should carry syntax-highlighting styles"


async def test_stream_uses_markdown_stream_and_keeps_earlier_blocks(config: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Only the last block is re-rendered: blocks before it keep their widget identity while text arrives."""
    # About 5 s of streaming: a loaded machine still sees the answer mid-stream (five paragraphs, so no block is
    # frozen yet: the first block's widget must be the same one at the end).
    config.write_text(config.read_text() + '\n[profiles.slower]\nbackend = "echo"\ndelay = 0.1\nchunk_size = 4\n')
    app = create_app(profile="slower")
    paragraphs = "\n\n".join(f"paragraph {i} " + "word " * 6 for i in range(5))
    async with app.run_test(size=SIZE) as pilot:
        app.screen.query_one(PromptInput).load_text(paragraphs)
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(chat(app).chat_log.last_assistant().markdown.children) >= 2)  # type: ignore[union-attr]
        answer = chat(app).chat_log.last_assistant()
        assert answer is not None and answer.streaming and answer._stream is not None
        first_block = answer.markdown.children[0]
        header = answer.query_one(".header")
        streaming_color = header.styles.color  # the accent while the answer streams
        await wait_for(pilot, lambda: chat(app).current is None and not chat(app).views)
        assert answer.markdown.children[0] is first_block
        assert answer.text == paragraphs
        assert header.styles.color != streaming_color


async def test_auto_scroll_follows_only_while_at_the_bottom(config: Path) -> None:
    """Each step waits for the state it needs (no fixed pause, which a busy machine outlasts): the view is at
    the bottom while the answer grows, and stays where the reader scrolled while the answer grows further."""
    app = create_app(profile="slow")
    long_text = "\n\n".join(f"line {i}" for i in range(90))  # streams for seconds: time to scroll up mid-answer
    async with app.run_test(size=SIZE) as pilot:
        log = chat(app).chat_log
        app.screen.query_one(PromptInput).load_text(long_text)
        await pilot.press("enter")
        await wait_for(pilot, lambda: log.max_scroll_y > 10)
        following = log.max_scroll_y
        await wait_for(pilot, lambda: log.max_scroll_y > following
                       and log.scroll_y == pytest.approx(log.max_scroll_y, abs=2))  # it grew, and the view followed
        assert chat(app).current is not None, "the answer must still be streaming for the rest to mean anything"
        log.scroll_to(y=0, animate=False)  # the reader scrolls up to read
        await wait_for(pilot, lambda: log.scroll_y == 0)
        scrolled_up_at = log.max_scroll_y
        await wait_for(pilot, lambda: log.max_scroll_y >= scrolled_up_at + 5)  # more text arrived since
        assert log.scroll_y == 0, "must not jump back down while the reader is scrolled up"
        await wait_for(pilot, lambda: chat(app).current is None and not chat(app).views)
        assert log.scroll_y == 0


async def test_escape_cancels_and_keeps_the_partial_text(config: Path) -> None:
    app = create_app(profile="slow")
    text = " ".join(f"w{i}" for i in range(300))
    async with app.run_test(size=SIZE) as pilot:
        app.screen.query_one(PromptInput).load_text(text)
        await pilot.press("enter")
        answer = chat(app).chat_log.last_assistant()
        await wait_for(pilot, lambda: len(answer.text) > 20)  # type: ignore[union-attr]
        await pilot.press("escape")
        await wait_for(pilot, lambda: not chat(app).views)
        assert answer is not None
        kept = answer.text
        assert 0 < len(kept) < len(text) and text.startswith(kept)
        assert "cancelled" in str(answer.query_one(".meta").render())
        # The partial answer is stored, marked as interrupted, and is part of the conversation.
        messages = stored(app)
        assert [m.role for m in messages] == ["user", "assistant"]
        assert messages[1].content == kept and messages[1].finish_reason == "interrupted"
        assert chat(app).session.conversation.messages[-1].content == kept


async def test_regenerate_replaces_the_last_answer(config: Path) -> None:
    app = create_app(profile="fast")
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "first")
        await send(pilot, "second")
        session = chat(app).session
        first_ids = [m.id for m in stored(app)]
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: chat(app).current is None and not chat(app).views)
        texts = [m.text for m in chat(app).chat_log.messages()]
        assert texts == ["first", "first", "second", "second"]
        messages = stored(app)
        assert [m.content for m in messages] == ["first", "first", "second", "second"]
        assert messages[2].id not in first_ids  # the last exchange was asked again, not kept
        assert [m.content for m in session.conversation.messages] == ["first", "first", "second", "second"]


async def test_edit_and_resend_the_last_prompt(config: Path) -> None:
    app = create_app(profile="fast")
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "first")
        await send(pilot, "secnod")
        await pilot.press("ctrl+l")
        prompt = app.screen.query_one(PromptInput)
        assert prompt.text == "secnod" and chat(app).editing
        prompt.load_text("second")
        await pilot.press("enter")
        await wait_for(pilot, lambda: chat(app).current is None and not chat(app).views)
        assert [m.text for m in chat(app).chat_log.messages()] == ["first", "first", "second", "second"]
        assert [m.content for m in stored(app)] == ["first", "first", "second", "second"]


async def test_escape_while_editing_leaves_the_conversation_alone(config: Path) -> None:
    app = create_app(profile="fast")
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "keep me")
        await pilot.press("ctrl+l", "escape")
        assert not chat(app).editing and app.screen.query_one(PromptInput).text == ""
        assert [m.text for m in chat(app).chat_log.messages()] == ["keep me", "keep me"]


async def test_prompt_history_with_up_and_down(config: Path, store: HistoryStore) -> None:
    conversation = store.create_conversation("old")
    store.add_message(conversation, "user", "from an earlier session")
    app = create_app(profile="fast")
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "one")
        await send(pilot, "two")
        prompt = app.screen.query_one(PromptInput)
        await pilot.press(*"draft")
        await pilot.press("up")
        assert prompt.text == "two"
        await pilot.press("up", "up")
        assert prompt.text == "from an earlier session"
        await pilot.press("down", "down", "down")
        assert prompt.text == "draft"


async def test_copy_message_and_code_block(config: Path) -> None:
    app = create_app(profile="fast")
    text = "Two blocks:\n\n```python\nprint(1)\n```\n\nand\n\n```sh\necho hi\n```\n"
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, text)
        await pilot.press("ctrl+t")
        assert app.clipboard == text
        await pilot.press("ctrl+b")
        await pilot.pause()
        assert type(app.screen).__name__ == "ChoiceScreen"
        await pilot.press("2")
        await pilot.pause()
        assert app.clipboard == "echo hi\n"
        await pilot.press("ctrl+b")
        await pilot.press("down", "up", "enter")  # pick the first with the cursor
        await pilot.pause()
        assert app.clipboard == "print(1)\n"


async def test_copy_acts_on_the_selected_message(config: Path) -> None:
    app = create_app(profile="fast")
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "first ```x``` \n\n```\nblock one\n```")
        await send(pilot, "second")
        await pilot.press("ctrl+up", "ctrl+up", "ctrl+up")  # second answer, second prompt, first answer
        focused = app.focused
        assert isinstance(focused, AssistantMessage) and focused.text.startswith("first")
        await pilot.press("ctrl+t")
        assert app.clipboard.startswith("first")
        await pilot.press("ctrl+b")
        assert app.clipboard == "block one\n"


async def test_copy_with_nothing_to_copy_says_so(config: Path) -> None:
    app = create_app(profile="fast")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+b")
        await pilot.pause()
        assert any("no code block" in n.message for n in app._notifications)
        await send(pilot, "no code here")
        await pilot.press("ctrl+b")
        await pilot.pause()
        assert app.clipboard == ""


async def test_switch_profile_mid_conversation_keeps_history(config: Path) -> None:
    app = create_app(profile="fast")
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "asked fast")
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ProfilePickerScreen")
        picker = app.screen
        options = picker.query_one("OptionList")
        await wait_for(pilot, lambda: "slow" in picker.health)  # type: ignore[attr-defined]
        options.highlighted = options.get_option_index("slow")  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ChatScreen))
        assert "slow" in status_text(app)
        await send(pilot, "asked slow")
        session = chat(app).session
        assert [m.content for m in session.conversation.messages] == ["asked fast"] * 2 + ["asked slow"] * 2
        assert [(m.role, m.profile, m.model) for m in stored(app)] == [
            ("user", "fast", "echo-fast"), ("assistant", "fast", "echo-fast"),
            ("user", "slow", "echo"), ("assistant", "slow", "echo"),
        ]
        headers = [str(view.query_one(".header").render()) for view in chat(app).chat_log.query(AssistantMessage)]
        assert headers == ["fast · echo-fast", "slow · echo"]


async def test_picker_shows_health_and_disables_what_cannot_work(config: Path) -> None:
    from failing_backend import BrokenPlugin

    from llmswitch import plugins

    plugins.register_plugin(BrokenPlugin(), "brokenplugin")
    try:
        app = create_app(profile="fast")
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("ctrl+o")
            await wait_for(pilot, lambda: type(app.screen).__name__ == "ProfilePickerScreen")
            picker = app.screen
            await wait_for(pilot, lambda: {"fast", "down"} <= set(picker.health))  # type: ignore[attr-defined]
            options = picker.query_one("OptionList")
            ghost = options.get_option("ghost")  # type: ignore[attr-defined]
            assert ghost.disabled and "unavailable" in str(ghost.prompt)
            broken = options.get_option("plugin:brokenplugin")  # type: ignore[attr-defined]
            assert broken.disabled and "this plugin is broken" in str(broken.prompt)
            assert "ok" in str(options.get_option("fast").prompt)  # type: ignore[attr-defined]
            assert "down" in str(options.get_option("down").prompt)  # type: ignore[attr-defined]
            options.highlighted = options.get_option_index("down")  # type: ignore[attr-defined]
            await pilot.pause()
            detail = str(picker.query_one("#detail").render())
            assert "hint: start the server" in detail
            await pilot.press("escape")
            assert isinstance(app.screen, ChatScreen)
    finally:
        plugins.unregister_plugin("brokenplugin")


async def test_command_palette_switches_profile(config: Path) -> None:
    app = create_app(profile="fast")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.press(*"Profile: slow")
        await wait_for(pilot, lambda: palette_offers(app, "Profile: slow"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: chat(app).session.resolved.name == "slow")
        assert "slow" in status_text(app)


ROUTE = """
[profiles.reliable]
route = "fallback"
members = ["down", "fast"]
"""


async def test_a_route_is_picked_like_a_profile_and_answers_through_its_members(config: Path) -> None:
    config.write_text(config.read_text(encoding="utf-8") + ROUTE, encoding="utf-8")
    app = create_app(profile="slow")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ProfilePickerScreen")
        picker = app.screen
        await wait_for(pilot, lambda: "reliable" in picker.health)  # type: ignore[attr-defined]
        options = picker.query_one("OptionList")
        row = str(options.get_option("reliable").prompt)  # type: ignore[attr-defined]
        assert "fallback · down, fast" in row  # its kind and its members, where a profile shows backend and model
        assert "● ok" in row  # a fallback is healthy when one member is: fast is, down is not
        options.highlighted = options.get_option_index("reliable")  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ChatScreen)
                       and chat(app).session.resolved.name == "reliable")
        await send(pilot, "through the route")
        answer = chat(app).chat_log.last_assistant()
        assert answer is not None and answer.text == "through the route"  # down refused, fast (echo) answered
        assert "fast" in str(answer.query_one(".header").render())
        await pilot.press("ctrl+p")  # away through the command palette, and back to the route the same way
        await pilot.press(*"Profile: slow")
        await wait_for(pilot, lambda: palette_offers(app, "Profile: slow"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ChatScreen) and chat(app).session.resolved.name == "slow")
        await pilot.press("ctrl+p")
        await pilot.press(*"Profile: reliable")
        await wait_for(pilot, lambda: palette_offers(app, "Profile: reliable"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ChatScreen)
                       and chat(app).session.resolved.name == "reliable")
        await send(pilot, "and again")
        assert chat(app).chat_log.last_assistant().text == "and again"  # type: ignore[union-attr]


async def test_system_prompt_and_options_editor(config: Path) -> None:
    app = create_app(profile="fast")
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "one two three four")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "SettingsScreen")
        settings = app.screen
        settings.query_one("#system").load_text("Be brief.")  # type: ignore[attr-defined]
        settings.query_one("#opt-max_tokens").value = "lots"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        error = settings.query_one("#settings-error")
        assert error.display and "max_tokens" in str(error.render())  # inline error, the dialog stays
        settings.query_one("#opt-max_tokens").value = "3"  # type: ignore[attr-defined]
        settings.query_one("#opt-stop").value = "mma"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ChatScreen))
        session = chat(app).session
        assert session.system == "Be brief." and session.settings == {"max_tokens": 3, "stop": ["mma"]}
        await send(pilot, "alpha beta gamma")
        assert chat(app).chat_log.last_assistant().text == "alpha beta ga"  # type: ignore[union-attr]  # echo honours max_tokens and stop
        assert app.store is not None and session.conversation_id is not None
        record = app.store.get_conversation(session.conversation_id)
        assert record.system == "Be brief." and record.settings == {"max_tokens": 3, "stop": ["mma"]}
        # Options survive a profile switch (they are the conversation's, not the profile's).
        chat(app).switch_profile("slow")
        assert session.settings == {"max_tokens": 3, "stop": ["mma"]}


async def test_new_conversation_starts_empty(config: Path) -> None:
    app = create_app(profile="fast")
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "old")
        first = chat(app).session.conversation_id
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert chat(app).chat_log.messages() == [] and chat(app).session.conversation.messages == []
        await send(pilot, "new")
        assert chat(app).session.conversation_id not in (None, first)


async def test_sending_while_an_answer_streams_is_refused(config: Path) -> None:
    app = create_app(profile="slow")
    async with app.run_test(size=SIZE) as pilot:
        app.screen.query_one(PromptInput).load_text("x " * 200)
        await pilot.press("enter")
        await pilot.pause(0.1)
        app.screen.query_one(PromptInput).load_text("too soon")
        await pilot.press("enter")
        await pilot.pause()
        assert any("still coming" in n.message for n in app._notifications)
        assert app.screen.query_one(PromptInput).text == "too soon"  # not lost
        await pilot.press("escape")
        await wait_for(pilot, lambda: not chat(app).views)


# ---- failures ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "expected", "kept"),
    [
        ("down", "cannot connect to 127.0.0.1:9", ""),
        ("cut", "cut off in the middle", "The first half of the answer"),
        ("buggy", "unexpected error in stream", "The first half of the answer"),
        ("ghost", "no installed plugin provides the backend 'not-installed'", ""),
    ],
)
async def test_a_failing_backend_shows_an_inline_error_with_remedy(config: Path, profile: str, expected: str,
                                                                   kept: str) -> None:
    app = create_app()
    async with app.run_test(size=SIZE) as pilot:
        chat(app).session.conversation.profile_name = profile  # as if it were the default profile
        chat(app).session.conversation._resolved = None
        await send(pilot, "hello?")
        answer = chat(app).chat_log.last_assistant()
        assert answer is not None and answer.has_class("failed")
        error = str(answer.query_one(".error").render())
        assert expected in error and "hint:" in error
        assert answer.text == kept
        # The app is still alive and usable.
        chat(app).switch_profile("fast")
        await send(pilot, "still here")
        assert chat(app).chat_log.last_assistant().text == "still here"  # type: ignore[union-attr]


async def test_failed_answers_are_stored_with_their_error(config: Path) -> None:
    app = create_app(profile="cut")
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "hello?")
        messages = stored(app)
        assert messages[1].finish_reason == "error" and "cut off" in (messages[1].error or "")
        assert messages[1].content == "The first half of the answer"


async def test_history_that_cannot_be_opened_leaves_the_app_usable(config: Path, hermetic: Path) -> None:
    (hermetic / "data" / "history.db").mkdir()  # a directory where the file should be
    app = create_app(profile="fast")
    assert app.store is None
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert any("history is off" in n.message for n in app._notifications)
        await send(pilot, "works without history")
        assert chat(app).chat_log.last_assistant().text == "works without history"  # type: ignore[union-attr]
        await pilot.press("f2")
        await pilot.pause()
        assert any("nothing to rename" in n.message for n in app._notifications)


async def test_a_long_streamed_answer_keeps_few_live_blocks(config: Path) -> None:
    """Past LIVE_BLOCKS blocks, finished blocks are frozen into single widgets; the text is unchanged."""
    from llmswitch.tui.widgets.frozen_markdown import FrozenMarkdown

    text = "\n\n".join(f"## Part {i}\n\nSome *text* for part {i}.\n\n```python\nprint({i})\n```" for i in range(40))
    app = create_app(profile="fast")
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, text)
        answer = chat(app).chat_log.last_assistant()
        assert answer is not None and answer.text == text
        frozen = list(answer.query(FrozenMarkdown))
        assert frozen and len(answer.markdown.children) <= AssistantMessage.LIVE_BLOCKS
        assert "Part 0" in str(frozen[0].render()) and "print(0)" in str(frozen[0].render())
        await pilot.press("ctrl+b")  # code blocks in frozen parts can still be copied
        await pilot.press("1")
        assert app.clipboard == "print(0)\n"
        # Reopened from the history, it is split the same way.
        await chat(app).open_conversation(chat(app).session.conversation_id)  # type: ignore[arg-type]
        reopened = chat(app).chat_log.last_assistant()
        assert reopened is not answer and reopened is not None and reopened.text == text
        assert reopened.query(FrozenMarkdown)


async def test_frozen_parts_are_measured_before_they_are_drawn_and_drawn_once_seen(config: Path) -> None:
    """Parts of a long answer scrolled past are not styled or highlighted until they come into view, and the
    height they were given unseen is the height of what they draw."""
    from llmswitch.tui.widgets.frozen_markdown import FrozenMarkdown, parser, render_tokens

    text = "\n\n".join(f"## Part {i}\n\n{'Some words to wrap. ' * 12}\n\n```python\nprint({i})\n```"
                       for i in range(60))
    app = create_app(profile="fast")
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, text)
        frozen = list(chat(app).chat_log.last_assistant().query(FrozenMarkdown))  # type: ignore[union-attr]
        assert len(frozen) > 2 and not frozen[0].drawn
        height = frozen[0].content_size.height
        for _ in range(100):  # page up, as a reader would, to the top
            if chat(app).chat_log.scroll_y == 0:
                break
            await pilot.press("shift+pageup")
        await wait_for(pilot, lambda: frozen[0].drawn)
        drawn = frozen[0].render()
        unhighlighted = render_tokens(parser().parse(frozen[0].source), highlighted=False)
        assert "Part 0" in drawn.plain and drawn.plain == unhighlighted.plain
        assert len(drawn.spans) > len(unhighlighted.spans)  # the code is highlighted now
        assert drawn.get_height(frozen[0].styles, frozen[0].content_size.width) == height
        assert frozen[0].content_size.height == height


async def test_the_answer_keeps_its_width_when_the_chat_starts_to_scroll(config: Path) -> None:
    """The scrollbar has its column from the start: a stream that outgrows the screen is not re-wrapped."""
    app = create_app(profile="fast")
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "short")
        log = chat(app).chat_log
        width = log.scrollable_content_region.width
        assert log.max_scroll_y == 0
        await send(pilot, "\n\n".join(f"line {i}" for i in range(80)))
        assert log.max_scroll_y > 0 and log.scrollable_content_region.width == width


async def test_start_up_objects_are_left_out_of_the_cycle_collector_while_the_app_runs(config: Path) -> None:
    """Frozen once the first screen is up (a full pass over them mid-answer took ~60 ms); collectable again
    once the app has ended, so an app run in-process does not pin its objects."""
    import gc

    app = create_app(profile="fast")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


async def test_an_app_that_has_ended_is_not_kept_frozen_by_the_next_one(config: Path) -> None:
    """The next app collects the garbage before it freezes: an earlier app (a test's) is not pinned for good."""
    import weakref

    async def run_once() -> weakref.ref[object]:
        app = create_app(profile="fast")
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            return weakref.ref(app.screen)

    first = await run_once()
    app = create_app(profile="fast")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert first() is None


async def test_freezing_while_a_slow_stream_runs_keeps_every_character(config: Path) -> None:
    text = "\n\n".join(f"Paragraph number {i} of the answer." for i in range(60))
    config.write_text(config.read_text() + '\n[profiles.medium]\nbackend = "echo"\ndelay = 0.001\nchunk_size = 16\n')
    app = create_app(profile="medium")
    async with app.run_test(size=SIZE) as pilot:
        app.screen.query_one(PromptInput).load_text(text)
        await pilot.press("enter")
        await wait_for(pilot, lambda: chat(app).current is None and not chat(app).views)
        answer = chat(app).chat_log.last_assistant()
        assert answer is not None and answer.text == text
        assert answer.query("FrozenMarkdown")


async def test_a_freeze_inside_an_open_code_fence_does_not_swallow_what_follows(config: Path) -> None:
    """The live tail can end inside a fence whose closing line has not arrived yet."""
    from textual.widgets import Markdown

    from llmswitch.tui.widgets.message import AssistantMessage as Answer

    head = "\n\n".join(f"Paragraph {i}." for i in range(Answer.LIVE_BLOCKS + 5))
    app = create_app(profile="fast")
    async with app.run_test(size=SIZE) as pilot:
        view = await chat(app).chat_log.add_assistant("test")
        view.begin_stream()
        await view.write(head + "\n\n```python\ndef f():\n" + "x" * Answer.CHECK_EVERY_CHARS)  # freezes here
        assert view.query("FrozenMarkdown")
        await view.write("\n    return 1\n```\n\nAfter the code, **plain** text.\n")
        await view.end_stream(view.text)
        await pilot.pause()
        blocks = view.query_one(Markdown).children
        assert type(blocks[-1]).__name__ == "MarkdownParagraph"
        assert "After the code" in str(blocks[-1].render()) and "**" not in str(blocks[-1].render())
        assert type(blocks[-2]).__name__ == "MarkdownFence"


async def test_keyboard_scrolling_pauses_and_resumes_following(config: Path) -> None:
    app = create_app(profile="fast")
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "\n\n".join(f"line {i}" for i in range(80)))
        log = chat(app).chat_log
        bottom = log.max_scroll_y
        assert bottom > 0 and log.scroll_y == bottom
        await pilot.press("shift+pageup")
        await pilot.pause()
        assert log.scroll_y < bottom
        await pilot.press("shift+pagedown", "shift+pagedown", "shift+pagedown")
        await pilot.pause()
        assert log.scroll_y == log.max_scroll_y


async def test_regenerate_after_a_prompt_that_was_never_sent_retries_it(config: Path) -> None:
    """A failure before sending (here: an unknown backend) keeps the earlier exchange intact."""
    app = create_app(profile="fast")
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "kept exchange")
        # "ghost" cannot be picked (its backend is missing); it fails like a default profile that broke.
        chat(app).session.conversation.profile_name = "ghost"
        chat(app).session.conversation._resolved = None
        await send(pilot, "never sent")
        prompts = list(chat(app).chat_log.query(UserMessage))
        assert not prompts[-1].sent and prompts[-1].has_class("unsent")
        assert [m.content for m in chat(app).session.conversation.messages] == ["kept exchange"] * 2
        chat(app).switch_profile("fast")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: chat(app).current is None and not chat(app).views)
        assert [m.text for m in chat(app).chat_log.messages()] == ["kept exchange"] * 2 + ["never sent"] * 2
        assert [m.content for m in stored(app)] == ["kept exchange"] * 2 + ["never sent"] * 2


async def test_the_status_line_says_when_an_answer_came_from_the_response_cache(config: Path) -> None:
    config.write_text(config.read_text(encoding="utf-8") + '\n[profiles.cached]\nbackend = "echo"\ncache = true\n',
                      encoding="utf-8")
    app = create_app(profile="cached")
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "hello cache")
        assert "$0" in status_text(app) and "(cached)" not in status_text(app)
        await app.screen.run_action("new_conversation")
        await send(pilot, "hello cache")
        assert "$0 (cached)" in status_text(app)
        await send(pilot, "something new")  # the conversation so far plus this: asked, not cached
        assert "(cached)" not in status_text(app)
