"""``llmswitch plugins``: what is installed, what loaded, and why a plugin did not; ``new``, ``install``,
``uninstall``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from llmswitch.plugins import get_registry


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def plugins(ctx: click.Context, as_json: bool) -> int:
    """List installed backend plugins: name, distribution, version, hooks, backends, and any load error.

    \b
    llmswitch plugins new acme --http      write a plugin distribution to start from
    llmswitch plugins install ./llmswitch-acme
    llmswitch plugins uninstall acme
    """
    if ctx.invoked_subcommand is not None:
        return 0
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
        from llmswitch.extras import known_extras

        extras = ", ".join(extra.name for extra in known_extras())
        click.echo(f"no plugins installed: pip install 'llmswitch[NAME]' adds a backend (NAME: {extras}), or "
                   "`llmswitch plugins new NAME` writes one", err=True)
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


@plugins.command("new")
@click.argument("name")
@click.option("--http", is_flag=True, help="An OpenAI-style HTTP backend on the toolkit (default: in-process).")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Where to write the llmswitch-NAME folder.")
def new(name: str, http: bool, directory: Path) -> int:
    """Write a complete plugin distribution for backend NAME: pyproject, module, price table, README, tests."""
    from llmswitch.scaffold import new_plugin

    root = new_plugin(name, directory, http=http)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        click.echo(str(path))
    click.echo(f"next: llmswitch plugins install {root}   then: cd {root} && python -m pytest", err=True)
    return 0


@plugins.command("install", context_settings={"ignore_unknown_options": True})
@click.argument("spec")
@click.argument("pip_options", nargs=-1, type=click.UNPROCESSED)
@click.option("--user", is_flag=True, help="pip install --user (for a Python outside a virtual environment).")
@click.option("--system", is_flag=True, help="Install into a Python outside a virtual environment anyway.")
@click.option("--yes", "-y", is_flag=True, help="Uninstall a plugin that fails to load without asking.")
def install(spec: str, pip_options: tuple[str, ...], user: bool, system: bool, yes: bool) -> int:
    """Install a plugin (a name, a path or a URL) into llmswitch's own environment, then load it.

    Options after `--` go to pip: `llmswitch plugins install ./llmswitch-acme -- --no-deps`.
    """
    from llmswitch import plugin_install

    click.echo(f"installing {spec} into {sys.prefix} ...", err=True)
    report = plugin_install.install(spec, user=user, system=system, pip_options=pip_options)
    if not report.changed:
        click.echo(f"pip installed {spec}, but no llmswitch plugin appeared or changed: it declares no entry point "
                   "in the 'llmswitch' group, or that version was already installed", err=True)
        return 1
    for state in report.changed:
        if state.status != "failed":
            click.echo(f"{state.name} ({state.distribution} {state.version}): {state.status}; "
                       f"backends: {', '.join(state.backends) or 'none'}", err=True)
    for state in report.broken:
        click.echo(f"{state.name} ({state.distribution} {state.version}) is installed but FAILS to load: "
                   f"{state.error}", err=True)
        command = f"llmswitch plugins uninstall {state.name}"
        if yes or (sys.stdin.isatty() and click.confirm(f"uninstall {state.distribution} now?", err=True)):
            plugin_install.uninstall(state.name, user=user, system=system)
            click.echo(f"uninstalled {state.distribution}", err=True)
        else:
            click.echo(f"the other plugins keep working; to remove it: {command}", err=True)
    return 1 if report.broken else 0


@plugins.command("uninstall")
@click.argument("name")
@click.option("--user", is_flag=True, help="For a Python outside a virtual environment (a --user install).")
@click.option("--system", is_flag=True, help="Uninstall from a Python outside a virtual environment anyway.")
def uninstall(name: str, user: bool, system: bool) -> int:
    """Uninstall the plugin (or the plugin providing the backend) NAME from llmswitch's environment."""
    from llmswitch import plugin_install

    distribution = plugin_install.uninstall(name, user=user, system=system)
    click.echo(f"uninstalled {distribution}", err=True)
    return 0
