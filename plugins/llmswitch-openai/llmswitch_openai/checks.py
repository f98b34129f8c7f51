"""``health``: is the profile configured, does it have a key, is the server up, does it accept the key, and
does it serve the model? One ``GET /models`` with the key answers the last three."""

from __future__ import annotations

import time

from llmswitch import kit
from llmswitch.kit import (
    AuthError,
    Check,
    CheckStatus,
    HealthReport,
    LLMSwitchError,
    ModelNotFoundError,
    RedirectError,
    Target,
    UnreachableError,
)
from llmswitch_openai.calls import models_call
from llmswitch_openai.errors import key_origin, model_not_found, server_name
from llmswitch_openai.wire import model_ids

NETWORK_CHECKS = ("server", "key accepted", "model")


def key_check(target: Target) -> Check:
    if target.api_key is not None:
        return Check("key", CheckStatus.PASS, f"{target.api_key.masked} from {key_origin(target)}")
    if target.key_is_required:
        variable = target.key_variable or "OPENAI_API_KEY"
        return Check(
            "key",
            CheckStatus.FAIL,
            f"{variable} is not set",
            remedy=f"export {variable}=... (or put it in a .env file, or pass --api-key)",
        )
    detail = "none (this server is used without a key)"
    if target.notes:
        detail += "; " + "; ".join(target.notes)
    return Check("key", CheckStatus.PASS, detail)


def health(target: Target, timeout: float, offline: bool) -> kit.Checks:
    """The checks, once for ``health`` and ``ahealth`` (:func:`llmswitch.kit.run_checks`)."""
    checks = [Check("endpoint", CheckStatus.PASS, f"{target.base_url}, model {target.model}"), key_check(target)]
    if offline:
        checks += [Check(name, CheckStatus.SKIP, "offline") for name in NETWORK_CHECKS]
        return HealthReport.from_checks(checks)
    if checks[-1].status is CheckStatus.FAIL:
        checks += [Check(name, CheckStatus.SKIP, "no key to try") for name in NETWORK_CHECKS]
        return HealthReport.from_checks(checks)

    started = time.perf_counter()
    try:
        document = yield models_call(target, timeout)
    except (UnreachableError, RedirectError) as exc:  # a redirect is not followed: no call can succeed
        checks.append(Check("server", CheckStatus.FAIL, exc.message, exc.remedy))
        return HealthReport.from_checks(checks + _skipped("server unreachable"))
    except AuthError as exc:
        checks.append(Check("server", CheckStatus.PASS, f"{server_name(target)} answered"))
        checks.append(Check("key accepted", CheckStatus.FAIL, exc.message, exc.remedy))
        checks.append(Check("model", CheckStatus.SKIP, "key refused"))
        return HealthReport.from_checks(checks, latency_s=time.perf_counter() - started)
    except LLMSwitchError as exc:
        # Up, but /models failed (a proxy without it, a 5xx, a timeout): chat may still work.
        checks.append(Check("server", CheckStatus.WARN, f"listing models failed: {exc.message}", exc.remedy))
        return HealthReport.from_checks(checks + _skipped("could not list models"))
    latency = time.perf_counter() - started

    checks.append(Check("server", CheckStatus.PASS, f"{server_name(target)} answered in {latency * 1000:.0f} ms"))
    checks.append(Check("key accepted", CheckStatus.PASS, "listed models with it"))
    served = model_ids(document)
    if served is None:
        checks.append(Check("model", CheckStatus.WARN, "the server's model list is not in the usual format"))
    elif target.model in served:
        checks.append(Check("model", CheckStatus.PASS, f"'{target.model}' is served"))
    else:
        missing: ModelNotFoundError = model_not_found(target, served)
        checks.append(Check("model", CheckStatus.FAIL, missing.message, missing.remedy))
    metrics = {"models_served": float(len(served))} if served is not None else {}
    return HealthReport.from_checks(checks, latency_s=latency, **metrics)


def _skipped(reason: str) -> list[Check]:
    return [Check(name, CheckStatus.SKIP, reason) for name in NETWORK_CHECKS[1:]]
