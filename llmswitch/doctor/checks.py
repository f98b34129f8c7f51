"""The checks doctor makes of one profile, in the order it makes them: the plugin, the configuration, the key,
the price and budgets (no network), then the backend's own ``health`` hook, bounded in time. Each adds its
:class:`~llmswitch.types.Check` to the :class:`~llmswitch.doctor.report.Diagnosis`; every check that does not
pass carries a remedy (the plugin's, else the core's from :mod:`llmswitch.remedies`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from llmswitch import remedies
from llmswitch.doctor.report import Diagnosis, KeyReport, PluginReport, broken_plugin_remedy
from llmswitch.errors import LLMSwitchError
from llmswitch.key_policy import describe_source
from llmswitch.pricing import ModelPrice, price_for
from llmswitch.secrets import redact, redact_url
from llmswitch.types import Check, CheckStatus, HealthReport, Status

if TYPE_CHECKING:
    from llmswitch.accounting import BudgetStatus
    from llmswitch.client import ResolvedProfile
    from llmswitch.plugins import BackendHandle, PluginRecord, Registry
    from llmswitch.profiles import Profile
    from llmswitch.router.state import RouterState
    from llmswitch.types import Target

# A health hook makes a few checks (models list, a one-token generation, ...), each allowed ``timeout``.
HOOK_CHECKS = 3


def hook_bound(timeout: float) -> float:
    """How long a whole health hook may take before doctor reports it timed out."""
    return HOOK_CHECKS * timeout


# ---- the steps of one diagnosis, each adding its checks ------------------------------------------------


def check_plugin(diagnosis: Diagnosis, profile: Profile, registry: Registry) -> BackendHandle | None:
    """The plugin behind the profile's backend: installed and loaded (None when not: nothing else to check)."""
    try:
        handle = registry.backend_of(profile)
    except LLMSwitchError as error:
        diagnosis.checks.append(plugin_failure_check(profile.backend, error, registry))
        return None
    record = handle.plugin
    diagnosis.plugin = PluginReport(record.name, record.distribution, record.version)
    version = f" {record.version}" if record.version else ""
    diagnosis.checks.append(Check("plugin", CheckStatus.PASS,
                                  f"{record.name} from {record.distribution or 'an unknown distribution'}{version}"))
    return handle


def check_config(diagnosis: Diagnosis, profile: Profile, handle: BackendHandle) -> ResolvedProfile | None:
    """The profile checked against its backend and resolved, without a network call (None when invalid)."""
    from llmswitch.client import ResolvedProfile, build_target
    from llmswitch.profile_settings import model_in_use
    from llmswitch.profiles import validate

    try:
        settings = validate(profile, handle.info)
    except LLMSwitchError as error:
        diagnosis.checks.append(Check("config", CheckStatus.FAIL, redact(error.message),
                                      error.remedy or f"fix [profiles.{profile.name}] in {profile.source}"))
        return None
    target = build_target(profile, handle, settings)
    # The model file a local backend runs, when the profile names one, is the model worth showing.
    diagnosis.model, diagnosis.base_url = model_in_use(settings, handle.info) or target.model, target.base_url
    diagnosis.base_url_source = target.base_url_source
    if not target.model:
        diagnosis.checks.append(Check("config", CheckStatus.FAIL, "no model: the profile names none and the "
                                      "backend has no default", f"add model = \"...\" to [profiles.{profile.name}]"))
        return None
    diagnosis.checks.append(Check("config", CheckStatus.PASS,
                                  f"valid for backend {handle.info.name} ({profile.source})"))
    return ResolvedProfile(profile=profile, handle=handle, settings=settings, target=target)


def check_money(diagnosis: Diagnosis, resolved: ResolvedProfile) -> list[Check]:
    """The price in use and spend against budgets: nothing on the network, so done before the hook. Returns
    the checks to add after the backend's own (the price's age, the budgets)."""
    target = resolved.target
    diagnosis.price = price_for(resolved.handle.info, target.model, resolved.settings, target.base_url)
    later = [check_budgets(diagnosis, resolved.settings, resolved.state), check_price_age(diagnosis.price)]
    return [check for check in later if check is not None]


def check_backend(diagnosis: Diagnosis, resolved: ResolvedProfile, *, timeout: float, offline: bool) -> None:
    """The backend's own health hook (reachable, authorised, model available, latency), with remedies."""
    target = resolved.target
    report = run_health(resolved, timeout=timeout, offline=offline)
    # A hook that repeats one of the core's checks (its own "key" check) adds nothing: keep one.
    seen = {(c.name, c.status) for c in diagnosis.checks}
    diagnosis.checks.extend(c for c in with_remedies(report.checks, target) if (c.name, c.status) not in seen)
    diagnosis.latency_s = report.latency_s
    diagnosis.metrics = dict(report.metrics)
    if report.status is Status.DOWN and not any(c.status is CheckStatus.FAIL for c in report.checks):
        diagnosis.checks.append(Check("health", CheckStatus.FAIL, "the backend reports itself down",
                                      remedies.remedy_for_text(" ".join(c.detail for c in report.checks), target)))


# ---- the checks --------------------------------------------------------------------------------------------


def check_price_age(price: ModelPrice) -> Check | None:
    """A warning when the price in use comes from a table older than ``STALE_AFTER_DAYS`` (free ones aside)."""
    from llmswitch.pricing import STALE_AFTER_DAYS, format_age

    age = price.age_days()
    if age is None or age <= STALE_AFTER_DAYS or not price.known or price.free:
        return None
    return Check("prices", CheckStatus.WARN, f"the price comes from the {price.source}, {format_age(age)}",
                 "refresh the prices with `llmswitch prices update` (or set price_input_per_mtok and "
                 "price_output_per_mtok in the profile)")


def plugin_failure_check(backend: str, error: LLMSwitchError, registry: Registry) -> Check:
    """Why the profile's backend is not available: not installed, broken, or declared twice."""
    broken = broken_plugin_for(backend, registry)
    if broken is not None:
        version = f" {broken.version}" if broken.version else ""
        report = PluginReport(broken.name, broken.distribution, broken.version, broken.error)
        return Check("plugin", CheckStatus.FAIL,
                     redact(f"plugin {broken.name} ({broken.distribution or '?'}{version}) failed to load: "
                            f"{broken.error}"),
                     broken_plugin_remedy(report))
    return Check("plugin", CheckStatus.FAIL, redact(error.message), error.remedy)


def broken_plugin_for(backend: str, registry: Registry) -> PluginRecord | None:
    """The failed plugin that most likely provides ``backend`` (by entry-point or distribution name)."""
    from llmswitch.plugins import distribution_for

    if not backend:
        return None
    dist = distribution_for(backend)
    failed = registry.failed()
    for record in failed:
        if record.name == backend or record.distribution == dist:
            return record
    return next((r for r in failed if backend in r.name), None)


def check_key(target: Target, required: bool) -> tuple[Check | None, KeyReport | None]:
    """The key: present (masked, and where from), missing, or not needed."""
    info = target.info
    has_keys = bool(info is not None and (info.key_env or "api_key" in target.options))
    if not has_keys:
        return None, None
    notes = "; ".join(target.notes)
    key = target.api_key
    if key is not None:
        report = KeyReport(required, True, key.masked, key.source, target.key_variable)
        detail = f"{key.masked} from {key.source}" + (f" ({notes})" if notes else "")
        return Check("key", CheckStatus.PASS, detail), report
    report = KeyReport(required, False, None, None, target.key_variable, target.key_withheld)
    if target.key_withheld:
        return Check("key", CheckStatus.WARN, target.key_withheld,
                     f"if you trust {redact_url(target.base_url or '')}, set base_url and api_key_env in the "
                     f"profile; if you did not mean to use it, remove the base URL "
                     f"({describe_source(target.base_url_source)})"), report
    if required:
        variable = target.key_variable or "the API key variable"
        return Check("key", CheckStatus.FAIL, f"not set: {variable} is empty in the environment and in .env",
                     remedies.key_missing(target)), report
    detail = "none set; this server does not need one" + (f" ({notes})" if notes else "")
    return Check("key", CheckStatus.PASS, detail), report


def check_budgets(diagnosis: Diagnosis, settings: Mapping[str, Any], state: RouterState | None = None
                  ) -> Check | None:
    """Spend against budgets (the ledger's, or the router state's when larger: shared through Redis); None when
    the profile sets none."""
    from llmswitch.accounting import budget_status, budgets_of

    if not budgets_of(settings):
        return None
    return judge_budgets(
        diagnosis, lambda: budget_status(diagnosis.profile, settings, state=state),
        price_known=diagnosis.price is not None and diagnosis.price.known,
        unknown_price_remedy=f"set price_input_per_mtok and price_output_per_mtok in [profiles.{diagnosis.profile}], "
        "or remove its budget")


def judge_budgets(diagnosis: Diagnosis, statuses: Callable[[], list[BudgetStatus]], *, price_known: bool,
                  unknown_price_remedy: str) -> Check:
    """The budget check of a profile or a route: ``statuses`` read into ``diagnosis.budgets`` and judged (every
    call refused when the price is unknown or a budget is spent)."""
    from llmswitch.pricing import format_usd

    try:
        diagnosis.budgets = statuses()
    except LLMSwitchError as error:
        return Check("budget", CheckStatus.WARN, f"spend unknown: {error.message}", error.remedy)
    spent = "; ".join(f"{format_usd(b.spent_usd)} of {format_usd(b.budget_usd)} "
                      f"{'today' if b.period == 'day' else 'this month'}" for b in diagnosis.budgets)
    if not price_known:
        return Check("budget", CheckStatus.FAIL, f"{spent}; the price is unknown, so every call is refused",
                     unknown_price_remedy)
    spent_out = [b for b in diagnosis.budgets if b.remaining_usd <= 0]
    if spent_out:
        period = spent_out[0].period
        return Check("budget", CheckStatus.WARN, f"{spent}: calls are refused until the budget resets",
                     f"wait for the next {period}, or raise budget_usd_per_{period} in "
                     f"[profiles.{diagnosis.profile}]")
    return Check("budget", CheckStatus.PASS, spent)


def run_health(resolved: ResolvedProfile, *, timeout: float, offline: bool) -> HealthReport:
    """Call the backend's health hook in a daemon thread; give up after :func:`hook_bound` seconds."""
    outcome: list[HealthReport] = []
    failure: list[BaseException] = []

    def call() -> None:
        try:
            outcome.append(resolved.health(timeout=timeout, offline=offline))
        except BaseException as exc:  # noqa: BLE001 - reported below as a failed check
            failure.append(exc)

    worker = threading.Thread(target=call, name=f"health-{resolved.name}", daemon=True)
    worker.start()
    worker.join(hook_bound(timeout))
    target = resolved.target
    if worker.is_alive():
        return HealthReport.from_checks([Check(
            "health", CheckStatus.FAIL,
            f"the {target.backend} plugin's health check gave no answer within {hook_bound(timeout):g}s",
            remedies.timed_out(target, timeout))], latency_s=None)
    if failure:
        exc = failure[0]
        if isinstance(exc, LLMSwitchError):
            return HealthReport.from_checks([Check("health", CheckStatus.FAIL, redact(exc.message),
                                                   remedies.remedy_for_error(exc, target, timeout=timeout))])
        return HealthReport.from_checks([Check("health", CheckStatus.FAIL,
                                               redact(f"{type(exc).__name__}: {exc}"),
                                               "run with LLMSWITCH_DEBUG=1 and report this bug")])
    report = outcome[0]
    if not isinstance(report, HealthReport):
        return HealthReport.from_checks([Check(
            "health", CheckStatus.FAIL, f"the plugin's health hook returned {type(report).__name__}, "
            "not a HealthReport", f"report this bug to {resolved.handle.plugin.distribution or 'the plugin'}")])
    return report


def with_remedies(checks: Iterable[Check], target: Target) -> list[Check]:
    """The hook's checks, each failure or warning given the core's remedy when the plugin gave none.

    A plugin's detail and remedy may quote what a server said, key included: both are redacted here, once,
    for every face that shows them (text, --json, the TUI).
    """
    completed = []
    for check in checks:
        remedy = redact(check.remedy) if check.remedy else None
        if check.status in (CheckStatus.FAIL, CheckStatus.WARN) and not remedy:
            remedy = remedies.remedy_for_text(f"{check.name}: {check.detail}", target)
        completed.append(Check(check.name, check.status, redact(check.detail), remedy))
    return completed
