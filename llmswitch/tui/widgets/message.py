"""One message in the chat pane: the user's prompt, or an answer streamed in as Markdown.

Every text shown here passes through :func:`llmswitch.terminal.neutralize` on its way in: an answer (live or
reopened from the history) must not be able to send escape sequences to the terminal. The store keeps the
raw text; what these widgets hold is the text as shown.
"""

from __future__ import annotations

import asyncio

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Label, Markdown, Static
from textual.widgets.markdown import MarkdownStream

from llmswitch.record import record
from llmswitch.terminal import neutralize
from llmswitch.tui.widgets.frozen_markdown import FrozenMarkdown, Segment, plan


@record(slots=False)
class CodeBlock:
    language: str
    code: str

    @property
    def preview(self) -> str:
        first = next((line for line in self.code.splitlines() if line.strip()), "")
        lines = self.code.count("\n") + (0 if self.code.endswith("\n") else 1)
        return f"{self.language or 'text'} · {lines} line{'s' if lines != 1 else ''} · {first.strip()[:60]}"


def code_blocks(markdown: str) -> list[CodeBlock]:
    """The fenced and indented code blocks of a Markdown text, in order."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").parse(markdown)
    return [CodeBlock(token.info.strip().split(" ")[0], token.content)
            for token in tokens if token.type in ("fence", "code_block")]


class MessageView(Vertical):
    """Base of both kinds of message: focusable (to copy it), with a header naming who wrote it."""

    can_focus = True
    role = "assistant"
    message_id: int | None = None  # the stored message shown, when it is stored

    @property
    def text(self) -> str:
        raise NotImplementedError


class UserMessage(MessageView):
    """A prompt as sent: plain text, never interpreted as markup."""

    role = "user"

    def __init__(self, text: str, *, message_id: int | None = None) -> None:
        super().__init__(classes="message user")
        self._text = text
        self.message_id = message_id
        self.sent = True  # False when it failed before reaching the backend: not part of the conversation

    def mark_unsent(self) -> None:
        self.sent = False
        self.add_class("unsent")
        self.query_one(".header", Label).update("You (not sent)")

    @property
    def text(self) -> str:
        return self._text

    def compose(self) -> ComposeResult:
        yield Label("You", classes="header")
        yield Static(Content(neutralize(self._text)), classes="body")


class AssistantMessage(MessageView):
    """An answer: Markdown, streamed through MarkdownStream so only the last block is re-rendered.

    Only the last blocks stay in the live ``Markdown`` widget: once it holds more than ``LIVE_BLOCKS``, the
    blocks before the last ``KEEP_LIVE`` are frozen into :class:`FrozenMarkdown` segments (one widget per
    ``SEGMENT_BLOCKS`` blocks), so a long answer costs a few dozen widgets, not thousands.
    """

    role = "assistant"
    LIVE_BLOCKS = 16
    KEEP_LIVE = 4
    SEGMENT_BLOCKS = 32
    CHECK_EVERY_CHARS = 1500  # how much new text before counting the live blocks again

    def __init__(self, header: str, text: str = "", *, meta: str = "", error: str | None = None,
                 message_id: int | None = None) -> None:
        super().__init__(classes="message assistant")
        self._header, self._meta = neutralize(header), neutralize(meta)
        self._error = neutralize(error) if error else error
        self.message_id = message_id
        self._frozen, self._live_initial = self._plan(neutralize(text))
        self._frozen_text = "".join(segment.source for segment in self._frozen)
        self._live_text = self._live_initial  # what the live widget has been given (it may lag behind)
        self._unchecked = 0
        self._stream: MarkdownStream | None = None
        self._lock = asyncio.Lock()
        self.streaming = False

    @classmethod
    def _plan(cls, text: str) -> tuple[list[Segment], str]:
        """Split a text into frozen segments and the live tail."""
        if text.count("\n") < cls.LIVE_BLOCKS:  # cheap test first: a block takes at least a line
            return [], text
        frozen, tail, blocks = plan(text, cls.KEEP_LIVE, cls.SEGMENT_BLOCKS)
        if blocks <= cls.LIVE_BLOCKS:
            return [], text
        return frozen, tail

    def compose(self) -> ComposeResult:
        yield Label(self._header, classes="header")
        with Vertical(classes="body"):
            for segment in self._frozen:
                yield FrozenMarkdown(segment)
            yield Markdown(self._live_initial)
        yield Static(Content(self._meta), classes="meta")
        yield Static(Content(self._error or ""), classes="error")

    def on_mount(self) -> None:
        self.query_one(".meta", Static).display = bool(self._meta)
        self.query_one(".error", Static).display = bool(self._error)

    @property
    def markdown(self) -> Markdown:
        """The live Markdown widget (the last blocks of the answer)."""
        return self.query_one(Markdown)

    @property
    def text(self) -> str:
        """The answer's Markdown source, as far as it is shown."""
        live = self.markdown.source if self.is_mounted else self._live_initial
        return self._frozen_text + live

    # ---- streaming -----------------------------------------------------------------------------------

    def begin_stream(self) -> None:
        self.streaming = True
        self._header_label.add_class("streaming")

    @property
    def _header_label(self) -> Label:
        # The header, not the message, carries the "streaming" class: a class change restyles the widget it
        # is on and everything inside it, which for a long answer is dozens of widgets.
        return self.query_one(".header", Label)

    async def write(self, text: str) -> None:
        text = neutralize(text)
        async with self._lock:
            self._live_text += text
            self._unchecked += len(text)
            if self._unchecked >= self.CHECK_EVERY_CHARS and await self._freeze():
                return  # the live widget was rebuilt from the new tail, text included
            if self._stream is None:  # started on first use, so it is never stopped before it ran
                self._stream = Markdown.get_stream(self.markdown)
            await self._stream.write(text)

    async def _stop_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            # A task cancelled before its first step raises CancelledError into whoever awaits it (here: the
            # screen's message loop, which would end); one turn of the loop lets it start first.
            await asyncio.sleep(0)
            await stream.stop()

    async def _freeze(self) -> bool:
        """Move all but the last blocks out of the live widget when it holds too many; True if it did."""
        self._unchecked = 0
        frozen, tail, blocks = plan(self._live_text, self.KEEP_LIVE, self.SEGMENT_BLOCKS)
        if blocks <= self.LIVE_BLOCKS:
            return False
        live = self.markdown
        await self._stop_stream()
        body = self.query_one(".body", Vertical)
        await body.mount_all([FrozenMarkdown(segment) for segment in frozen], before=live)
        self._frozen_text += "".join(segment.source for segment in frozen)
        self._live_text = tail
        await self._restart_live(tail)
        return True

    async def _restart_live(self, tail: str) -> None:
        """Swap the live widget for a new one holding ``tail``.

        A new widget and ``append``, not ``update``: ``update`` takes its text as a finished document, and
        the text streamed after it would be parsed from its last line, not from the start of its last block
        (a code fence still open there would swallow everything after it).
        """
        old = self.markdown
        new = Markdown()
        await self.query_one(".body", Vertical).mount(new, after=old)
        await old.remove()
        if tail:
            await new.append(tail)

    async def end_stream(self, final_text: str) -> None:
        """Stop streaming; make sure what is shown is exactly the text that was kept."""
        final_text = neutralize(final_text)
        async with self._lock:
            await self._stop_stream()
            self.streaming = False
            self._header_label.remove_class("streaming")
            shown = self.text
            if final_text != shown:
                if final_text.startswith(shown):
                    missing = final_text[len(shown):]
                    self._live_text = self.markdown.source + missing
                    await self.markdown.append(missing)
                else:
                    await self._replace(final_text)
            self._live_text = self.markdown.source
            await self._freeze()

    async def _replace(self, text: str) -> None:
        await self.query(FrozenMarkdown).remove()
        frozen, tail = self._plan(text)
        await self.query_one(".body", Vertical).mount_all([FrozenMarkdown(part) for part in frozen],
                                                           before=self.markdown)
        self._frozen_text = "".join(segment.source for segment in frozen)
        self._live_text = tail
        await self._restart_live(tail)

    # ---- status below the answer ------------------------------------------------------------------------

    def set_meta(self, text: str) -> None:
        text = neutralize(text)
        meta = self.query_one(".meta", Static)
        meta.update(Content(text))
        meta.display = bool(text)

    def set_error(self, text: str | None) -> None:
        text = neutralize(text) if text else text
        self._error = text
        error = self.query_one(".error", Static)
        error.update(Content(text or ""))
        error.display = bool(text)
        self.set_class(bool(text), "failed")

    def code_blocks(self) -> list[CodeBlock]:
        return code_blocks(self.text)
