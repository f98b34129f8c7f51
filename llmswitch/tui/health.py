"""Profile health for the picker and the doctor screen, as rows that fill in as checks finish.

The checks are :mod:`llmswitch.doctor`'s (concurrent, with a remedy for every problem); results arrive one by
one, from worker threads.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from llmswitch.client import Client
from llmswitch.errors import LLMSwitchError
from llmswitch.record import record
from llmswitch.secrets import redact
from llmswitch.types import CheckStatus, Status

DEFAULT_TIMEOUT_S = 5.0


@record(slots=False)
class ProfileChoice:
    """A profile as the picker lists it before any check: usable or not, and why not."""

    name: str
    backend: str
    model: str
    description: str = ""
    unavailable: str | None = None  # why it cannot be used (its plugin failed to load, bad config, ...)


@record(slots=False)
class HealthRow:
    """One profile's health, reduced to what a table row shows."""

    profile: str
    status: str  # "ok", "degraded", "down"
    backend: str = ""
    model: str = ""
    latency_s: float | None = None
    summary: str = ""
    remedy: str | None = None


def profile_choices(client: Client) -> list[ProfileChoice]:
    """Every profile, each resolved (no network) to find the ones that cannot work at all."""
    choices = []
    for profile in client.store.all():
        model = profile.model or ""
        try:
            resolved = client.resolve(profile.name)
        except LLMSwitchError as error:
            reason = redact(error.message)
            choices.append(ProfileChoice(profile.name, profile.backend, model, profile.description, reason))
            continue
        # A route shows its kind and its members where a profile shows its backend and model.
        choices.append(ProfileChoice(profile.name, resolved.target.backend, resolved.target.model, profile.description))
    return choices


def broken_plugins(client: Client) -> list[tuple[str, str]]:
    """(name, error) of each plugin that failed to load."""
    return [(record.name, redact(record.error or "")) for record in client.registry.failed()]


def check_profiles(
    client: Client, names: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT_S
) -> Iterator[HealthRow]:
    """Check ``names`` concurrently; yield each row as its check completes. Call from a worker thread."""
    from llmswitch import doctor

    for diagnosis in doctor.iter_diagnoses(client, list(names), timeout=timeout):
        problems = diagnosis.problems()
        first = problems[0] if problems else None
        passed = [check.detail for check in diagnosis.checks if check.status is CheckStatus.PASS and check.detail]
        if diagnosis.status is Status.NOT_CHECKED:
            passed.append(diagnosis.not_checked_summary())
        yield HealthRow(
            profile=diagnosis.profile,
            status=diagnosis.status.value.replace("_", " "),
            backend=diagnosis.backend,
            model=diagnosis.model or "",
            latency_s=diagnosis.latency_s,
            summary=redact(f"{first.name}: {first.detail}" if first else (passed[-1] if passed else "ok")),
            remedy=redact(first.remedy) if first and first.remedy else None,
        )

