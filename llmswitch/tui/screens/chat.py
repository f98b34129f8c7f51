"""The main screen: conversations on the left, the chat on the right, the prompt box and status below."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer

from llmswitch import errors
from llmswitch.conversation import Turn
from llmswitch.errors import LLMSwitchError
from llmswitch.store import HistoryStore, MessageRecord
from llmswitch.terminal import neutralize
from llmswitch.tui import keys
from llmswitch.tui.session import ChatSession
from llmswitch.tui.streaming import Later, TurnRun, arun_turn, later_on, run_turn
from llmswitch.tui.widgets.chat_log import ChatLog
from llmswitch.tui.widgets.message import AssistantMessage, MessageView, UserMessage
from llmswitch.tui.widgets.prompt_input import PromptInput
from llmswitch.tui.widgets.sidebar import Sidebar
from llmswitch.tui.widgets.status import StatusLine, format_tokens, format_usd

Action = TypeVar("Action", bound=Callable[..., Any])
QUIT_GRACE_S = 1.0  # how long quitting waits for a cancelled answer's worker to record it


def describe(error: BaseException) -> str:
    """An error as the screen shows it (see :func:`llmswitch.errors.describe`), neutralized: a message can
    quote a server's error body."""
    return neutralize(errors.describe(error))


async def run_reported(screen: Screen[Any], call: Callable[[], Any]) -> Any:
    """Run ``call`` (awaiting it if it is a coroutine); any failure becomes a notification on ``screen``
    instead of ending the app (a damaged history, a plugin bug...)."""
    try:
        result = call()
        if isinstance(result, Awaitable):
            result = await result
        return result
    except Exception as error:  # noqa: BLE001 - the app must survive every failure
        import os

        if os.environ.get("LLMSWITCH_DEBUG"):
            raise
        screen.notify(describe(error), severity="error", timeout=10)
        return None


def guarded(action: Action) -> Action:
    """Run an action; any failure becomes a notification instead of ending the app."""

    @functools.wraps(action)
    async def wrapper(self: ChatScreen, *args: Any, **kwargs: Any) -> Any:
        return await run_reported(self, lambda: action(self, *args, **kwargs))

    return wrapper  # type: ignore[return-value]


def reported(screen: Screen[Any], callback: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """A dialog's result callback, guarded like an action (a dialog's answer can reach the history)."""

    async def wrapper(*args: Any) -> Any:
        return await run_reported(screen, lambda: callback(*args))

    return wrapper


class AnswerText(Message):
    """A batch of answer text from the worker thread."""

    def __init__(self, run: TurnRun, text: str) -> None:
        super().__init__()
        self.run, self.text = run, text


class AnswerDone(Message):
    """The worker has finished (normally, failed, or cancelled) and the turn is recorded."""

    def __init__(self, run: TurnRun) -> None:
        super().__init__()
        self.run = run


def answer_meta(input_tokens: int | None, output_tokens: int | None, latency_s: float | None,
                cost_usd: float | None, finish_reason: str | None) -> str:
    parts = []
    if input_tokens is not None or output_tokens is not None:
        parts.append(f"in {format_tokens(input_tokens)} · out {format_tokens(output_tokens)} tokens")
    if latency_s is not None and finish_reason != "error":  # how long a failure took is noise
        parts.append(f"{latency_s:.2f}s")
    if cost_usd is not None:
        parts.append(format_usd(cost_usd))
    if finish_reason == "interrupted":
        parts.append("cancelled: the partial answer is kept")
    elif finish_reason == "length":
        parts.append("stopped at max_tokens")
    return " · ".join(parts)


class ChatScreen(Screen[None]):
    BINDINGS = keys.bindings("chat")

    def __init__(self, session: ChatSession, store: HistoryStore | None, *, history: list[str],
                 open_on_start: int | None = None, keep_profile_on_start: bool = False) -> None:
        super().__init__()
        self.open_on_start = open_on_start
        self.keep_profile_on_start = keep_profile_on_start  # `tui -p NAME -c`: NAME answers, not the stored one
        self.session = session
        self.store = store
        self.prompt_history = history
        self.current: TurnRun | None = None  # the answer being streamed, if any
        self.previous: TurnRun | None = None  # the last run, possibly still stopping after a cancel
        self.views: dict[int, AssistantMessage] = {}  # id(run) -> where its text goes
        self.user_views: dict[int, UserMessage] = {}  # id(run) -> its prompt on screen
        self.editing = False  # the prompt box holds the last prompt, to resend in its place

    def compose(self) -> ComposeResult:
        with Horizontal(id="body"):
            yield Sidebar(self.store, id="sidebar")
            with Vertical(id="main"):
                yield ChatLog(id="chat-log")
                yield PromptInput(self.prompt_history, id="prompt")
                yield StatusLine(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.prompt.focus()
        self.update_status()
        if self.open_on_start is not None:
            self.call_after_refresh(self._open_on_start, self.open_on_start)

    # ---- parts ------------------------------------------------------------------------------------------

    @property
    def prompt(self) -> PromptInput:
        return self.query_one(PromptInput)

    @property
    def chat_log(self) -> ChatLog:
        return self.query_one(ChatLog)

    @property
    def sidebar(self) -> Sidebar:
        return self.query_one(Sidebar)

    @property
    def streaming(self) -> bool:
        return self.current is not None and not self.current.cancelled

    def update_status(self, state: str = "") -> None:
        session = self.session
        try:
            resolved = session.resolved
            profile, backend, model = resolved.name, resolved.target.backend, resolved.target.model
        except LLMSwitchError:
            profile = session.conversation.profile_name or session.client.store.default_name
            backend, model, state = "?", "?", state or "profile unavailable: Ctrl+O picks another"
        if not state and self.editing:
            state = "editing the last prompt"
        self.query_one(StatusLine).show(
            profile=profile, backend=backend, model=model, last=session.last,
            total_cost_usd=session.total_cost_usd, unknown_cost=session.unknown_cost, state=state,
            conversation_id=session.conversation_id, saved=session.saves_history,
        )

    def refuse_while_streaming(self) -> bool:
        """A new prompt waits for nothing but a running answer (a cancelled one is let finish first)."""
        if self.streaming:
            self.notify("an answer is still coming: Esc cancels it", severity="warning")
            return True
        return False

    def refuse_while_busy(self) -> bool:
        """Actions that change the conversation wait until the last answer, even a cancelled one, is
        recorded."""
        if self.refuse_while_streaming():
            return True
        if self.current is not None:
            self.notify("the cancelled answer is still stopping: try again in a moment", severity="warning")
            return True
        return False

    # ---- sending and streaming -----------------------------------------------------------------------

    @on(PromptInput.Submitted)
    @guarded
    async def _submitted(self, event: PromptInput.Submitted) -> None:
        if self.refuse_while_busy() if self.editing else self.refuse_while_streaming():
            return
        text = event.text
        if self.editing:
            self.editing = False
            await self.take_back_last_exchange()
        self.prompt.remember(text)
        await self.send(text)

    async def send(self, text: str) -> None:
        """Show the prompt, open an answer below it, and start the worker that streams into it."""
        try:
            resolved = self.session.resolved
            header = f"{resolved.name} · {resolved.target.model}"
        except LLMSwitchError:
            header = self.session.conversation.profile_name or self.session.client.store.default_name
        user_view = await self.chat_log.add_user(text)
        view = await self.chat_log.add_assistant(header)
        view.begin_stream()
        run = TurnRun(text)
        self.views[id(run)] = view
        self.user_views[id(run)] = user_view
        previous, self.previous, self.current = self.previous, run, run
        self.update_status("answering… (Esc cancels)")
        self._stream(run, previous)

    def _stream(self, run: TurnRun, previous: TurnRun | None) -> None:
        if self.session.streams_on_loop:
            self._stream_on_loop(run, previous)
        else:
            import asyncio

            self._stream_in_thread(run, previous, later_on(asyncio.get_running_loop()))

    @work(thread=True, group="turns", exit_on_error=False)
    def _stream_in_thread(self, run: TurnRun, previous: TurnRun | None, later: Later) -> None:
        if previous is not None:
            previous.done.wait()  # a cancelled answer must be recorded before the next prompt is sent
        run_turn(run, self.session.begin, lambda text: self.post_message(AnswerText(run, text)),
                 lambda finished: self.post_message(AnswerDone(finished)), later=later)

    @work(group="turns", exit_on_error=False)
    async def _stream_on_loop(self, run: TurnRun, previous: TurnRun | None) -> None:
        import asyncio

        while previous is not None and not previous.done.is_set():
            await asyncio.sleep(0.01)  # a cancelled answer must be recorded before the next prompt is sent
        await arun_turn(run, self.session.abegin, lambda text: self.post_message(AnswerText(run, text)),
                        lambda finished: self.post_message(AnswerDone(finished)))

    @on(AnswerText)
    async def _answer_text(self, message: AnswerText) -> None:
        view = self.views.get(id(message.run))
        if view is not None and not message.run.cancelled:
            await view.write(message.text)

    @on(AnswerDone)
    @guarded
    async def _answer_done(self, message: AnswerDone) -> None:
        run = message.run
        view = self.views.get(id(run))  # dropped from views only once its meta is set: "views empty" means done
        user_view = self.user_views.pop(id(run), None)
        if run.turn is None and user_view is not None:
            user_view.mark_unsent()  # refused before sending (missing key, budget...): not in the conversation
        if self.current is run:
            self.current = None
        turn = run.turn
        if view is not None:
            await view.end_stream(turn.result.text if turn is not None else "")
            error = run.error or (turn.result.error if turn is not None else None)
            view.set_error(describe(error) if error is not None else None)
            if turn is not None:
                result = turn.result
                self.session.finished(turn)
                reason = "error" if result.error else "interrupted" if result.interrupted else result.finish_reason
                view.set_meta(answer_meta(result.usage.input_tokens, result.usage.output_tokens,
                                          result.latency_s, self.session.last.cost_usd, reason))
            elif run.cancelled:
                view.set_meta("cancelled before the answer started")
        self.views.pop(id(run), None)
        if self.store is not None and self.store.last_error is not None:
            self.notify(describe(self.store.last_error), title="history not saved", severity="warning")
            self.store.last_error = None
        self.update_status()
        self.sidebar.current_id = self.session.conversation_id
        self.sidebar.refresh_list()

    async def stop_for_exit(self, grace_s: float = QUIT_GRACE_S) -> None:
        """The app is quitting: cancel a running answer and make sure what arrived is recorded (history and
        ledger, as interrupted) before the history is closed. A worker still waiting on a silent server after
        ``grace_s`` seconds is not waited for: the turn is recorded from here."""
        run = self.current
        if run is None or run.done.is_set():
            return
        run.cancel.set()
        if run.task is not None:
            run.task.cancel()  # an answer on the loop closes its stream and records itself at once
        deadline = time.monotonic() + grace_s
        while not run.done.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if not run.done.is_set() and isinstance(run.turn, Turn):
            run.turn.interrupt()  # a worker thread still waiting on a silent server: record from here

    @guarded
    async def action_cancel(self) -> None:
        if self.current is not None and not self.current.cancelled:
            self.current.cancel.set()
            if self.current.task is not None:
                self.current.task.cancel()  # on the loop: a stalled stream stops now, not at its next token
            view = self.views.get(id(self.current))
            if view is not None:
                view.set_meta("cancelling… the partial answer is kept")
            self.update_status("cancelled")
            return
        if self.editing:
            self.editing = False
            self.prompt.load_text("")
            self.update_status()
            return
        if self.sidebar.searching or self.focused is self.sidebar.search_box:
            self.sidebar.clear_search()
            self.prompt.focus()
        elif self.sidebar.showing_one_shots:
            self.sidebar.show_one_shots(False)

    # ---- regenerate, edit ---------------------------------------------------------------------------

    @guarded
    async def action_regenerate(self) -> None:
        if self.refuse_while_busy():
            return
        prompt = await self.take_back_last_exchange()
        if prompt is None:
            self.notify("nothing to regenerate yet", severity="warning")
            return
        await self.send(prompt)

    async def take_back_last_exchange(self) -> str | None:
        """Remove the last prompt and its answer from the screen, and from the conversation and the history
        when it was sent (one that failed before sending never joined them); return the prompt."""
        last = self.chat_log.last_user()
        if last is None:
            return None
        prompt = self.session.rewind() if last.sent else last.text
        await self.chat_log.remove_last_exchange()
        return prompt

    @guarded
    async def action_edit_last(self) -> None:
        if self.refuse_while_busy():
            return
        last = self.chat_log.last_user()
        if last is None:
            self.notify("no prompt to edit yet", severity="warning")
            return
        self.editing = True
        self.prompt.load_text(last.text)
        self.prompt.move_cursor(self.prompt.document.end)
        self.prompt.focus()
        self.update_status()
        self.notify("editing the last prompt: Enter sends it in place of the last exchange; Esc stops editing")

    # ---- copying ------------------------------------------------------------------------------------

    def target_message(self) -> MessageView | None:
        """The message the copy actions act on: the selected one, else the last answer."""
        if isinstance(self.focused, MessageView):
            return self.focused
        return self.chat_log.last_assistant()

    @guarded
    async def action_copy_message(self) -> None:
        message = self.target_message()
        if message is None or not message.text:
            self.notify("no message to copy yet", severity="warning")
            return
        self.app.copy_to_clipboard(message.text)
        self.notify(f"copied the {'prompt' if isinstance(message, UserMessage) else 'answer'} "
                    f"({len(message.text):,} characters)")

    @guarded
    async def action_copy_code(self) -> None:
        from llmswitch.tui.screens.dialogs import ChoiceScreen
        from llmswitch.tui.widgets.message import code_blocks

        message = self.target_message()
        blocks = code_blocks(message.text) if message is not None else []
        if not blocks:
            self.notify("no code block in this message", severity="warning")
            return

        def copy(index: int | None) -> None:
            if index is None:
                return
            self.app.copy_to_clipboard(blocks[index].code)
            self.notify(f"copied code block {index + 1} ({blocks[index].preview})")

        if len(blocks) == 1:
            copy(0)
        else:
            self.app.push_screen(ChoiceScreen("Copy which code block?", [b.preview for b in blocks]), copy)

    def action_select_message(self, step: int) -> None:
        messages = self.chat_log.messages()
        if not messages:
            return
        focused = self.focused
        index = messages.index(focused) + step if focused in messages else (len(messages) - 1 if step < 0 else 0)
        if 0 <= index < len(messages):
            messages[index].focus()
            self.chat_log.scroll_to_widget(messages[index], animate=False)
        elif index >= len(messages):
            self.prompt.focus()

    def action_scroll_chat(self, direction: int) -> None:
        """Page through the chat from the keyboard (at the bottom again, it follows new text again)."""
        if direction < 0:
            self.chat_log.scroll_page_up(animate=False)
        else:
            self.chat_log.scroll_page_down(animate=False)

    # ---- profile, settings ------------------------------------------------------------------------------

    @guarded
    async def action_pick_profile(self) -> None:
        from llmswitch.tui.screens.profiles import ProfilePickerScreen

        current = self.session.conversation.profile_name or self.session.client.store.default_name
        self.app.push_screen(ProfilePickerScreen(self.session.client, current), self.switch_profile)

    def switch_profile(self, name: str | None) -> None:
        if not name or self.refuse_while_busy():  # the running answer is accounted to the profile it asked
            return
        try:
            resolved = self.session.switch_profile(name)
        except LLMSwitchError as error:
            self.notify(describe(error), severity="error", timeout=10)
            return
        kept = len(self.session.conversation.messages)
        self.notify(f"now answering with {resolved.name} ({resolved.target.backend} · {resolved.target.model}); "
                    f"{kept} message{'s' if kept != 1 else ''} kept")
        self.update_status()

    @guarded
    async def action_settings(self) -> None:
        from llmswitch.tui.screens.settings import ConversationSettings, SettingsScreen

        try:
            defaults = dict(self.session.client.profile(self.session.conversation.profile_name).settings)
        except LLMSwitchError:
            defaults = {}

        def apply(chosen: ConversationSettings | None) -> None:
            if chosen is None or self.refuse_while_busy():
                return
            try:
                self.session.configure(chosen.system, chosen.settings)
            except LLMSwitchError as error:
                self.notify(describe(error), severity="error", timeout=10)
                return
            self.notify("system prompt and settings saved for this conversation")
            self.update_status()

        self.app.push_screen(SettingsScreen(self.session.system, self.session.settings, defaults), apply)

    # ---- conversations ----------------------------------------------------------------------------

    @guarded
    async def action_new_conversation(self) -> None:
        if self.refuse_while_busy():
            return
        self.session.new()
        self.editing = False
        await self.chat_log.clear()
        self.sidebar.current_id = None
        self.sidebar.refresh_list()
        self.prompt.focus()
        self.update_status()

    def action_search(self) -> None:
        self.sidebar.search_box.focus()

    @on(Sidebar.Open)
    @guarded
    async def _open(self, event: Sidebar.Open) -> None:
        await self.open_conversation(event.conversation_id, event.message_id)

    @guarded
    async def _open_on_start(self, conversation_id: int) -> None:
        await self.open_conversation(conversation_id, keep_profile=self.keep_profile_on_start)

    async def open_conversation(self, conversation_id: int, message_id: int | None = None, *,
                                keep_profile: bool = False) -> None:
        if self.refuse_while_busy():
            return
        record, records = self.session.open(conversation_id, keep_profile=keep_profile)
        self.editing = False
        await self.chat_log.clear()
        await self.chat_log.add(*(view_for(item) for item in records))
        self.sidebar.current_id = record.id
        self.update_status()
        target = next((view for view in self.chat_log.messages() if view.message_id == message_id), None) \
            if message_id is not None else None
        if target is not None:
            target.focus()
            self.call_after_refresh(self.chat_log.scroll_to_widget, target, animate=False, top=True)
        else:
            self.chat_log.anchor()
            self.prompt.focus()

    def target_conversation(self) -> int | None:
        """The conversation the rename/delete/export actions act on: the one under the sidebar's cursor
        when the sidebar has focus, else the open one."""
        if self.focused is self.sidebar.option_list:
            return self.sidebar.highlighted_conversation()
        return self.session.conversation_id

    def _require_target(self, verb: str) -> int | None:
        if self.store is None:
            self.notify("the chat history is off, so there is nothing to " + verb, severity="warning")
            return None
        conversation_id = self.target_conversation()
        if conversation_id is None:
            self.notify(f"nothing to {verb}: a conversation is saved with its first prompt", severity="warning")
        return conversation_id

    @guarded
    async def action_rename(self) -> None:
        from llmswitch.tui.screens.dialogs import TextPromptScreen

        conversation_id = self._require_target("rename")
        if conversation_id is None or self.store is None:
            return
        store = self.store
        record = store.get_conversation(conversation_id)

        def rename(title: str | None) -> None:
            if title is None or not title.strip():
                return
            store.rename(conversation_id, title)
            self.sidebar.refresh_list()
            self.notify(f"renamed to {title.strip()!r}")

        self.app.push_screen(TextPromptScreen("Rename conversation", record.title, hint="Enter saves, Esc cancels"),
                             reported(self, rename))

    @guarded
    async def action_delete(self) -> None:
        from llmswitch.tui.screens.dialogs import ConfirmScreen

        conversation_id = self._require_target("delete")
        if conversation_id is None or self.store is None:
            return
        store = self.store
        record = store.get_conversation(conversation_id)

        async def delete(confirmed: bool | None) -> None:
            if not confirmed:
                return
            if conversation_id == self.session.conversation_id:
                if self.refuse_while_busy():
                    return
                store.delete_conversation(conversation_id)
                await self.action_new_conversation()
            else:
                store.delete_conversation(conversation_id)
                self.sidebar.refresh_list()
            self.notify(f"deleted {record.title or f'conversation {conversation_id}'!r}")

        question = f"Delete {record.title!r} and its {record.message_count} messages? This cannot be undone."
        self.app.push_screen(ConfirmScreen(question), reported(self, delete))

    @guarded
    async def action_export(self, kind: str | None = None) -> None:
        from llmswitch.config import exports_dir
        from llmswitch.store.export import FORMATS, file_name
        from llmswitch.tui.screens.dialogs import ChoiceScreen, TextPromptScreen

        conversation_id = self._require_target("export")
        if conversation_id is None or self.store is None:
            return
        record = self.store.get_conversation(conversation_id)
        formats = list(FORMATS)

        def ask_path(index: int | None) -> None:
            if index is None:
                return
            format_ = formats[index]
            default = exports_dir() / file_name(record, format_)
            self.app.push_screen(TextPromptScreen("Export to file", str(default),
                                                  hint="Enter writes (edit the path to choose another), Esc cancels"),
                                 reported(self, lambda path: self.write_export(conversation_id, format_, path)))

        if kind in formats:
            ask_path(formats.index(kind))
        else:
            self.app.push_screen(ChoiceScreen("Export as", ["Markdown (.md)", "JSON (.json)"]), ask_path)

    def write_export(self, conversation_id: int, format_: str, path: str | None, *, replace: bool = False) -> None:
        """Write the export to ``path``; an existing file is replaced only after asking."""
        from llmswitch.store.export import render, write
        from llmswitch.tui.screens.dialogs import ConfirmScreen

        if not path or not path.strip() or self.store is None:
            return
        target = Path(path.strip()).expanduser()
        if target.is_dir():
            self.notify(f"error: {target} is a folder\nhint: add a file name to the path", severity="error",
                        timeout=10)
            return
        if target.exists() and not replace:
            self.app.push_screen(
                ConfirmScreen(f"{target} exists. Replace it?"),
                lambda yes: self.write_export(conversation_id, format_, path, replace=True) if yes else None)
            return
        record = self.store.get_conversation(conversation_id)
        try:
            written = write(render(record, self.store.messages(conversation_id), format_), target)
        except LLMSwitchError as error:
            self.notify(describe(error), severity="error", timeout=10)
            return
        self.notify(f"exported to {written}")

    def action_doctor(self) -> None:
        from llmswitch.tui.screens.doctor import DoctorScreen

        self.app.push_screen(DoctorScreen(self.session.client))


def view_for(record: MessageRecord) -> MessageView:
    """A stored message as it is shown."""
    if record.role == "user":
        return UserMessage(record.content, message_id=record.id)
    header = " · ".join(part for part in (record.profile, record.model) if part) or "assistant"
    meta = answer_meta(record.input_tokens, record.output_tokens, record.latency_s, record.cost_usd,
                       record.finish_reason)
    view = AssistantMessage(header, record.content, meta=meta, error=record.error, message_id=record.id)
    if record.error:
        view.add_class("failed")
    return view

