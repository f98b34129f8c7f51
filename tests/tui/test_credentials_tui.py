"""The TUI shows a server's error with the credentials it echoed masked, and stores it that way."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import wait_for

from llmswitch.tui.app import create_app
from llmswitch.tui.screens.chat import ChatScreen
from llmswitch.tui.widgets.prompt_input import PromptInput
from tests.helpers import write_config
from tests.servers.echoing_server import echoing_server

pytestmark = pytest.mark.anyio
API_KEY = "sk-tui-0123456789abcdefTUIK"
HEADER_TOKEN = "tui-token-0123456789abcdefTTOK"


async def test_an_echoed_key_is_masked_in_the_tui_and_in_its_history(config_file: Path) -> None:
    pytest.importorskip("llmswitch_openai")
    with echoing_server() as server:
        write_config(config_file, f'default_profile = "p"\n[profiles.p]\nbackend = "openai"\nmodel = "m"\n'
                                  f'base_url = "{server.url}/v1"\napi_key = "{API_KEY}"\n'
                                  f'headers = {{ X-Auth-Token = "{HEADER_TOKEN}" }}\n')
        app = create_app()
        async with app.run_test(size=(120, 40)) as pilot:
            screen = app.screen
            assert isinstance(screen, ChatScreen)
            screen.query_one(PromptInput).load_text("hello?")
            await pilot.press("enter")
            await wait_for(pilot, lambda: screen.current is None and not screen.views)
            answer = screen.chat_log.last_assistant()
            assert answer is not None and answer.has_class("failed")
            shown = str(answer.query_one(".error").render())
            assert "invalid credentials" in shown and "sk-…TUIK" in shown and "tu…TTOK" in shown
            assert API_KEY not in shown and HEADER_TOKEN not in shown
            conversation_id = screen.session.conversation_id
            assert app.store is not None and conversation_id is not None
            stored = app.store.messages(conversation_id)[-1].error or ""
            assert "invalid credentials" in stored and API_KEY not in stored and HEADER_TOKEN not in stored
