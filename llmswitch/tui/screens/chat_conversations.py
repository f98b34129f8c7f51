"""The chat screen's actions on conversations: new, search, open, rename, delete, export; and the doctor."""

from __future__ import annotations

from pathlib import Path

from textual import on

from llmswitch.errors import LLMSwitchError
from llmswitch.tui.reporting import describe, guarded, reported
from llmswitch.tui.screens.chat_base import ChatScreenBase, view_for
from llmswitch.tui.widgets.sidebar import Sidebar


class ConversationActions(ChatScreenBase):
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
