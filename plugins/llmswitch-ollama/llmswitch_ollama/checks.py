"""``llmswitch doctor`` for an ollama profile: is the server up, and is the model pulled.

Two cheap calls that load no model: ``GET /api/version`` and ``GET /api/tags``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from llmswitch import kit
from llmswitch.kit import (
    Check,
    CheckStatus,
    HealthReport,
    LLMSwitchError,
    RedirectError,
    Target,
    close_matches,
)
from llmswitch_ollama.calls import endpoint
from llmswitch_ollama.errors import base_url, pull_remedy

PASS, WARN, FAIL, SKIP = CheckStatus.PASS, CheckStatus.WARN, CheckStatus.FAIL, CheckStatus.SKIP
SHOWN_MODELS = 8


def health(target: Target, timeout: float, offline: bool) -> kit.Checks:
    """The checks, once for ``health`` and ``ahealth`` (:func:`llmswitch.kit.run_checks`)."""
    url = base_url(target)
    if offline:
        return HealthReport.from_checks([Check("server", SKIP, f"offline: {url} was not contacted")])
    where = endpoint(target)
    started = time.perf_counter()
    try:
        version = yield kit.Call(where, "GET", "api/version", timeout=timeout)
    except LLMSwitchError as error:  # every failure becomes a failed check, never an exception out of doctor
        status = None if isinstance(error, RedirectError) else getattr(error, "status_code", None)
        detail = (f"{url} answered HTTP {status} for /api/version: is it Ollama?" if status is not None
                  else error.message)  # not reached, or redirected elsewhere (never followed)
        return HealthReport.from_checks([Check("server", FAIL, detail, remedy=error.remedy),
                                         Check("model", SKIP, "not checked")],
                                        latency_s=time.perf_counter() - started if status else None)
    latency = time.perf_counter() - started
    try:
        tags: Any = yield kit.Call(where, "GET", "api/tags", timeout=timeout)
    except LLMSwitchError as error:
        tags = error
    checks = [Check("server", PASS, f"Ollama {version.get('version') or 'unknown version'} at {url} answered in "
                    f"{latency * 1000:.0f} ms")]
    checks.append(model_check(target, tags))
    return HealthReport.from_checks(checks, latency_s=latency)


def model_check(target: Target, tags: Mapping[str, Any] | LLMSwitchError) -> Check:
    if isinstance(tags, LLMSwitchError):
        return Check("model", WARN, f"could not list the pulled models ({tags.message})")
    models = tags.get("models")
    if not isinstance(models, list):
        return Check("model", WARN, "the list of pulled models came back in an unexpected shape")
    pulled = [str(entry.get("name") or entry.get("model")) for entry in models
              if isinstance(entry, Mapping) and (entry.get("name") or entry.get("model"))]
    wanted = {target.model, target.model if ":" in target.model else f"{target.model}:latest"}
    if wanted & set(pulled):
        return Check("model", PASS, f"'{target.model}' is pulled")
    suggestions = close_matches(target.model, pulled)
    shown = ", ".join(pulled[:SHOWN_MODELS]) + (f" and {len(pulled) - SHOWN_MODELS} more"
                                               if len(pulled) > SHOWN_MODELS else "")
    remedy = pull_remedy(target) + (f"; did you mean '{suggestions[0]}'?" if suggestions else "") + (
        f" (pulled: {shown})" if pulled else " (no model is pulled yet)")
    return Check("model", FAIL, f"'{target.model}' is not pulled on this server", remedy=remedy)
