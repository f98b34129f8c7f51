"""``llmswitch cache stats | clear``: the response cache of the profiles that set ``cache = true``."""

from __future__ import annotations

import json

import click

from llmswitch.wording import counted


@click.group()
def cache() -> None:
    """Show or clear the response cache (profiles opt in with cache = true)."""


@cache.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def stats(as_json: bool) -> None:
    """Entries, hits and size, per profile."""
    from llmswitch.response_cache import open_store

    store = open_store()
    found = store.stats()
    if as_json:
        click.echo(json.dumps({
            "path": str(store.path), "entries": found.entries, "expired": found.expired, "hits": found.hits,
            "size_bytes": found.size_bytes,
            "profiles": {name: {"entries": entries, "hits": hits} for name, (entries, hits) in found.by_profile.items()},
        }, indent=2))
        return
    click.echo(f"response cache: {store.path}")
    click.echo(f"  {counted(found.entries, 'entry', 'entries')} ({found.expired:,} expired), {counted(found.hits, 'hit')}, "
               f"{found.size_bytes / 1024:.0f} KiB on disk")
    for name, (entries, hits) in sorted(found.by_profile.items()):
        click.echo(f"  {name}: {counted(entries, 'entry', 'entries')}, {counted(hits, 'hit')}")
    if not found.entries:
        click.echo("  (empty: a profile caches its answers with cache = true; see `llmswitch profiles show`)", err=True)


@cache.command()
@click.option("-p", "--profile", "profile", metavar="NAME", help="Only this profile's answers.")
@click.option("--expired", is_flag=True, help="Only answers past their cache_ttl.")
def clear(profile: str | None, expired: bool) -> None:
    """Delete cached answers (all of them unless narrowed)."""
    from llmswitch.response_cache import open_store

    deleted = open_store().clear(profile, expired_only=expired)
    click.echo(f"deleted {counted(deleted, 'cached answer')}", err=True)
