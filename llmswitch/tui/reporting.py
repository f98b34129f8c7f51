"""Failures on a screen: every action and dialog answer is guarded, so a failure becomes a notification (the
error's sentence and remedy, keys masked, escape sequences shown inert) instead of ending the app."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from textual.screen import Screen

from llmswitch import errors
from llmswitch.terminal import neutralize

Action = TypeVar("Action", bound=Callable[..., Any])


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
    async def wrapper(self: Screen[Any], *args: Any, **kwargs: Any) -> Any:
        return await run_reported(self, lambda: action(self, *args, **kwargs))

    return wrapper  # type: ignore[return-value]


def reported(screen: Screen[Any], callback: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """A dialog's result callback, guarded like an action (a dialog's answer can reach the history)."""

    async def wrapper(*args: Any) -> Any:
        return await run_reported(screen, lambda: callback(*args))

    return wrapper
