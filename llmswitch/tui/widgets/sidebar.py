"""The sidebar: every stored conversation, newest first, and a full-text search over all their messages.

One-shot answers (``llmswitch chat "..."``, one question each) would bury the conversations, so they are
grouped under one entry at the end of the list; Enter on it lists them, Esc comes back. Search covers both,
and a one-shot continued (here or with ``chat -c``) becomes a conversation and joins the list.
"""

from __future__ import annotations

import time

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option, OptionDoesNotExist

from llmswitch.store import (
    HIGHLIGHT_END,
    HIGHLIGHT_START,
    ConversationRecord,
    HistoryError,
    HistoryStore,
    SearchHit,
)
from llmswitch.terminal import neutralize

SEARCH_DELAY_S = 0.15  # search once typing pauses, not on every key


def highlighted(snippet: str, style: str = "bold $text-accent on $accent 30%") -> Content:
    """A search snippet with its matches styled (the store marks them with private-use characters)."""
    parts: list[tuple[str, str] | str] = []
    for index, piece in enumerate(snippet.replace(HIGHLIGHT_END, HIGHLIGHT_START).split(HIGHLIGHT_START)):
        if piece:
            clean = " ".join(neutralize(piece).split())  # one line per hit: newlines in a message would break the list
            if piece[:1].isspace():
                clean = " " + clean
            if piece[-1:].isspace():
                clean += " "
            parts.append((clean, style) if index % 2 else clean)
    return Content.assemble(*parts)


def one_line(text: str, width: int = 30) -> str:
    """Fit a title on one line of the sidebar."""
    text = " ".join(neutralize(text).split())  # a title is a prompt: it may hold any character
    return text if len(text) <= width else text[: width - 1] + "…"


def when(seconds: float) -> str:
    """A short age: today's time, else the date."""
    moment = time.localtime(seconds)
    if time.strftime("%Y-%m-%d", moment) == time.strftime("%Y-%m-%d"):
        return time.strftime("%H:%M", moment)
    return time.strftime("%Y-%m-%d", moment)


class Sidebar(Vertical):
    """Search box above a list that shows either the conversations or the search results."""

    # Down from the search box walks into the results, as in a browser's address bar (the list, once focused,
    # handles its own Up and Down; the prompt box below keeps Down for its history).
    BINDINGS = [Binding("down", "show_results", "Results", show=False)]

    class Open(Message):
        """Open a conversation (scrolled to ``message_id`` when it came from a search)."""

        def __init__(self, conversation_id: int, message_id: int | None = None) -> None:
            super().__init__()
            self.conversation_id = conversation_id
            self.message_id = message_id

    def __init__(self, store: HistoryStore | None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.store = store
        self.current_id: int | None = None
        self.searching = False
        # The text the list now shows results for (typing reruns the search after a pause).
        self.searched_for = ""
        self.showing_one_shots = False
        self._listed_one_shots: set[int] = set()
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Input(placeholder="Search all messages…", id="search")
        yield OptionList(id="conversations")

    def on_mount(self) -> None:
        self.query_one(OptionList).border_title = "Conversations"
        if self.store is None:
            self.query_one(Input).disabled = True
        self.refresh_list()

    @property
    def option_list(self) -> OptionList:
        return self.query_one(OptionList)

    @property
    def search_box(self) -> Input:
        return self.query_one(Input)

    # ---- listing ------------------------------------------------------------------------------------

    def refresh_list(self) -> None:
        """Show the conversations, or re-run the search when one is shown."""
        if self.searching:
            self.run_search(self.search_box.value)
            return
        option_list = self.option_list
        option_list.border_title = "Conversations"
        if self.store is None:
            option_list.set_options([Option("history is off (see the warning)", disabled=True)])
            return
        try:
            records = self.store.list_conversations(one_shot=self.showing_one_shots)
            one_shots = len(records) if self.showing_one_shots else self.store.count_conversations(one_shot=True)
        except HistoryError as error:
            option_list.set_options([Option(Content(error.message), disabled=True)])
            return
        listed = {record.id for record in records}
        left = self.current_id in self._listed_one_shots and self.current_id not in listed
        self._listed_one_shots = listed if self.showing_one_shots else set()
        if self.showing_one_shots and (left or not records):
            # The open one was continued (it is a conversation now: follow it), or none are left.
            self.showing_one_shots = False
            self.refresh_list()
            return
        options = [self._conversation_option(record) for record in records]
        if self.showing_one_shots:
            option_list.border_title = f"One-shot answers ({one_shots})"
            options.insert(0, Option(Content.assemble(("← conversations", "bold"), ("  (Esc)", "dim")), id="back"))
        elif one_shots:
            plural = "s" if one_shots != 1 else ""
            options.append(Option(Content.assemble((f"▸ {one_shots} one-shot answer{plural}", "bold"), "\n",
                                                   ("from llmswitch chat \"…\"", "dim")), id="one-shots"))
        option_list.set_options(options or [Option("no conversations yet", disabled=True)])
        self._highlight_current()

    def show_one_shots(self, show: bool) -> None:
        """List the one-shot answers instead of the conversations (or back)."""
        self.showing_one_shots = show
        self.refresh_list()
        option_list = self.option_list
        if option_list.highlighted is None and option_list.option_count:
            option_list.highlighted = 1 if show and option_list.option_count > 1 else 0

    def _conversation_option(self, record: ConversationRecord) -> Option:
        details = f"{when(record.updated_at)} · {record.profile or '?'} · {record.message_count} msg"
        prompt = Content.assemble((one_line(record.title or f"Conversation {record.id}"), "bold"), "\n",
                                  (details, "dim"))
        return Option(prompt, id=f"c{record.id}")

    def _highlight_current(self) -> None:
        if self.current_id is None:
            return
        try:
            self.option_list.highlighted = self.option_list.get_option_index(f"c{self.current_id}")
        except OptionDoesNotExist:  # beyond the listed ones, or deleted meanwhile
            pass

    # ---- searching ------------------------------------------------------------------------------------

    @on(Input.Changed, "#search")
    def _search_changed(self, event: Input.Changed) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(SEARCH_DELAY_S, lambda: self.run_search(event.value))

    @on(Input.Submitted, "#search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        self.action_show_results()

    def action_show_results(self) -> None:
        """Search now (without waiting for typing to pause) and move to the first result."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self.run_search(self.search_box.value)
        option_list = self.option_list
        if option_list.option_count:
            option_list.focus()
            if option_list.highlighted is None:
                option_list.action_first()

    def run_search(self, text: str) -> None:
        option_list = self.option_list
        if not text.strip() or self.store is None:
            self.searching = False
            self.searched_for = ""
            self.refresh_list()
            return
        self.searching = True
        try:
            hits = self.store.search(text)
        except HistoryError as error:
            option_list.set_options([Option(Content(error.message), disabled=True)])
            return
        option_list.border_title = f"{len(hits)} match{'es' if len(hits) != 1 else ''}"
        option_list.set_options([self._hit_option(hit) for hit in hits] or [Option("no matches", disabled=True)])
        self.searched_for = text

    def _hit_option(self, hit: SearchHit) -> Option:
        who = "you" if hit.role == "user" else "answer"
        title = one_line(hit.title or f"Conversation {hit.conversation_id}")
        return Option(Content.assemble((title, "bold"), "\n", (f"{who} · {when(hit.created_at)}: ", "dim"),
                                       highlighted(hit.snippet)),
                      id=f"m{hit.conversation_id}:{hit.message_id}")

    def clear_search(self) -> None:
        self.search_box.value = ""
        self.searching = False
        self.searched_for = ""
        self.refresh_list()

    # ---- choosing -------------------------------------------------------------------------------------

    @on(OptionList.OptionSelected, "#conversations")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option_id in ("one-shots", "back"):
            self.show_one_shots(event.option_id == "one-shots")
            return
        target = parse_option_id(event.option_id)
        if target is not None:
            self.post_message(self.Open(*target))

    def highlighted_conversation(self) -> int | None:
        """The conversation under the list's cursor, if any."""
        option = self.option_list.highlighted_option
        target = parse_option_id(option.id if option else None)
        return target[0] if target else None


def parse_option_id(option_id: str | None) -> tuple[int, int | None] | None:
    """``c12`` → (12, None); ``m12:345`` → (12, 345); anything else (the one-shot group) → None."""
    if not option_id:
        return None
    if option_id.startswith("c"):
        return int(option_id[1:]), None
    if option_id.startswith("m"):
        conversation, _, message = option_id[1:].partition(":")
        return int(conversation), int(message)
    return None
