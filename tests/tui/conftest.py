"""Fixtures for the TUI tests: a config with echo profiles (the installed plugin, through its entry point),
a failing backend registered from Python, a history store, and helpers to wait for the app."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from llmswitch import plugins
from llmswitch.store import HistoryStore

sys.path.insert(0, str(Path(__file__).parent))
import failing_backend  # noqa: E402

CONFIG = """\
default_profile = "echo"

[profiles.slow]
backend = "echo"
delay = 0.02
chunk_size = 4
description = "echo, slowly"

[profiles.fast]
backend = "echo"
model = "echo-fast"
chunk_size = 64

[profiles.down]
backend = "failing"
mode = "down"

[profiles.cut]
backend = "failing"
mode = "cut"

[profiles.buggy]
backend = "failing"
mode = "bug"

[profiles.ghost]
backend = "not-installed"
"""


@pytest.fixture
def config(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config_file.write_text(CONFIG, encoding="utf-8")
    return config_file


@pytest.fixture(autouse=True)
def failing_plugin() -> Iterator[None]:
    plugins.register_plugin(failing_backend, "failing")
    yield
    plugins.unregister_plugin("failing")


@pytest.fixture
def store(hermetic: Path) -> Iterator[HistoryStore]:
    history = HistoryStore.open()
    yield history
    history.close()


async def wait_for(pilot, condition: Callable[[], object], timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    """Let the app run until ``condition()`` is true (fails the test after ``timeout`` seconds).

    The deadline only ends a test that is stuck: it returns as soon as the state is reached. It is generous
    because a first answer imports an SDK and starts a worker, which on a loaded machine (CI, 2 cores shared
    by several suites) has taken more than 10 s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {condition}")
        await pilot.pause(0.02)


def palette_offers(app, title: str) -> bool:  # type: ignore[no-untyped-def]
    """The command palette lists its matches and highlights the one called ``title``, so enter runs it.

    The palette searches in a worker: pressing enter before the matches are listed runs nothing.
    """
    from textual.command import CommandList, CommandPalette

    if not isinstance(app.screen, CommandPalette):
        return False
    commands = app.screen.query_one(CommandList)
    if commands.highlighted is None:
        return False
    return title in str(commands.get_option_at_index(commands.highlighted).prompt)
