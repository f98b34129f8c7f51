"""Prometheus metrics for every call, whichever face made it: ``serve``'s ``/metrics``, and a textfile for
``chat``, ``batch`` and the library.

Every attempt is counted once, where its ledger row is written: :func:`llmswitch.accounting.record_call` hands a
finished call (its last attempt) to :meth:`Metrics.observe_call`, and
:func:`llmswitch.router.bookkeeping.record_failed_attempts` each retry or fallback that failed before it to
:meth:`Metrics.observe_attempt`, so a route's failing member and a retried 429 show in ``requests_total`` and
``errors_total``. The gateway counts a call it refused before sending (a missing key, a budget) the same way.
They are on in ``llmswitch serve`` (scraped at ``/metrics``), and in any process started with
``LLMSWITCH_METRICS_FILE=PATH``: each call then adds its counts to PATH in Prometheus' text format, for
node_exporter's textfile collector (``--collector.textfile.directory``; name the file ``*.prom``). Counts add up across processes: short-lived
``chat`` runs accumulate into one file, under a lock.

Off (the default outside ``serve``), this module costs one dictionary lookup per call and prometheus-client is
never imported. Names follow Prometheus' conventions: ``llmswitch_..._total`` counters, ``_seconds``
histograms, ``_usd_total`` for money.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmswitch.accounting import CallCost
    from llmswitch.client import StreamState
    from llmswitch.router.plan import RouterEvent

TEXTFILE_VARIABLE = "LLMSWITCH_METRICS_FILE"
CALL_LABELS = ("profile", "backend", "model")
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
ROUTER_EVENTS = frozenset({"retry", "fallback", "cooldown"})
FIRST_TOKEN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The counters on one prometheus-client registry (a fresh one per instance, so tests do not share)."""

    def __init__(self, textfile: str | os.PathLike[str] | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        try:  # `_created` samples would make counts from many processes impossible to add up
            from prometheus_client import disable_created_metrics

            disable_created_metrics()
        except ImportError:  # prometheus-client < 0.17
            pass
        self.registry = registry = CollectorRegistry()
        self.textfile = Path(textfile) if textfile else None
        self._written: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._lock = threading.Lock()
        self.requests = Counter("llmswitch_requests", "Attempts (each retry and fallback counts) by "
                                "profile, backend, model and outcome (ok, interrupted, cached, or the error kind)", [*CALL_LABELS, "status"], registry=registry)
        self.duration = Histogram("llmswitch_request_duration_seconds", "Time from sending a call to its last "
                                  "event", CALL_LABELS, buckets=DURATION_BUCKETS, registry=registry)
        self.first_token = Histogram("llmswitch_time_to_first_token_seconds", "Time from sending a call to its "
                                     "first text", CALL_LABELS, buckets=FIRST_TOKEN_BUCKETS, registry=registry)
        self.tokens = Counter("llmswitch_tokens", "Tokens by direction (input, output), as reported or counted",
                              [*CALL_LABELS, "direction"], registry=registry)
        self.cost = Counter("llmswitch_cost_usd", "Spend in US dollars (calls whose price is known)", CALL_LABELS,
                            registry=registry)
        self.errors = Counter("llmswitch_errors", "Failed attempts by kind (auth, rate_limited, unreachable, ...)",
                              ["profile", "backend", "kind"], registry=registry)
        self.cache_hits = Counter("llmswitch_cache_hits", "Answers served from the response cache", ["profile"],
                                  registry=registry)
        self.cache_misses = Counter("llmswitch_cache_misses", "Cacheable calls the response cache did not hold",
                                    ["profile"], registry=registry)
        self.in_flight = Gauge("llmswitch_requests_in_flight", "Calls being answered now (serve)", ["profile"],
                               registry=registry)
        self.http_requests = Counter("llmswitch_http_requests", "Gateway HTTP requests by path and status code",
                                     ["path", "code"], registry=registry)
        self.router_retries = Counter("llmswitch_router_retries", "Attempts a route repeated on the same profile",
                                      ["route", "profile"], registry=registry)
        self.router_fallbacks = Counter("llmswitch_router_fallbacks", "Times a route moved on to its next "
                                        "profile", ["route", "from_profile", "to_profile"], registry=registry)
        self.router_cooldowns = Counter("llmswitch_router_cooldowns", "Times a route put a profile in cooldown",
                                        ["route", "profile"], registry=registry)

    # ---- observing ----------------------------------------------------------------------------------------

    def observe_attempt(self, profile: str, backend: str, model: str, outcome: str, latency_s: float | None, *,
                        error_kind: str | None = None, flush: bool = True) -> None:
        """Count one attempt: a retry or fallback that failed (``error_kind`` its outcome), or a call refused
        before it was sent (a missing key, a budget). A call's last attempt is counted by :meth:`observe_call`."""
        labels = (profile, backend, model)
        self.requests.labels(*labels, outcome).inc()
        if latency_s is not None:
            self.duration.labels(*labels).observe(latency_s)
        if error_kind is not None:
            self.errors.labels(profile, backend, error_kind).inc()
        if flush:
            self.flush()

    def observe_call(self, profile: str, backend: str, model: str, result: StreamState, cost: CallCost | None,
                     outcome: str) -> None:
        """Count one finished call (also a failed or interrupted one): its last attempt, tokens and spend."""
        labels = (profile, backend, model)
        error_kind = result.error.kind if result.error is not None else None
        self.observe_attempt(profile, backend, model, outcome, result.latency_s, error_kind=error_kind, flush=False)
        if result.first_token_s is not None:
            self.first_token.labels(*labels).observe(result.first_token_s)
        if cost is not None:
            if cost.input_tokens:
                self.tokens.labels(*labels, "input").inc(cost.input_tokens)
            if cost.output_tokens:
                self.tokens.labels(*labels, "output").inc(cost.output_tokens)
            if cost.usd:
                self.cost.labels(*labels).inc(cost.usd)
        self.flush()

    def observe_cache(self, profile: str, hit: bool) -> None:
        (self.cache_hits if hit else self.cache_misses).labels(profile).inc()
        self.flush()

    def observe_route(self, event: str, route: str, profile: str, to_profile: str | None = None) -> None:
        """A router event: ``retry``, ``fallback`` (from ``profile`` to ``to_profile``) or ``cooldown``."""
        if event == "retry":
            self.router_retries.labels(route, profile).inc()
        elif event == "fallback":
            self.router_fallbacks.labels(route, profile, to_profile or "").inc()
        elif event == "cooldown":
            self.router_cooldowns.labels(route, profile).inc()
        self.flush()

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format (what ``/metrics`` serves)."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)

    # ---- the textfile ---------------------------------------------------------------------------------------

    def flush(self) -> None:
        """Add what this process counted since the last flush to the textfile, if there is one."""
        if self.textfile is None:
            return
        with self._lock:
            families = {family.name: family for family in self.registry.collect() if family.type != "gauge"}
            current = {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
                       for family in families.values() for sample in family.samples}
            deltas = {key: value - self._written.get(key, 0.0) for key, value in current.items()}
            try:
                add_to_textfile(self.textfile, families.values(), deltas)
            except OSError as error:
                import logging

                logging.getLogger(__name__).warning("metrics not written to %s: %s", self.textfile, error)
                return
            self._written = current


def add_to_textfile(path: Path, families: Iterable[Any], deltas: dict[tuple[str, tuple[tuple[str, str], ...]],
                                                                       float]) -> None:
    """Add ``deltas`` to the samples already in ``path`` (counters and histograms only add up), atomically and
    under an exclusive lock, so concurrent processes never lose each other's counts."""
    import fcntl

    from prometheus_client.parser import text_string_to_metric_families

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        headers: dict[str, tuple[str, str]] = {}  # family name -> (help, type)
        samples: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
        if path.exists():
            for family in text_string_to_metric_families(path.read_text(encoding="utf-8")):
                headers[family.name] = (family.documentation, family.type)
                for sample in family.samples:
                    key = (sample.name, tuple(sorted(sample.labels.items())))
                    samples.setdefault(family.name, {})[key] = sample.value
        for family in families:
            headers.setdefault(family.name, (family.documentation, family.type))
            bucket = samples.setdefault(family.name, {})
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                bucket[key] = bucket.get(key, 0.0) + deltas.get(key, 0.0)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # the collector never reads half a file
        temporary.write_text(_render(headers, samples), encoding="utf-8")
        os.replace(temporary, path)


def _render(headers: dict[str, tuple[str, str]],
            samples: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]) -> str:
    lines: list[str] = []
    for name in sorted(headers):
        documentation, kind = headers[name]
        exposed = f"{name}_total" if kind == "counter" else name
        lines.append(f"# HELP {exposed} {_escape_help(documentation)}")
        lines.append(f"# TYPE {exposed} {kind}")
        for (sample_name, labels), value in samples.get(name, {}).items():
            rendered = ",".join(f'{key}="{_escape_label(text)}"' for key, text in labels)
            lines.append(f"{sample_name}{{{rendered}}} {_number(value)}" if rendered else
                         f"{sample_name} {_number(value)}")
    return "\n".join(lines) + "\n"


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    return repr(float(value)) if value != int(value) else f"{int(value)}.0"


# ---- the process's metrics ---------------------------------------------------------------------------------

_active: Metrics | None = None
_checked_environment = False


def enable(textfile: str | os.PathLike[str] | None = None) -> Metrics:
    """Turn metrics on for this process (``serve`` does; a library user may) and return them."""
    global _active, _checked_environment
    _checked_environment = True
    _active = Metrics(textfile or os.environ.get(TEXTFILE_VARIABLE) or None)
    return _active


def count_router_event(event: RouterEvent) -> None:
    """An observer every client starts with (``client.observers``): the router's retries, fallbacks and
    cooldowns counted when metrics are on; nothing (one lookup) when they are off."""
    metrics = active()
    if metrics is not None and event.kind in ROUTER_EVENTS:
        metrics.observe_route(event.kind, event.route or "", event.member, event.to_member)


def disable() -> None:
    global _active, _checked_environment
    _active, _checked_environment = None, False


def active() -> Metrics | None:
    """The process's metrics when on (``enable`` was called, or ``LLMSWITCH_METRICS_FILE`` is set), else None."""
    global _checked_environment
    if _active is None and not _checked_environment:
        _checked_environment = True
        if os.environ.get(TEXTFILE_VARIABLE):
            try:
                return enable()
            except ImportError:  # asked for, not installed: the answer and its ledger row matter more
                from llmswitch.lazy import logger

                logger(__name__).warning("%s is set but prometheus-client is not installed: metrics are off "
                                         "(pip install 'llmswitch[serve]')", TEXTFILE_VARIABLE)
    return _active
