"""One ``health`` for both APIs: a plugin writes its checks once, as a generator of the calls it needs, and
:func:`run_checks` (``health``) or :func:`arun_checks` (``ahealth``) sends them.

    def checks(target: Target, timeout: float, offline: bool) -> kit.Checks:
        if offline:
            return HealthReport.from_checks([Check("server", CheckStatus.SKIP, "offline")])
        try:
            listing = yield kit.Call(endpoint(target), "GET", "models", timeout=timeout)
        except LLMSwitchError as error:  # raised at the yield, as kit.request_json would raise it
            return HealthReport.from_checks([Check("server", CheckStatus.FAIL, error.message, error.remedy)])
        ...

A yielded call is answered with its JSON object, or its llmswitch error is raised at the ``yield``: the checks
read like sync code, and the same object runs on a thread (``doctor``) or on an event loop (the TUI,
``AsyncClient``) without a second copy.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from llmswitch.errors import LLMSwitchError
from llmswitch.kit.calls import Call, arequest_json, request_json
from llmswitch.types import HealthReport

Checks = Generator[Call, Any, HealthReport]
"""A health check written once: yields each :class:`Call`, receives its JSON answer, returns the report."""


def run_checks(checks: Checks) -> HealthReport:
    """Drive ``checks`` with blocking requests (for the ``health`` hook)."""
    try:
        call = next(checks)
        while True:
            try:
                answer = request_json(call)
            except LLMSwitchError as error:
                call = checks.throw(error)
            else:
                call = checks.send(answer)
    except StopIteration as finished:
        return finished.value  # type: ignore[no-any-return]


async def arun_checks(checks: Checks) -> HealthReport:
    """Drive ``checks`` with awaited requests on the running loop (for the ``ahealth`` hook)."""
    try:
        call = next(checks)
        while True:
            try:
                answer = await arequest_json(call)
            except LLMSwitchError as error:
                call = checks.throw(error)
            else:
                call = checks.send(answer)
    except StopIteration as finished:
        return finished.value  # type: ignore[no-any-return]
