"""Plugins registered from Python to exercise failure paths (the echo plugin covers the happy path)."""

from __future__ import annotations

from collections.abc import Iterator

from llmswitch import hookimpl
from llmswitch.errors import UnreachableError
from llmswitch.types import BackendInfo, Request, Response, StreamEvent, Target, TextDelta


class KeyedPlugin:
    """A backend that needs KEYED_API_KEY and answers with how its key was resolved."""

    @hookimpl
    def llmswitch_backends(self) -> list[BackendInfo]:
        from llmswitch.types import OptionSpec

        return [BackendInfo(
            name="keyed", summary="needs a key", key_env="KEYED_API_KEY", base_url_env="KEYED_BASE_URL",
            default_base_url="https://keyed.example/v1", default_model="k1",
            options=(OptionSpec("api_key", "str", secret=True), OptionSpec("api_key_env", "str"),
                     OptionSpec("base_url", "str")),
        )]

    @hookimpl
    def complete(self, target: Target, request: Request) -> Response:
        key = target.api_key
        return Response(f"key from {key.source if key else 'nowhere'}; url {target.base_url}")


class FailingPlugin:
    """Streams a little, then loses the connection."""

    @hookimpl
    def llmswitch_backends(self) -> list[BackendInfo]:
        return [BackendInfo(name="failing", summary="fails mid-stream", key_env=None, default_model="f")]

    @hookimpl
    def stream(self, target: Target, request: Request) -> Iterator[StreamEvent]:
        yield TextDelta("partial ")
        yield TextDelta("answer")
        raise UnreachableError("connection dropped", remedy="start the server again")


class BuggyPlugin:
    """Raises something that is not an llmswitch error: a bug in the plugin."""

    @hookimpl
    def llmswitch_backends(self) -> list[BackendInfo]:
        return [BackendInfo(name="buggy", summary="has a bug", key_env=None)]

    @hookimpl
    def stream(self, target: Target, request: Request) -> Iterator[StreamEvent]:
        yield TextDelta(str(1 / 0))


class SloppyPlugin:
    """Answers ``q1`` with bytes where text belongs: a plugin bug that gets past the plugin boundary and breaks
    the core while the answer is being finished."""

    @hookimpl
    def llmswitch_backends(self) -> list[BackendInfo]:
        return [BackendInfo(name="sloppy", summary="answers q1 with bytes", key_env=None, default_model="s")]

    @hookimpl
    def complete(self, target: Target, request: Request) -> Response:
        return Response(b"bytes" if request.messages[-1].content == "q1" else "fine")  # type: ignore[arg-type]


class RecordingPlugin:
    """Answers "ok" and keeps each (target, request) it was given, to assert what reached the backend."""

    def __init__(self) -> None:
        self.calls: list[tuple[Target, Request]] = []

    @hookimpl
    def llmswitch_backends(self) -> list[BackendInfo]:
        return [BackendInfo(name="recording", summary="records requests", key_env=None, default_model="r1")]

    @hookimpl
    def stream(self, target: Target, request: Request) -> Iterator[StreamEvent]:
        self.calls.append((target, request))
        yield TextDelta("ok")

    @hookimpl
    def complete(self, target: Target, request: Request) -> Response:
        self.calls.append((target, request))
        return Response("ok")


class QuotingPlugin:
    """Puts the key it was given into its errors (as a careless plugin, or one quoting its server, does):
    mid-stream from ``stream``, at once from ``complete`` and ``health``."""

    @hookimpl
    def llmswitch_backends(self) -> list[BackendInfo]:
        from llmswitch.types import OptionSpec

        return [BackendInfo(name="quoting", summary="quotes its key", key_env="QUOTING_API_KEY", default_model="q",
                            options=(OptionSpec("api_key", "str", secret=True),))]

    @hookimpl
    def stream(self, target: Target, request: Request) -> Iterator[StreamEvent]:
        yield TextDelta("partial ")
        raise UnreachableError(f"connection dropped using key {self._key(target)}", remedy="check the key")

    @hookimpl
    def complete(self, target: Target, request: Request) -> Response:
        from llmswitch.errors import AuthError

        raise AuthError(f"the server refused {self._key(target)}", remedy=f"not {self._key(target)}")

    @staticmethod
    def _key(target: Target) -> str:
        assert target.api_key is not None
        return target.api_key.value
