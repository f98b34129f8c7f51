"""Check that profiles can answer, all at once, and say what to do about whatever cannot.

For each profile: the plugin (installed, loaded, distribution and version), the configuration (valid for its
backend), the key (present, masked, and where it came from), then the backend's own ``health`` hook
(reachable, authorised, model available, latency; for local models the file, the load and a one-token
generation). Every check that does not pass carries a remedy: the plugin's when it gives one, else the core's
(:mod:`llmswitch.remedies`). Each profile also gets the price of a standard request (500 tokens in, 500 out)
and, when it sets budgets, its spend against them.

Profiles are checked concurrently, each in its own daemon thread, so ten profiles that take a second each
take about a second. A health hook gets ``timeout`` per network check and, as a whole,
``HOOK_CHECKS × timeout``; one that takes longer is reported as timed out and abandoned. (Daemon threads,
not a ``ThreadPoolExecutor``: the executor joins its workers when the interpreter exits, so one hung hook
would keep ``llmswitch doctor`` from ever exiting.)

Library use (the CLI and the TUI's doctor screen)::

    for diagnosis in iter_diagnoses(client, timeout=5):   # in the order they finish
        show(diagnosis)
    report = run_doctor(client, ["openai", "local"], offline=True)   # all of them, sorted by name

JSON schema (``llmswitch doctor --json``; ``schema_version`` changes only when a key is removed or changes
meaning; new keys may be added)::

    {
      "schema_version": 1,
      "ok": true,                       # false when any checked profile is down (exit code 1)
                                        # ("not_checked": nothing failed, but the backend was not asked:
                                        #  --offline, or a plugin without a health hook)
      "offline": false, "timeout_s": 10.0, "duration_s": 1.02,
      "standard_request": {"input_tokens": 500, "output_tokens": 500},
      "profiles": [                     # sorted by profile name
        {
          "profile": "openai", "status": "ok" | "degraded" | "down" | "not_checked",
          "backend": "openai", "model": "gpt-4o-mini", "base_url": "https://api.openai.com/v1" | null,
          "plugin": {"name": "openai", "distribution": "llmswitch-openai", "version": "0.1.0"} | null,
          "base_url_source": "profile" | "env:OPENAI_BASE_URL" | ".env:OPENAI_BASE_URL" | null,  # null: default
          "key": {"required": true, "present": true, "masked": "sk-…abcd" | null,
                  "source": "env:OPENAI_API_KEY" | null, "variable": "OPENAI_API_KEY" | null,
                  "withheld": "why a key that was found is not sent to base_url" | null},
          "checks": [{"name": "plugin", "status": "pass" | "warn" | "fail" | "skip",
                      "detail": "...", "remedy": "..." | null}, ...],
          "latency_s": 0.21 | null,
          "metrics": {"load_s": 1.2, ...},
          "price": {"input_per_mtok": 0.15 | null, "output_per_mtok": 0.6 | null,
                    "cached_input_per_mtok": 0.075 | null, "context_window": 128000 | null,
                    "max_output": 16384 | null, "batch_input_per_mtok": 0.075 | null,
                    "batch_output_per_mtok": 0.3 | null, "source": "openai price table (2025-06-01)",
                    "date": "2025-06-01" | null, "age_days": 540 | null},   # the age of the price's table
          "standard_request_usd": 0.000375 | null,    # null: the price is unknown (never 0 for unknown)
          "budgets": [{"period": "day" | "month", "budget_usd": 1.0, "spent_usd": 0.12}],
          "duration_s": 0.25
        }
      ],
      "broken_plugins": [{"name": "...", "distribution": "..." | null, "version": "..." | null,
                          "error": "...", "remedy": "..."}]
    }

The first checks are always named ``plugin``, ``config`` and ``key`` (when the backend has keys); then
come the hook's own checks (or one named ``health`` when it failed, timed out or was skipped) and, with
budgets, ``budget``.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llmswitch import remedies
from llmswitch.errors import LLMSwitchError
from llmswitch.key_policy import describe_source
from llmswitch.pricing import STANDARD_INPUT_TOKENS, STANDARD_OUTPUT_TOKENS, ModelPrice, price_for
from llmswitch.secrets import redact, redact_url
from llmswitch.types import Check, CheckStatus, HealthReport, Status

if TYPE_CHECKING:
    from llmswitch.accounting import BudgetStatus
    from llmswitch.client import Client, ResolvedProfile
    from llmswitch.plugins import PluginRecord, Registry
    from llmswitch.profiles import Profile
    from llmswitch.types import Target

SCHEMA_VERSION = 1
DEFAULT_TIMEOUT = 10.0
# A health hook makes a few checks (models list, a one-token generation, ...), each allowed ``timeout``.
HOOK_CHECKS = 3
# Beyond the hooks' bound, time allowed for the core's own checks before a profile is given up on.
CORE_GRACE_S = 5.0

_STATUS_ORDER = {Status.OK: 0, Status.NOT_CHECKED: 1, Status.DEGRADED: 2, Status.DOWN: 3}


@dataclass(frozen=True, slots=True)
class PluginReport:
    """The plugin a profile's backend comes from, or a plugin that failed to load."""

    name: str
    distribution: str | None
    version: str | None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "distribution": self.distribution, "version": self.version}


@dataclass(frozen=True, slots=True)
class KeyReport:
    """Whether the profile has the key it needs, masked, and where it was found."""

    required: bool
    present: bool
    masked: str | None = None
    source: str | None = None  # "flag", "profile", "env:NAME", ".env:NAME"
    variable: str | None = None
    withheld: str | None = None  # why a key that was found is not sent to the base URL (llmswitch.key_policy)

    def as_dict(self) -> dict[str, Any]:
        return {"required": self.required, "present": self.present, "masked": self.masked,
                "source": self.source, "variable": self.variable, "withheld": self.withheld}


@dataclass
class Diagnosis:
    """Everything doctor found about one profile."""

    profile: str
    status: Status = Status.DOWN
    backend: str = ""
    model: str | None = None
    base_url: str | None = None
    base_url_source: str | None = None
    plugin: PluginReport | None = None
    key: KeyReport | None = None
    checks: list[Check] = field(default_factory=list)
    latency_s: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    price: ModelPrice | None = None
    budgets: list[BudgetStatus] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def standard_request_usd(self) -> float | None:
        """The estimated cost of 500 input + 500 output tokens; None when the price is unknown."""
        if self.price is None:
            return None
        return self.price.cost(STANDARD_INPUT_TOKENS, STANDARD_OUTPUT_TOKENS)

    def problems(self) -> list[Check]:
        """The checks that failed or warned, in order."""
        return [c for c in self.checks if c.status in (CheckStatus.FAIL, CheckStatus.WARN)]

    def skipped(self) -> list[Check]:
        """The checks that were not made (offline, no health hook, nothing to try without a key), in order."""
        return [c for c in self.checks if c.status is CheckStatus.SKIP]

    def not_checked_summary(self) -> str:
        """What was not checked and why, in one line: ``server, model: offline``."""
        reasons: dict[str, list[str]] = {}
        for check in self.skipped():
            reasons.setdefault(check.detail or "skipped", []).append(check.name)
        return "; ".join(f"{', '.join(names)}: {reason}" for reason, names in reasons.items())

    def as_dict(self) -> dict[str, Any]:
        price = self.price.as_dict() if self.price is not None else ModelPrice().as_dict()
        usd = self.standard_request_usd
        return {
            "profile": self.profile,
            "status": self.status.value,
            "backend": self.backend,
            "model": self.model,
            "base_url": redact_url(self.base_url) if self.base_url else None,
            "base_url_source": self.base_url_source,
            "plugin": self.plugin.as_dict() if self.plugin is not None else None,
            "key": self.key.as_dict() if self.key is not None else None,
            "checks": [
                {"name": c.name, "status": c.status.value, "detail": redact(c.detail),
                 "remedy": redact(c.remedy) if c.remedy else None}
                for c in self.checks
            ],
            "latency_s": round(self.latency_s, 4) if self.latency_s is not None else None,
            "metrics": dict(self.metrics),
            "price": price,
            "standard_request_usd": round(usd, 10) if usd is not None else None,
            "budgets": [b.as_dict() for b in self.budgets],
            "duration_s": round(self.duration_s, 4),
        }


@dataclass
class DoctorReport:
    """The diagnoses of every checked profile (sorted by name) and the plugins that failed to load."""

    diagnoses: list[Diagnosis]
    broken_plugins: list[PluginReport]
    timeout: float
    offline: bool
    duration_s: float

    @property
    def ok(self) -> bool:
        """True when no checked profile is down."""
        return all(d.status is not Status.DOWN for d in self.diagnoses)

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "ok": self.ok,
            "offline": self.offline,
            "timeout_s": self.timeout,
            "duration_s": round(self.duration_s, 4),
            "standard_request": {"input_tokens": STANDARD_INPUT_TOKENS, "output_tokens": STANDARD_OUTPUT_TOKENS},
            "profiles": [d.as_dict() for d in self.diagnoses],
            "broken_plugins": [
                {**p.as_dict(), "error": redact(p.error or ""), "remedy": broken_plugin_remedy(p)}
                for p in self.broken_plugins
            ],
        }


# ---- running ------------------------------------------------------------------------------------------


def hook_bound(timeout: float) -> float:
    """How long a whole health hook may take before doctor reports it timed out."""
    return HOOK_CHECKS * timeout


def iter_diagnoses(
    client: Client, names: Sequence[str] | None = None, *, timeout: float = DEFAULT_TIMEOUT, offline: bool = False
) -> Iterator[Diagnosis]:
    """Check the named profiles (all when None) concurrently; yield each diagnosis as it completes.

    Unknown names raise ProfileNotFoundError before anything starts. Every profile yields exactly one
    diagnosis, within about ``hook_bound(timeout)`` seconds, whatever its plugin does.
    """
    profiles = _profiles(client, names)
    registry = client.registry  # load the plugins once, here, not racing in every thread
    results: queue.Queue[Diagnosis] = queue.Queue()

    def work(profile: Profile) -> None:
        started = time.perf_counter()
        try:
            diagnosis = diagnose(client, profile, registry=registry, timeout=timeout, offline=offline)
        except Exception as exc:  # a bug in one check must not lose the profile
            diagnosis = Diagnosis(profile.name, backend=profile.backend, model=profile.model, checks=[Check(
                "doctor", CheckStatus.FAIL, redact(f"the check itself failed: {type(exc).__name__}: {exc}"),
                "run with LLMSWITCH_DEBUG=1 and report this bug in llmswitch")])
        diagnosis.duration_s = time.perf_counter() - started
        results.put(diagnosis)

    for profile in profiles:
        threading.Thread(target=work, args=(profile,), name=f"doctor-{profile.name}", daemon=True).start()
    deadline = time.monotonic() + hook_bound(timeout) + CORE_GRACE_S
    pending = {profile.name: profile for profile in profiles}
    while pending:
        try:
            diagnosis = results.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        pending.pop(diagnosis.profile, None)
        yield diagnosis
    for profile in pending.values():  # only when the core's own checks hung (a stuck file system...)
        yield Diagnosis(profile.name, backend=profile.backend, model=profile.model, checks=[Check(
            "doctor", CheckStatus.FAIL, f"no result within {hook_bound(timeout) + CORE_GRACE_S:g}s",
            remedies.timed_out(None, timeout))])


def run_doctor(
    client: Client,
    names: Sequence[str] | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    offline: bool = False,
    on_result: Callable[[Diagnosis], None] | None = None,
) -> DoctorReport:
    """Check the profiles concurrently and return every diagnosis, sorted by name.

    ``on_result`` is called with each diagnosis as it completes (progress in a UI).
    """
    started = time.perf_counter()
    diagnoses = []
    for diagnosis in iter_diagnoses(client, names, timeout=timeout, offline=offline):
        diagnoses.append(diagnosis)
        if on_result is not None:
            on_result(diagnosis)
    diagnoses.sort(key=lambda d: d.profile)
    broken = [PluginReport(r.name, r.distribution, r.version, r.error) for r in client.registry.failed()]
    return DoctorReport(diagnoses, broken, timeout, offline, time.perf_counter() - started)


def _profiles(client: Client, names: Sequence[str] | None) -> list[Profile]:
    wanted: Iterable[str] = names if names else client.store.names()
    unique = list(dict.fromkeys(wanted))
    return [client.store.get(name) for name in unique]


# ---- one profile --------------------------------------------------------------------------------------


def diagnose(
    client: Client,
    profile: Profile | str,
    *,
    registry: Registry | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    offline: bool = False,
) -> Diagnosis:
    """Check one profile, in this thread; its health hook is bounded by :func:`hook_bound`."""
    from llmswitch.client import ResolvedProfile, build_target
    from llmswitch.profile_settings import model_in_use
    from llmswitch.profiles import validate

    if isinstance(profile, str):
        profile = client.store.get(profile)
    registry = registry or client.registry
    diagnosis = Diagnosis(profile.name, backend=profile.backend, model=profile.model)
    checks = diagnosis.checks

    # The plugin.
    try:
        if not profile.backend:
            raise LLMSwitchError(f"profile '{profile.name}' names no backend",
                                 remedy=f"add backend = \"...\" to [profiles.{profile.name}]")
        handle = registry.backend(profile.backend)
    except LLMSwitchError as error:
        checks.append(plugin_failure_check(profile.backend, error, registry))
        return _finish(diagnosis)
    record = handle.plugin
    diagnosis.plugin = PluginReport(record.name, record.distribution, record.version)
    version = f" {record.version}" if record.version else ""
    checks.append(Check("plugin", CheckStatus.PASS,
                        f"{record.name} from {record.distribution or 'an unknown distribution'}{version}"))

    # The configuration.
    try:
        settings = validate(profile, handle.info)
    except LLMSwitchError as error:
        checks.append(Check("config", CheckStatus.FAIL, redact(error.message),
                            error.remedy or f"fix [profiles.{profile.name}] in {profile.source}"))
        return _finish(diagnosis)
    target = build_target(profile, handle, settings)
    # The model file a local backend runs, when the profile names one, is the model worth showing.
    diagnosis.model, diagnosis.base_url = model_in_use(settings, handle.info) or target.model, target.base_url
    diagnosis.base_url_source = target.base_url_source
    if not target.model:
        checks.append(Check("config", CheckStatus.FAIL, "no model: the profile names none and the backend has "
                            "no default", f"add model = \"...\" to [profiles.{profile.name}]"))
        return _finish(diagnosis)
    checks.append(Check("config", CheckStatus.PASS, f"valid for backend {handle.info.name} ({profile.source})"))

    # The key.
    key_check, diagnosis.key = check_key(target, target.key_is_required)
    if key_check is not None:
        checks.append(key_check)

    # Price and budgets cost nothing on the network: do them before the hook.
    diagnosis.price = price_for(handle.info, target.model, settings, target.base_url)
    budget_check = check_budgets(diagnosis, settings)
    price_age_check = check_price_age(diagnosis.price)

    # The backend's own checks.
    if key_check is not None and key_check.status is CheckStatus.FAIL:
        checks.append(Check("health", CheckStatus.SKIP, "not checked until the key is set"))
    else:
        resolved = ResolvedProfile(profile=profile, handle=handle, settings=settings, target=target)
        report = run_health(resolved, timeout=timeout, offline=offline)
        # A hook that repeats one of the core's checks (its own "key" check) adds nothing: keep one.
        seen = {(c.name, c.status) for c in checks}
        checks.extend(c for c in with_remedies(report.checks, target, timeout) if (c.name, c.status) not in seen)
        diagnosis.latency_s = report.latency_s
        diagnosis.metrics = dict(report.metrics)
        if report.status is Status.DOWN and not any(c.status is CheckStatus.FAIL for c in report.checks):
            checks.append(Check("health", CheckStatus.FAIL, "the backend reports itself down",
                                remedies.remedy_for_text(" ".join(c.detail for c in report.checks), target)))
    if budget_check is not None:
        checks.append(budget_check)
    if price_age_check is not None:
        checks.append(price_age_check)
    return _finish(diagnosis)


def check_price_age(price: ModelPrice) -> Check | None:
    """A warning when the price in use comes from a table older than ``STALE_AFTER_DAYS`` (free ones aside)."""
    from llmswitch.pricing import STALE_AFTER_DAYS, format_age

    age = price.age_days()
    if age is None or age <= STALE_AFTER_DAYS or not price.known or price.free:
        return None
    return Check("prices", CheckStatus.WARN, f"the price comes from the {price.source}, {format_age(age)}",
                 "refresh the prices with `llmswitch prices update` (or set price_input_per_mtok and "
                 "price_output_per_mtok in the profile)")


def _finish(diagnosis: Diagnosis) -> Diagnosis:
    """Any failure: down; any warning: degraded; else a skipped check (offline, no health hook): not checked."""
    status = HealthReport.from_checks(diagnosis.checks).status
    if status is Status.OK and diagnosis.skipped():
        status = Status.NOT_CHECKED
    diagnosis.status = status
    return diagnosis


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


def broken_plugin_remedy(plugin: PluginReport) -> str:
    from_text = remedies.remedy_for_text(plugin.error or "", None)
    if from_text:
        return from_text
    dist = plugin.distribution or plugin.name
    return (f"reinstall it (`pip install --force-reinstall {dist}`); if it still fails, run "
            f"`LLMSWITCH_DEBUG=1 llmswitch plugins` and report the error to {dist}")


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


def check_budgets(diagnosis: Diagnosis, settings: Mapping[str, Any]) -> Check | None:
    """Spend against budgets; None when the profile sets none."""
    from llmswitch.accounting import budget_status, budgets_of
    from llmswitch.pricing import format_usd

    if not budgets_of(settings):
        return None
    try:
        diagnosis.budgets = budget_status(diagnosis.profile, settings)
    except LLMSwitchError as error:
        return Check("budget", CheckStatus.WARN, f"spend unknown: {error.message}", error.remedy)
    spent = "; ".join(f"{format_usd(b.spent_usd)} of {format_usd(b.budget_usd)} "
                      f"{'today' if b.period == 'day' else 'this month'}" for b in diagnosis.budgets)
    if diagnosis.price is None or not diagnosis.price.known:
        return Check("budget", CheckStatus.FAIL, f"{spent}; the price is unknown, so every call is refused",
                     f"set price_input_per_mtok and price_output_per_mtok in [profiles.{diagnosis.profile}], "
                     "or remove its budget")
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


def with_remedies(checks: Iterable[Check], target: Target, timeout: float) -> list[Check]:
    """The hook's checks, each failure or warning given the core's remedy when the plugin gave none.

    A plugin's detail and remedy may quote what a server said, key included: both are redacted here, once,
    for every face that shows them (text, --json, the TUI).
    """
    completed = []
    for check in checks:
        remedy = redact(check.remedy) if check.remedy else None
        if check.status in (CheckStatus.FAIL, CheckStatus.WARN) and not remedy:
            remedy = remedies.remedy_for_text(f"{check.name}: {check.detail}", target, timeout=timeout)
        completed.append(Check(check.name, check.status, redact(check.detail), remedy))
    return completed
