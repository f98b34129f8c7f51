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

The JSON ``llmswitch doctor --json`` prints is described in :mod:`llmswitch.doctor.report`; the checks, one
function per step, are in :mod:`llmswitch.doctor.checks`.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from llmswitch import remedies
from llmswitch.doctor.checks import (
    check_backend,
    check_config,
    check_key,
    check_money,
    check_plugin,
    hook_bound,
)
from llmswitch.doctor.report import Diagnosis, DoctorReport, PluginReport, finish
from llmswitch.secrets import redact
from llmswitch.types import Check, CheckStatus

if TYPE_CHECKING:
    from llmswitch.client import Client
    from llmswitch.plugins import Registry
    from llmswitch.profiles import Profile

DEFAULT_TIMEOUT = 10.0
# Beyond the hooks' bound, time allowed for the core's own checks before a profile is given up on.
CORE_GRACE_S = 5.0


def diagnose(
    client: Client,
    profile: Profile | str,
    *,
    registry: Registry | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    offline: bool = False,
) -> Diagnosis:
    """Check one profile, in this thread; its health hook is bounded by :func:`hook_bound`."""
    if isinstance(profile, str):
        profile = client.store.get(profile)
    if "route" in profile.settings:
        from llmswitch.doctor.route import diagnose_route

        return diagnose_route(client, profile, lambda member: diagnose(
            client, member, registry=registry, timeout=timeout, offline=offline))
    from llmswitch.accounting import budgets_of

    diagnosis = Diagnosis(profile.name, backend=profile.backend, model=profile.model)
    handle = check_plugin(diagnosis, profile, registry or client.registry)
    resolved = check_config(diagnosis, profile, handle) if handle is not None else None
    if resolved is None:
        return finish(diagnosis)
    if budgets_of(resolved.settings):
        resolved.state = client.router_state  # spend shared through it counts (opened only for a budget)
    key_check, diagnosis.key = check_key(resolved.target, resolved.target.key_is_required)
    if key_check is not None:
        diagnosis.checks.append(key_check)
    after_the_backend = check_money(diagnosis, resolved)
    if key_check is not None and key_check.status is CheckStatus.FAIL:
        diagnosis.checks.append(Check("health", CheckStatus.SKIP, "not checked until the key is set"))
    else:
        check_backend(diagnosis, resolved, timeout=timeout, offline=offline)
    diagnosis.checks.extend(after_the_backend)
    return finish(diagnosis)


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




__all__ = ["CORE_GRACE_S", "DEFAULT_TIMEOUT", "Diagnosis", "DoctorReport", "diagnose", "hook_bound",
           "iter_diagnoses", "run_doctor"]
