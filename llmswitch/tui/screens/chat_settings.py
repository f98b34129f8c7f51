"""The chat screen's actions on who answers and how: pick another profile, edit the system prompt and settings."""

from __future__ import annotations

from llmswitch.errors import LLMSwitchError
from llmswitch.tui.reporting import describe, guarded
from llmswitch.tui.screens.chat_base import ChatScreenBase


class ProfileActions(ChatScreenBase):
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
