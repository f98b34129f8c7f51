"""``llmswitch plugins``: what is installed, what loaded, and why a plugin did not."""

from __future__ import annotations

import json

import click

from llmswitch.plugins import get_registry


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins(as_json: bool) -> int:
    """List installed backend plugins: name, distribution, version, hooks, backends, and any load error."""
    registry = get_registry()
    records = registry.plugins
    if as_json:
        click.echo(json.dumps([
            {"name": r.name, "distribution": r.distribution, "version": r.version, "hooks": list(r.hooks),
             "backends": list(r.backends), "loaded": r.loaded, "status": r.status, "error": r.error,
             "refused": dict(r.refused)}
            for r in records
        ], indent=2))
        return 0
    if not records:
        click.echo("no plugins installed (pip install ./plugins/llmswitch-echo for a first one)", err=True)
        return 0
    for record in records:
        version = f" {record.version}" if record.version else ""
        head = f"{record.name}  ({record.distribution or '?'}{version})"
        if record.loaded:
            click.echo(f"{head}  {record.status.upper() if record.status == 'refused' else record.status}")
            for info in record.declared:  # this plugin's own summary, even when another declares the name
                click.echo(f"    backend {info.name}: {info.summary}")
                if info.name in record.refused:
                    click.echo(f"        refused: {record.refused[info.name]}")
            click.echo(f"    hooks: {', '.join(record.hooks) or 'none'}")
        else:
            click.echo(f"{head}  FAILED")
            click.echo(f"    error: {record.error}")
    return 0
