"""What doctor found: one :class:`Diagnosis` per profile, a :class:`DoctorReport` for a run, as JSON.

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
          "standard_request_usd_range": [0.000375, 0.000375] | null,   # a route: cheapest and dearest member
          "budgets": [{"period": "day" | "month", "budget_usd": 1.0, "spent_usd": 0.12}],  # a route: its own
          "duration_s": 0.25,
          "members": [...]              # a route: each member's own object, as above (nested routes nest); else []
        }
      ],
      "broken_plugins": [{"name": "...", "distribution": "..." | null, "version": "..." | null,
                          "error": "...", "remedy": "..."}]
    }

The first checks are always named ``plugin``, ``config`` and ``key`` (when the backend has keys); then
come the hook's own checks (or one named ``health`` when it failed, timed out or was skipped) and, with
budgets, ``budget``. A route (``backend`` is its kind: fallback, pool, split; ``plugin`` and ``key`` null) has a
check named ``route`` (its verdict), one ``member NAME`` per member, and ``budget`` when it sets one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llmswitch import remedies
from llmswitch.pricing import STANDARD_INPUT_TOKENS, STANDARD_OUTPUT_TOKENS, ModelPrice
from llmswitch.record import record
from llmswitch.secrets import redact, redact_url
from llmswitch.types import Check, CheckStatus, HealthReport, Status

if TYPE_CHECKING:
    from llmswitch.accounting import BudgetStatus

SCHEMA_VERSION = 1


@record
class PluginReport:
    """The plugin a profile's backend comes from, or a plugin that failed to load."""

    name: str
    distribution: str | None
    version: str | None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "distribution": self.distribution, "version": self.version}


@record
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
    is_route: bool = False
    members: list[Diagnosis] = field(default_factory=list)  # a route's members, each diagnosed as itself

    @property
    def standard_request_usd(self) -> float | None:
        """The estimated cost of 500 input + 500 output tokens; None when the price is unknown (a route: see
        :meth:`standard_request_range`)."""
        if self.price is None:
            return None
        return self.price.cost(STANDARD_INPUT_TOKENS, STANDARD_OUTPUT_TOKENS)

    def leaves(self) -> list[Diagnosis]:
        """The profiles that answer for this one: itself, or a route's members at any depth."""
        if not self.is_route:
            return [self]
        return [leaf for member in self.members for leaf in member.leaves()]

    def standard_request_range(self) -> tuple[float, float] | None:
        """The cheapest and dearest standard request among the profiles that may answer (a route: its members
        whose price is known); None when no price is known."""
        known = [usd for leaf in self.leaves() if (usd := leaf.standard_request_usd) is not None]
        return (min(known), max(known)) if known else None

    def unpriced(self) -> list[str]:
        """The profiles that may answer whose price is unknown (a route's members, at any depth)."""
        return [leaf.profile for leaf in self.leaves() if leaf.standard_request_usd is None]

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
            "standard_request_usd_range": list(span) if (span := self.standard_request_range()) else None,
            "budgets": [b.as_dict() for b in self.budgets],
            "duration_s": round(self.duration_s, 4),
            "members": [member.as_dict() for member in self.members],
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


def finish(diagnosis: Diagnosis) -> Diagnosis:
    """Any failure: down; any warning: degraded; else a skipped check (offline, no health hook): not checked."""
    status = HealthReport.from_checks(diagnosis.checks).status
    if status is Status.OK and diagnosis.skipped():
        status = Status.NOT_CHECKED
    diagnosis.status = status
    return diagnosis


def broken_plugin_remedy(plugin: PluginReport) -> str:
    """What to do about a plugin that failed to load: the remedy its error calls for, else reinstalling it."""
    from_text = remedies.remedy_for_text(plugin.error or "", None)
    if from_text:
        return from_text
    dist = plugin.distribution or plugin.name
    return (f"reinstall it (`pip install --force-reinstall {dist}`); if it still fails, run "
            f"`LLMSWITCH_DEBUG=1 llmswitch plugins` and report the error to {dist}")

