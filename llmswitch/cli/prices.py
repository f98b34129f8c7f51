"""``llmswitch prices``: the prices in use per model, and ``prices update`` to refresh them.

Listing reads the plugins' tables and the stored update, never the network; only ``prices update`` fetches.
"""

from __future__ import annotations

import json
from typing import Any

import click


@click.group(invoke_without_command=True)
@click.option("-b", "--backend", "backend", metavar="NAME", help="Only this backend's prices.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def prices(ctx: click.Context, backend: str | None, as_json: bool) -> int:
    """List the prices in use per model (USD per million tokens), with each table's date and age.

    \b
    llmswitch prices                      every backend's table
    llmswitch prices update               refresh from LiteLLM's maintained table
    llmswitch prices update --from FILE   ... or from a copy of it
    """
    if ctx.invoked_subcommand is not None:
        return 0
    from llmswitch.plugins import get_registry
    from llmswitch.pricing import load_table, updated_table

    registry = get_registry()
    names = [registry.backend(backend).info.name] if backend else sorted(registry.backends)
    tables = [(name, updated_table(name), load_table(registry.backends[name].info)) for name in names]
    if as_json:
        click.echo(json.dumps({"backends": [_backend_dict(name, updated, shipped)
                                            for name, updated, shipped in tables]}, indent=2, ensure_ascii=False))
        return 0
    _render(tables)
    return 0


@prices.command("update")
@click.option("--from", "location", metavar="URL|FILE",
              help="Where to read the table (LiteLLM's JSON format). Default: where LiteLLM publishes it.")
@click.option("--force", is_flag=True, help="Accept prices that move by more than 10x.")
@click.option("--dry-run", is_flag=True, help="Say what would change; store nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def update(location: str | None, force: bool, dry_run: bool, as_json: bool) -> int:
    """Fetch a maintained price table, check it, and use it ahead of the tables the plugins ship.

    Only this command touches the network for prices. A table that cannot be fetched or does not look right
    (wrong types, negative or absurd prices, a price moving by more than 10x without --force) is refused
    whole, and the prices in use stay as they were. A profile's own price_*_per_mtok keys still win.
    """
    from llmswitch.plugins import get_registry
    from llmswitch.price_catalog import DEFAULT_CATALOG_URL, update_prices
    from llmswitch.pricing import prices_in_use

    infos = [handle.info for handle in get_registry().backends.values()]
    providers = {info.name: info.price_catalog_providers for info in infos if info.price_catalog_providers}
    if not providers:
        raise click.UsageError("no installed backend takes prices from a shared table (a backend that does declares "
                               "price_catalog_providers)")
    click.echo(f"prices: reading {location or DEFAULT_CATALOG_URL}", err=True)
    result = update_prices(location or DEFAULT_CATALOG_URL, providers=providers,
                           in_use=prices_in_use([info for info in infos if info.name in providers]),
                           force=force, dry_run=dry_run)
    if as_json:
        click.echo(json.dumps({"source": result.catalog.source, "date": result.catalog.date,
                               "path": str(result.path), "written": result.written,
                               "models": {b: len(m) for b, m in result.catalog.backends.items()},
                               **result.diff.as_dict()}, indent=2, ensure_ascii=False))
        return 0
    _render_update(result)
    return 0


def _render_update(result: Any) -> None:
    from llmswitch.pricing import format_rate
    diff = result.diff
    counts = ", ".join(f"{len(models):,} {backend}" for backend, models in sorted(result.catalog.backends.items()))
    for backend, models in sorted(diff.added.items()):
        click.echo(f"added ({backend}, {len(models):,}): " + ", ".join(models))
    for change in diff.changed:
        click.echo(f"changed: {change.backend} {change.model} {change.field.removesuffix('_per_mtok')} "
                   f"{format_rate(change.old)} -> {format_rate(change.new)}")
    for backend, models in sorted(diff.removed.items()):
        click.echo(f"gone from the update ({backend}, {len(models):,}; the shipped table still prices them): "
                   + ", ".join(models))
    if not (diff.added or diff.changed or diff.removed):
        click.echo("no price changed")
    verb = "would store" if not result.written else "stored"
    click.echo(f"prices: {verb} {counts} models from {result.catalog.source} ({result.catalog.date}) in "
               f"{result.path}", err=True)


def _backend_dict(backend: str, updated: Any, shipped: Any) -> dict[str, Any]:
    """The shipped table's fields, with ``models`` as in use (the update wins) and the update described apart."""
    document = _table_dict(shipped) or {"date": None, "age_days": None, "source": None, "error": None,
                                         "default": None, "models": {}}
    update = _table_dict(updated)
    if update is not None:
        document["models"] = {**document["models"], **update.pop("models")}
    return {"backend": backend, **document, "updated": update}


def _table_dict(table: Any) -> dict[str, Any] | None:
    if table is None:
        return None
    return {
        "date": table.date,
        "age_days": table.age_days(),
        "source": table.source,
        "error": table.error,
        "default": table.default.as_dict() if table.default is not None else None,
        "models": {name: {**price.as_dict(), "aliases": sorted(a for a, n in table.aliases.items() if n == name)}
                   for name, price in table.models.items()},
    }


def _render(tables: list[tuple[str, Any, Any]]) -> None:
    from rich.text import Text

    from llmswitch.cli.tables import console
    from llmswitch.pricing import format_age

    out = console()
    for backend, updated, shipped in tables:
        if updated is not None and updated.error:
            out.print(Text(f"{backend}: the updated price table is not used: {updated.error}; run `llmswitch "
                           f"prices update` again, or delete {updated.origin}", style="red"))
        elif updated is not None:
            _render_table(out, backend, updated, heading="updated with `llmswitch prices update`, used first")
        if shipped is None:
            out.print(Text(f"{backend}: no price table (prices unknown; set price_input_per_mtok and "
                           "price_output_per_mtok in the profile)", style="dim"))
            continue
        if shipped.error:
            out.print(Text(f"{backend}: the price table cannot be read: {shipped.error}", style="red"))
            continue
        _render_table(out, backend, shipped, heading="shipped with the plugin")
        if updated is None and shipped.models and (shipped.age_days() or 0) > 0:
            out.print(Text(f"{backend}: prices {format_age(shipped.age_days())}; refresh with "
                           "`llmswitch prices update`", style="dim"))


def _render_table(out: Any, backend: str, price_table: Any, *, heading: str) -> None:
    from llmswitch.cli.tables import table
    from llmswitch.pricing import format_age, format_rate

    numeric = ("input", "cached input", "output", "batch in", "batch out", "context", "max output")
    dated = f"{price_table.date}, {format_age(price_table.age_days())}" if price_table.date else "undated"
    origin = ", ".join(part for part in (dated, price_table.source) if part)
    grid = table("model", *numeric, right=numeric,
                 title=f"{backend}, {heading} (USD per million tokens; {origin})")
    entries = list(price_table.models.items())
    if price_table.default is not None:
        entries.append(("(any other model)", price_table.default))
    for name, price in entries:
        grid.add_row(name, format_rate(price.input_per_mtok), _optional_rate(price.cached_input_per_mtok),
                     format_rate(price.output_per_mtok), _optional_rate(price.batch_input_per_mtok),
                     _optional_rate(price.batch_output_per_mtok), _count(price.context_window),
                     _count(price.max_output))
    out.print(grid)


def _optional_rate(per_mtok: float | None) -> str:
    from llmswitch.pricing import format_rate

    return format_rate(per_mtok) if per_mtok is not None else ""


def _count(tokens: int | None) -> str:
    return f"{tokens:,}" if tokens is not None else ""
