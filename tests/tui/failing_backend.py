"""A backend that fails the way real ones do, registered from Python for tests (`register_plugin`).

``mode`` picks the failure: ``down`` (connection refused before any text), ``auth`` (key rejected),
``cut`` (some text, then the stream breaks), ``bug`` (the plugin raises something that is not an llmswitch
error).
"""

from __future__ import annotations

from collections.abc import Iterator

from llmswitch import hookimpl
from llmswitch.errors import AuthError, BadResponseError, UnreachableError
from llmswitch.types import (
    BackendInfo,
    Check,
    CheckStatus,
    HealthReport,
    OptionSpec,
    Request,
    StreamEvent,
    Target,
    TextDelta,
)

INFO = BackendInfo(
    name="failing",
    summary="fails on purpose (tests)",
    default_model="broken-1",
    key_env=None,
    options=(OptionSpec("mode", "str", "down", "how to fail", choices=("down", "auth", "cut", "bug")),),
)


@hookimpl
def llmswitch_backends() -> list[BackendInfo]:
    return [INFO]


@hookimpl
def stream(target: Target, request: Request) -> Iterator[StreamEvent]:
    mode = target.option("mode", "down")
    if mode == "down":
        raise UnreachableError("cannot connect to 127.0.0.1:9 (connection refused)",
                               remedy="start the server, or fix base_url in the profile")
    if mode == "auth":
        raise AuthError("the server rejected the key sk-…abcd (401)", remedy="check FAILING_API_KEY")
    yield TextDelta("The first half of the answer")
    if mode == "cut":
        raise BadResponseError("the stream was cut off in the middle", remedy="try again; the server may be overloaded")
    raise ValueError("oops")


@hookimpl
def health(target: Target, timeout: float, offline: bool) -> HealthReport:
    return HealthReport.from_checks([Check("reachable", CheckStatus.FAIL, "connection refused",
                                           "start the server, or fix base_url in the profile")])


class BrokenPlugin:
    """A plugin whose discovery hook raises: it fails to load and must show as disabled."""

    @hookimpl
    def llmswitch_backends(self) -> list[BackendInfo]:
        raise RuntimeError("this plugin is broken")
