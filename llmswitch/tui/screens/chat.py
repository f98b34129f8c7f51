"""The main screen: conversations on the left, the chat on the right, the prompt box and status below.

This module sends prompts and streams answers; the other actions are in their own parts, one job each:
:mod:`~llmswitch.tui.screens.chat_conversations` (new, open, rename, delete, export),
:mod:`~llmswitch.tui.screens.chat_messages` (copy, select, scroll) and
:mod:`~llmswitch.tui.screens.chat_settings` (profile, system prompt and settings), all built on
:mod:`~llmswitch.tui.screens.chat_base` (the state, the widgets, the status line).
"""

from __future__ import annotations

import asyncio
import time

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Footer

from llmswitch.conversation import Turn
from llmswitch.errors import LLMSwitchError
from llmswitch.router.plan import RouterEvent
from llmswitch.tui import keys
from llmswitch.tui.reporting import describe, guarded
from llmswitch.tui.screens.chat_base import answer_meta
from llmswitch.tui.screens.chat_conversations import ConversationActions
from llmswitch.tui.screens.chat_messages import MessageActions
from llmswitch.tui.screens.chat_settings import ProfileActions
from llmswitch.tui.streaming import Later, TurnRun, arun_turn, later_on, run_turn
from llmswitch.tui.widgets.chat_log import ChatLog
from llmswitch.tui.widgets.prompt_input import PromptInput
from llmswitch.tui.widgets.sidebar import Sidebar
from llmswitch.tui.widgets.status import StatusLine

QUIT_GRACE_S = 1.0  # how long quitting waits for a cancelled answer's worker to record it


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


class ChatScreen(ConversationActions, MessageActions, ProfileActions):
    BINDINGS = keys.bindings("chat")

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
        self.session.client.observers.append(self._router_event)  # retries and fallbacks in the status line
        if self.open_on_start is not None:
            self.call_after_refresh(self._open_on_start, self.open_on_start)

    def _router_event(self, event: RouterEvent) -> None:
        """A retry, fallback, cooldown or wait of the answer being streamed, shown in the status line. Called
        on the app's loop (async backends) or from the worker thread that streams a sync one."""
        def show() -> None:
            if self.is_attached:
                self.update_status(event.message)

        try:
            self.app.call_from_thread(show)
        except RuntimeError:  # already on the app's loop
            show()

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
