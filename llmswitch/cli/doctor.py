"""``llmswitch doctor``: check every profile (or those named) concurrently and say what to fix.

A table and the remedies on a terminal, ``--json`` for scripts (schema in :mod:`llmswitch.doctor`).
Exit 0 when every checked profile is ok or degraded, 1 when any is down, 2 for an unknown profile name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click

from llmswitch.doctor import DEFAULT_TIMEOUT, Diagnosis, DoctorReport
from llmswitch.secrets import redact

if TYPE_CHECKING:
    from llmswitch.client import Client


@click.command()
@click.argument("profiles", nargs=-1, metavar="[PROFILE]...")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (schema in the docs).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_TIMEOUT, show_default=True,
              metavar="S", help="Seconds each network check may take.")
@click.option("--offline", is_flag=True, help="Skip every check that needs the network.")
@click.pass_context
def doctor(ctx: click.Context, profiles: tuple[str, ...], as_json: bool, timeout: float, offline: bool) -> int:
    """Check profiles (all, or those named): plugin, configuration, key, health, cost and budget.

    Every problem comes with what to do about it. Exit code 1 when any checked profile is down.
    """
    from llmswitch.client import Client
    from llmswitch.doctor import run_doctor

    client = Client(ctx.obj.get("config") if ctx.obj else None)
    names = list(profiles) or None
    if as_json:
        report = run_doctor(client, names, timeout=timeout, offline=offline)
        click.echo(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    else:
        report = _run_with_progress(client, names, timeout=timeout, offline=offline)
        render(report)
    return 0 if report.ok else 1


def _run_with_progress(client: Client, names: list[str] | None, *, timeout: float, offline: bool) -> DoctorReport:
    """On a terminal, say on stderr which profiles are still being checked."""
    import sys

    from llmswitch.doctor import run_doctor

    if not sys.stderr.isatty():
        return run_doctor(client, names, timeout=timeout, offline=offline)
    from rich.console import Console

    expected = len(names) if names else len(client.store.names())
    done: list[str] = []
    with Console(stderr=True).status(f"checking {expected} profiles…") as status:
        def progress(diagnosis: Diagnosis) -> None:
            done.append(diagnosis.profile)
            status.update(f"checked {len(done)} of {expected} profiles (last: {diagnosis.profile})…")

        return run_doctor(client, names, timeout=timeout, offline=offline, on_result=progress)


STATUS_STYLE = {"ok": ("✓ ok", "green"), "degraded": ("! degraded", "yellow"), "down": ("✗ down", "bold red"),
                "not_checked": ("? not checked", "dim")}
CHECK_MARK = {"fail": ("✗", "red"), "warn": ("!", "yellow")}


def render(report: DoctorReport) -> None:
    """The table, then each problem with its remedy, then plugins that failed to load."""
    from rich.text import Text

    from llmswitch.cli.tables import console, table
    from llmswitch.pricing import STANDARD_INPUT_TOKENS, STANDARD_OUTPUT_TOKENS
    from llmswitch.terminal import neutralize

    out = console()
    grid = table("profile", "status", "backend / model", "plugin", "key", "latency",
                 f"cost {STANDARD_INPUT_TOKENS}+{STANDARD_OUTPUT_TOKENS} tok", "budget",
                 right=("latency", f"cost {STANDARD_INPUT_TOKENS}+{STANDARD_OUTPUT_TOKENS} tok"))
    for top in report.diagnoses:
        for depth, d in _with_members(top):
            label, style = STATUS_STYLE[d.status.value]
            grid.add_row(
                Text(("  " * depth + "└ " if depth else "") + d.profile, style="" if depth else "bold"),
                Text(label, style=style),
                Text(f"{d.backend or '?'} / {d.model or '?'}"),
                Text(_plugin_cell(d)),
                Text(_key_cell(d)),
                Text(_latency(d.latency_s)),
                Text(_cost_cell(d)),
                Text(_budget_cell(d)),
            )
    out.print(grid)
    for d in report.diagnoses:
        if d.status.value == "not_checked":
            line = Text("? ", style="dim")
            line.append(f"{d.profile}", style="bold")
            line.append(f" · not checked: {d.not_checked_summary()}", style="dim")
            out.print(line)
        for check in d.problems():
            mark, style = CHECK_MARK[check.status.value]
            line = Text(f"{mark} ", style=style)
            line.append(f"{d.profile}", style="bold")
            line.append(neutralize(f" · {check.name}: {redact(check.detail)}"))  # may quote a server's error body
            out.print(line)
            if check.remedy:
                out.print(Text(neutralize(f"    → {redact(check.remedy)}"), style="cyan"))
    for plugin in report.broken_plugins:
        from llmswitch.doctor.report import broken_plugin_remedy

        line = Text("✗ ", style="red")
        line.append(f"plugin {plugin.name}", style="bold")
        line.append(neutralize(f" ({plugin.distribution or '?'}) failed to load: {redact(plugin.error or '')}"))
        out.print(line)
        out.print(Text(f"    → {broken_plugin_remedy(plugin)}", style="cyan"))
    down = sum(1 for d in report.diagnoses if d.status.value == "down")
    unchecked = sum(1 for d in report.diagnoses if d.status.value == "not_checked")
    mode = ", offline" if report.offline else ""
    count = len(report.diagnoses)
    summary = f"{count} profile{'s' if count != 1 else ''} checked in {report.duration_s:.1f}s{mode}: "
    summary += f"{down} down" if down else "none down"
    if unchecked:
        summary += f", {unchecked} not checked"
    out.print(Text(summary, style="dim"))


def _with_members(d: Diagnosis, depth: int = 0) -> Iterator[tuple[int, Diagnosis]]:
    """The profile's row, then (a route) each member's row under it, one level deeper, nested routes too."""
    yield depth, d
    for member in d.members:
        yield from _with_members(member, depth + 1)


def _plugin_cell(d: Diagnosis) -> str:
    if d.is_route:
        return "route"
    if d.plugin is None:
        if not d.backend:
            return "no backend"  # the profile's own fault (its check says how to write it), not a plugin's
        failed = next((c for c in d.checks if c.name == "plugin"), None)
        return "broken" if failed is not None and "failed to load" in failed.detail else "not installed"
    return " ".join(part for part in (d.plugin.distribution, d.plugin.version) if part)


def _key_cell(d: Diagnosis) -> str:
    if d.is_route:  # the worst of its members' keys; each member's own is on its row
        missing = [m.profile for m in d.leaves() if m.key is not None and m.key.required and not m.key.present
                   and not m.key.withheld]
        withheld = [m.profile for m in d.leaves() if m.key is not None and m.key.withheld]
        if missing:
            return f"missing ({', '.join(missing)})"
        return f"withheld ({', '.join(withheld)})" if withheld else "see members"
    key = d.key
    if key is None:
        return "not needed"
    if key.present:
        return f"{key.masked} ({key.source})"
    if key.withheld:
        return "withheld (see below)"
    if key.required:
        return f"missing ({key.variable})" if key.variable else "missing"
    return "none (not needed)"


def _cost_cell(d: Diagnosis) -> str:
    """The standard request's price, with the age of a table price that is not free."""
    from llmswitch.pricing import format_usd

    if d.is_route:  # what the member that answers costs: the cheapest to the dearest
        span, unpriced = d.standard_request_range(), d.unpriced()
        if span is None:
            return format_usd(None)
        low, high = (format_usd(usd) for usd in span)
        return (low if low == high else f"{low}–{high}") + (" + unknown" if unpriced else "")
    usd = format_usd(d.standard_request_usd)
    age = d.price.age_days() if d.price is not None and d.price.known and not d.price.free else None
    return usd if age is None else f"{usd} ({age:,} d old)"


def _budget_cell(d: Diagnosis) -> str:
    from llmswitch.pricing import format_usd

    return ", ".join(f"{format_usd(b.spent_usd)}/{format_usd(b.budget_usd)} {b.period}" for b in d.budgets)


def _latency(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"
