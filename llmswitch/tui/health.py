"""Profile health for the picker and the doctor screen, as rows that fill in as checks finish.

Uses :mod:`llmswitch.doctor` (concurrent checks, remedies for every problem) when it is there, else calls
each profile's ``health`` hook. Either way results arrive one by one, from worker threads.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from llmswitch.client import Client
from llmswitch.errors import LLMSwitchError
from llmswitch.secrets import redact
from llmswitch.types import CheckStatus, HealthReport, Status

DEFAULT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ProfileChoice:
    """A profile as the picker lists it before any check: usable or not, and why not."""

    name: str
    backend: str
    model: str
    description: str = ""
    unavailable: str | None = None  # why it cannot be used (its plugin failed to load, bad config, ...)


@dataclass(frozen=True)
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
        choices.append(ProfileChoice(profile.name, profile.backend, resolved.target.model, profile.description))
    return choices


def broken_plugins(client: Client) -> list[tuple[str, str]]:
    """(name, error) of each plugin that failed to load."""
    return [(record.name, redact(record.error or "")) for record in client.registry.failed()]


def check_profiles(
    client: Client, names: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT_S
) -> Iterator[HealthRow]:
    """Check ``names`` concurrently; yield each row as its check completes. Call from a worker thread."""
    try:
        from llmswitch import doctor
    except ImportError:
        doctor = None  # type: ignore[assignment]
    if doctor is not None and hasattr(doctor, "iter_diagnoses"):
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
        return
    yield from _check_with_hooks(client, names, timeout)


def _check_with_hooks(client: Client, names: Sequence[str], timeout: float) -> Iterator[HealthRow]:
    import queue
    import threading

    results: queue.Queue[HealthRow] = queue.Queue()

    def work(name: str) -> None:
        results.put(check_one(client, name, timeout))

    for name in names:
        threading.Thread(target=work, args=(name,), daemon=True, name=f"health-{name}").start()
    for _ in names:
        try:
            yield results.get(timeout=timeout * 4 + 5)
        except queue.Empty:
            return


def check_one(client: Client, name: str, timeout: float) -> HealthRow:
    """One profile's health through its hook; any failure becomes a down row with the remedy."""
    try:
        resolved = client.resolve(name)
    except LLMSwitchError as error:
        return HealthRow(name, "down", summary=redact(error.message),
                         remedy=redact(error.remedy) if error.remedy else None)
    target = resolved.target
    try:
        report: HealthReport = resolved.health(timeout=timeout)
    except LLMSwitchError as error:
        return HealthRow(name, "down", target.backend, target.model, summary=redact(error.message),
                         remedy=redact(error.remedy) if error.remedy else None)
    except Exception as error:  # noqa: BLE001 - a plugin bug is a down row, never a crash
        return HealthRow(name, "down", target.backend, target.model,
                         summary=redact(f"{type(error).__name__}: {error}"))
    problems = [check for check in report.checks if check.status in (CheckStatus.FAIL, CheckStatus.WARN)]
    first = problems[0] if problems else None
    return HealthRow(
        name, report.status.value, target.backend, target.model, report.latency_s,
        summary=redact(f"{first.name}: {first.detail}" if first else "ok"),
        remedy=redact(first.remedy) if first and first.remedy else None,
    )
