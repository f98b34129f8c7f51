"""``llmswitch cost``: what a prompt would cost on each profile.

Prices come from the plugins' price tables and the profiles' ``price_*_per_mtok`` keys, never the network.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click


@click.command()
@click.argument("prompt", nargs=-1)
@click.option("-p", "--profile", "profiles", multiple=True, metavar="NAME",
              help="Profile to price (repeatable; default: every profile).")
@click.option("--all", "all_profiles", is_flag=True, help="Price every profile (the default).")
@click.option("--input-tokens", type=click.IntRange(min=0), metavar="N",
              help="Input tokens per request, instead of counting a PROMPT (default without one: 500).")
@click.option("--output-tokens", type=click.IntRange(min=0), metavar="N",
              help="Output tokens per request (default: 500, the standard request doctor prices too).")
@click.option("-n", "--requests", type=click.IntRange(min=1), default=1, show_default=True, metavar="N",
              help="How many such requests to price.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def cost(ctx: click.Context, prompt: tuple[str, ...], profiles: tuple[str, ...], all_profiles: bool,
         input_tokens: int | None, output_tokens: int | None, requests: int, as_json: bool) -> int:
    """Estimate what PROMPT (or `-` for stdin, or a standard 500-token request) costs on each profile.

    Input tokens are counted by each backend (exact or estimate, as shown), or 500 without a PROMPT; output
    tokens are --output-tokens, else 500 (the standard request `doctor` prices; a profile's max_tokens does not
    change it). Cheapest first. The seeds' comparison of 100 requests of 500 + 500 tokens:
    `llmswitch cost --requests 100`. Exits 1 when a profile named with --profile cannot be priced at all (a
    broken route); an unknown price is shown, not a failure.
    """
    from llmswitch.accounting import compare_costs
    from llmswitch.client import Client

    if profiles and all_profiles:
        raise click.UsageError("give --profile NAME ... or --all, not both")
    text: str | None = " ".join(prompt) if prompt else None
    if text == "-":
        text = sys.stdin.read()
    if text is not None and input_tokens is not None:
        raise click.UsageError("give a PROMPT or --input-tokens, not both")
    client = Client(ctx.obj.get("config") if ctx.obj else None)
    rows = compare_costs(client, list(profiles) or None, prompt=text, input_tokens=input_tokens,
                         output_tokens=output_tokens, requests=requests)
    if as_json:
        click.echo(json.dumps({"requests": requests, "profiles": [_row_dict(r) for r in rows]}, indent=2,
                              ensure_ascii=False))
    else:
        _render_costs(rows, requests)
    # A profile asked for by name that could not be priced at all (a broken route, a profile that does not
    # resolve) fails the command, as a script expects; a listing of every profile shows what it can.
    return 1 if profiles and any(row.error is not None for row in rows) else 0


def _row_dict(row: Any) -> dict[str, Any]:
    from llmswitch.cli.errors import error_payload

    estimate = row.estimate
    usd, total = row.usd_per_request, row.usd_total
    return {
        "profile": row.profile,
        "backend": row.backend,
        "model": row.model,
        "input_tokens": estimate.input.n if estimate else None,
        "input_exact": estimate.input.exact if estimate else None,
        "input_method": estimate.input.method if estimate else None,
        "output_tokens": estimate.output_tokens if estimate else None,
        "output_basis": estimate.output_basis if estimate else None,
        "price": estimate.price.as_dict() if estimate else None,
        "usd_per_request": round(usd, 10) if usd is not None else None,
        "usd_total": round(total, 10) if total is not None else None,
        "error": error_payload(row.error) if row.error is not None else None,
    }


def _render_costs(rows: list[Any], requests: int) -> None:
    from rich.text import Text

    from llmswitch.cli.tables import console, table
    from llmswitch.pricing import format_rate, format_usd, price_age_label

    total_column = f"× {requests:,}"
    columns = ["profile", "model", "input tok", "output tok", "$/M in", "$/M out", "per request"]
    columns += [total_column] if requests > 1 else []
    columns += ["prices as of"]
    grid = table(*columns, right=("input tok", "output tok", "$/M in", "$/M out", "per request", total_column))
    notes: list[str] = []
    for row in rows:
        if row.error is not None:
            cells = [row.profile, f"{row.backend} / {row.model or '?'}", "", "", "", "", "unavailable"]
            grid.add_row(*cells, *([""] if requests > 1 else []), "")
            notes.append(f"{row.profile}: {row.error.message}" + (f" ({row.error.remedy})" if row.error.remedy else ""))
            continue
        estimate = row.estimate
        counted = estimate.input
        input_cell = f"{counted.n:,}" if counted.exact else f"~{counted.n:,}"
        cells = [row.profile, f"{row.backend} / {row.model}", input_cell, f"{estimate.output_tokens:,}",
                 format_rate(estimate.price.input_per_mtok), format_rate(estimate.price.output_per_mtok),
                 format_usd(row.usd_per_request)]
        cells += [format_usd(row.usd_total)] if requests > 1 else []
        cells += [price_age_label(estimate.price)]
        grid.add_row(*[Text(cell) for cell in cells])
        if not estimate.price.known:
            notes.append(f"{row.profile}: price unknown ({estimate.price.source}); set price_input_per_mtok and "
                         f"price_output_per_mtok in [profiles.{row.member or row.profile}]")
    out = console()
    out.print(grid)
    bases = sorted({(r.estimate.output_tokens, r.estimate.output_basis) for r in rows if r.estimate})
    if len(bases) == 1:
        tokens, basis = bases[0]
        why = "the standard request doctor prices; --output-tokens N to change" if basis == "standard request" \
            else basis
        out.print(Text(f"output: {tokens:,} tokens per request ({why})", style="dim"))
    methods = sorted({f"{r.estimate.input.method}" for r in rows if r.estimate and not r.estimate.input.exact})
    if methods:
        out.print(Text(f"~ input tokens estimated ({', '.join(methods)})", style="dim"))
    for note in notes:
        out.print(Text(note, style="dim"))
