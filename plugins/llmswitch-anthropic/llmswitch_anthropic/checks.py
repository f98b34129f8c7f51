"""``llmswitch doctor`` for an anthropic profile: key present, server reachable, key accepted, model served.

One cheap authorised call, ``GET /v1/models``, answers the last three at once and costs no tokens.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from llmswitch import kit
from llmswitch.kit import (
    AuthError,
    Check,
    CheckStatus,
    HealthReport,
    LLMSwitchError,
    RateLimitError,
    RedirectError,
    Target,
)
from llmswitch_anthropic.calls import endpoint
from llmswitch_anthropic.errors import key_origin, key_variable, server_name
from llmswitch_anthropic.info import DEFAULT_MODEL, KEYS_PAGE, RETIRED_MODELS

PASS, WARN, FAIL, SKIP = CheckStatus.PASS, CheckStatus.WARN, CheckStatus.FAIL, CheckStatus.SKIP
SHOWN_MODELS = 8


def health(target: Target, timeout: float, offline: bool) -> kit.Checks:
    """The checks, once for ``health`` and ``ahealth`` (:func:`llmswitch.kit.run_checks`)."""
    checks = [key_check(target)]
    if offline:
        checks.append(Check("reachable", SKIP, "offline: the server was not contacted"))
        return HealthReport.from_checks(checks)
    if checks[0].status is FAIL:
        checks.append(Check("reachable", SKIP, "not contacted without a key"))
        return HealthReport.from_checks(checks)
    try:
        call = kit.Call(endpoint(target), "GET", "v1/models?limit=1000", timeout=timeout)
        started = time.perf_counter()
        payload = yield call
        latency = time.perf_counter() - started
    except LLMSwitchError as error:  # every failure becomes a failed check, never an exception out of doctor
        checks.extend(failure_checks(target, error))
        return HealthReport.from_checks(checks)
    who = server_name(target)
    checks.append(Check("reachable", PASS, f"{who} answered in {latency * 1000:.0f} ms"))
    checks.append(Check("authorised", PASS, f"{key_origin(target)} was accepted"))
    checks.append(model_check(target, payload))
    return HealthReport.from_checks(checks, latency_s=latency)


def key_check(target: Target) -> Check:
    notes = ("; " + "; ".join(target.notes)) if target.notes else ""
    if target.api_key is not None:
        return Check("key", PASS, key_origin(target) + notes)
    variable = key_variable(target)
    if target.key_is_required:
        return Check(
            "key", FAIL, f"no API key: {variable} is not set" + notes,
            remedy=f"export {variable}=... with a key from {KEYS_PAGE} (or put it in a .env file here)",
        )
    return Check("key", PASS, "none sent (a custom base_url; set api_key_env to send one)" + notes)


def model_check(target: Target, payload: Any) -> Check:
    data = payload.get("data") if isinstance(payload, Mapping) else None
    if not isinstance(data, list):
        return Check("model", WARN, "the model list came back in an unexpected shape; the model was not checked")
    served = [str(item.get("id")) for item in data if isinstance(item, Mapping) and item.get("id")]
    model = target.model
    # Aliases such as claude-sonnet-4-5 name dated snapshots (claude-sonnet-4-5-20250929) in the list.
    match = next((name for name in served if name == model), None) or next(
        (name for name in served if name.startswith(model + "-")), None
    )
    if match is not None:
        detail = f"'{model}' is served" + (f" (as {match})" if match != model else "")
        end_of_life = retirement_date(model) or retirement_date(match)
        if end_of_life:
            return Check("model", WARN, f"{detail}, but deprecated: end of life on {end_of_life}",
                         remedy=f"move profile '{target.profile}' to a current model (e.g. {DEFAULT_MODEL}) before then")
        return Check("model", PASS, detail)
    from llmswitch.kit import close_matches

    suggestions = close_matches(model, served)
    listed = ", ".join(served[:SHOWN_MODELS]) + (f" and {len(served) - SHOWN_MODELS} more" if len(served) > SHOWN_MODELS else "")
    remedy = (f"did you mean '{suggestions[0]}'? " if suggestions else "") + (
        f"served: {listed}" if served else "the key can use no model"
    )
    status = WARN if payload.get("has_more") else FAIL  # a later page may still list it
    return Check("model", status, f"'{model}' is not in the list of models this key can use", remedy=remedy)


def retirement_date(model: str) -> str | None:
    """When the model reaches end of life (the plugin's own table, offline), or None."""
    return RETIRED_MODELS.get(model)


def failure_checks(target: Target, error: LLMSwitchError) -> list[Check]:
    """Checks for a models call that failed: which step failed, and what to do."""
    status_code = getattr(error, "status_code", None)
    if status_code is None or isinstance(error, RedirectError):  # not reached, or pointed elsewhere (not followed)
        return [
            Check("reachable", FAIL, error.message, remedy=error.remedy),
            Check("authorised", SKIP, "not checked"),
            Check("model", SKIP, "not checked"),
        ]
    reachable = Check("reachable", PASS, f"{server_name(target)} answered (HTTP {status_code})")
    if isinstance(error, AuthError):
        return [reachable, Check("authorised", FAIL, error.message, remedy=error.remedy), Check("model", SKIP, "not checked")]
    if isinstance(error, RateLimitError):
        return [reachable, Check("authorised", WARN, error.message, remedy=error.remedy), Check("model", SKIP, "not checked")]
    if status_code == 404:
        return [
            reachable,
            Check("authorised", WARN, "this server has no model list (HTTP 404): the key and model were not checked",
                  remedy=error.remedy),
            Check("model", SKIP, "not checked"),
        ]
    return [
        Check("reachable", WARN, error.message, remedy=error.remedy),
        Check("authorised", SKIP, "not checked"),
        Check("model", SKIP, "not checked"),
    ]
