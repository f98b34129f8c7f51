"""The echo backend: answers with the last user message, in chunks, optionally slowly.

A complete llmswitch backend in one small file, and the reference for writing your own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from llmswitch.kit import (
    BackendInfo,
    Check,
    CheckStatus,
    HealthReport,
    OptionSpec,
    Request,
    Response,
    StreamEnd,
    StreamEvent,
    Target,
    TextDelta,
    TokenCount,
    UnsupportedOptionError,
    Usage,
    UsageEvent,
    hookimpl,
)

INFO = BackendInfo(
    name="echo",
    summary="Echoes the last user message back (deterministic; for tests and demos)",
    default_model="echo",
    key_env=None,
    options=(
        OptionSpec("chunk_size", "int", 8, "characters per streamed chunk"),
        OptionSpec("delay", "float", 0.0, "seconds to wait before each chunk (simulates a slow model)"),
        OptionSpec("prefix", "str", "", "text put before the echo"),
    ),
    prices=("llmswitch_echo", "prices.toml"),  # data shipped in the package: every model costs 0
    profiles={"echo": {"model": "echo", "description": "echoes your message back (for tests)"}},
)


@hookimpl
def llmswitch_backends() -> list[BackendInfo]:
    return [INFO]


# Sampling settings mean nothing to an echo: refused, never silently dropped (it honours max_tokens and stop).
UNSUPPORTED = ("temperature", "top_p", "top_k", "seed")


def _answer(target: Target, request: Request) -> str:
    asked = [name for name in UNSUPPORTED if getattr(request, name) is not None] + sorted(request.extras)
    if asked:
        names = ", ".join(asked)
        raise UnsupportedOptionError(f"the echo backend does not support {names}",
                                     remedy=f"remove {names} from the profile or the command line (echo honours "
                                            "max_tokens and stop only)")
    last_user = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
    if request.max_tokens is not None:
        last_user = " ".join(last_user.split(" ")[: request.max_tokens])
    text = str(target.option("prefix", "")) + last_user
    for stop in request.stop:
        if stop and stop in text:
            text = text[: text.index(stop)]
    return text


def _count(text: str) -> int:
    return len(text.split())


@hookimpl
def complete(target: Target, request: Request) -> Response:
    started = time.perf_counter()
    text = _answer(target, request)
    usage = Usage(count_tokens(target, request).n, _count(text))
    return Response(text, "stop", usage, target.model, time.perf_counter() - started)


@hookimpl
def stream(target: Target, request: Request) -> Iterator[StreamEvent]:
    text = _answer(target, request)
    size = max(1, int(target.option("chunk_size", 8)))
    delay = float(target.option("delay", 0.0))
    for start in range(0, len(text), size):
        if delay:
            time.sleep(delay)
        yield TextDelta(text[start : start + size])
    yield UsageEvent(Usage(count_tokens(target, request).n, _count(text)))
    yield StreamEnd("stop", target.model)


@hookimpl
def count_tokens(target: Target, request: Request) -> TokenCount:
    words = sum(_count(m.content) for m in request.messages) + _count(request.system or "")
    return TokenCount(words, exact=False, method="whitespace words")


@hookimpl
def health(target: Target, timeout: float, offline: bool) -> HealthReport:
    return HealthReport.from_checks([Check("echo", CheckStatus.PASS, "always answers")], latency_s=0.0)
