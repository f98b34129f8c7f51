"""``llmswitch usage``: calls, tokens, spend and latency from the usage ledger, grouped."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, cast

import click

if TYPE_CHECKING:
    from llmswitch.ledger import GroupBy, UsageRow


@click.command()
@click.option("--since", default="7d", show_default=True, metavar="WHEN",
              help="7d, 24h, 30m, 2w, today, month, all, or a date (2025-06-01).")
@click.option("--by", "group_by", type=click.Choice(["profile", "model", "day", "route", "key"]), default="profile",
              show_default=True, help="How to group the calls.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def usage(since: str, group_by: str, as_json: bool) -> int:
    """Show recorded usage and spend: every call from the CLI and the TUI is in the ledger."""
    from llmswitch.ledger import Ledger, describe_since, parse_since

    start = parse_since(since)
    with Ledger() as ledger:
        rows = ledger.summary(start, cast("GroupBy", group_by))
        total = ledger.total(start)  # each call once (by route, a call through nested routes is in several rows)
        path = ledger.path
    if as_json:
        click.echo(json.dumps({
            "since": start, "since_text": describe_since(start), "by": group_by, "ledger": str(path),
            "rows": [r.as_dict() for r in rows], "total": total.as_dict(),
        }, indent=2))
        return 0
    if not rows:
        click.echo(f"no calls recorded since {describe_since(start)} (ledger: {path})", err=True)
        return 0
    _render(rows, total, group_by, describe_since(start))
    return 0


def _render(rows: list[UsageRow], total: UsageRow, group_by: str, since: str) -> None:
    from rich.text import Text

    from llmswitch.cli.tables import console, table
    from llmswitch.pricing import format_usd

    numbers = ("calls", "errors", "input tok", "output tok", "cost", "mean latency")
    grid = table(group_by, *numbers, right=numbers, title=f"usage since {since}")
    for row in [*rows, total]:
        cost = format_usd(row.cost_usd)
        if row.unpriced_calls:
            cost += f" + {row.unpriced_calls} unpriced"
        latency = f"{row.mean_latency_s:.2f} s" if row.mean_latency_s is not None else ""
        style = "bold" if row is total else ""
        grid.add_row(*[Text(cell, style=style) for cell in (
            row.key, f"{row.calls:,}", f"{row.errors:,}", f"{row.input_tokens:,}", f"{row.output_tokens:,}",
            cost, latency)])
    console().print(grid)
