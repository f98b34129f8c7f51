"""``llmswitch doctor`` for an ollama profile: is the server up, and is the model pulled.

Two cheap calls that load no model: ``GET /api/version`` and ``GET /api/tags``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from llmswitch.errors import close_matches
from llmswitch.types import Check, CheckStatus, HealthReport, Target
from llmswitch_ollama.errors import base_url, from_exception, from_status, pull_remedy, redirected
from llmswitch_ollama.transport import http_client

PASS, WARN, FAIL, SKIP = CheckStatus.PASS, CheckStatus.WARN, CheckStatus.FAIL, CheckStatus.SKIP
SHOWN_MODELS = 8


def health(target: Target, timeout: float, offline: bool) -> HealthReport:
    url = base_url(target)
    if offline:
        return HealthReport.from_checks([Check("server", SKIP, f"offline: {url} was not contacted")])
    try:
        client = http_client(target)
        started = time.perf_counter()
        version_response = client.get("/api/version", timeout=timeout)
        latency = time.perf_counter() - started
        tags_response = client.get("/api/tags", timeout=timeout) if version_response.status_code < 300 else None
    except Exception as exc:  # every failure becomes a failed check, never an exception out of doctor
        error = from_exception(exc, target, during_answer=False)
        message = error.message if error else f"{type(exc).__name__}: {exc}"
        return HealthReport.from_checks([
            Check("server", FAIL, message, remedy=error.remedy if error else None),
            Check("model", SKIP, "not checked"),
        ])
    redirect = redirected(target, version_response)
    if redirect is not None:
        return HealthReport.from_checks([Check("server", FAIL, redirect.message, remedy=redirect.remedy),
                                         Check("model", SKIP, "not checked")], latency_s=latency)
    if version_response.status_code >= 400:
        error = from_status(target, version_response.status_code, version_response.content)
        return HealthReport.from_checks([
            Check("server", FAIL, f"{url} answered HTTP {version_response.status_code} for /api/version: is it "
                  "Ollama?", remedy=error.remedy),
            Check("model", SKIP, "not checked"),
        ], latency_s=latency)
    version = _field(version_response, "version") or "unknown version"
    checks = [Check("server", PASS, f"Ollama {version} at {url} answered in {latency * 1000:.0f} ms")]
    checks.append(model_check(target, tags_response))
    return HealthReport.from_checks(checks, latency_s=latency)


def model_check(target: Target, response: Any) -> Check:
    if response is None or response.status_code >= 400:
        status = "no answer" if response is None else f"HTTP {response.status_code}"
        return Check("model", WARN, f"could not list the pulled models ({status})")
    models = _field(response, "models")
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


def _field(response: Any, name: str) -> Any:
    try:
        payload = response.json()
    except ValueError:
        return None
    return payload.get(name) if isinstance(payload, Mapping) else None
