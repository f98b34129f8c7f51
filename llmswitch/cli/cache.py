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
@click.pass_context
def clear(ctx: click.Context, profile: str | None, expired: bool) -> None:
    """Delete cached answers (all of them unless narrowed)."""
    from llmswitch.response_cache import open_store

    store = open_store()
    if profile is not None:
        check_profile_name(profile, ctx.obj.get("config"), cached=set(store.stats().by_profile))
    deleted = store.clear(profile, expired_only=expired)
    click.echo(f"deleted {counted(deleted, 'cached answer')}", err=True)


def check_profile_name(name: str, config: str | None, cached: set[str]) -> None:
    """A misspelt name is an error with close names, not "deleted 0"; a name the cache holds answers for is
    fine even when it is no longer a profile (removed or renamed since)."""
    from llmswitch.errors import ProfileNotFoundError
    from llmswitch.profiles import ProfileStore

    known = ProfileStore.load(config).names()
    if name in known or name in cached:
        return
    error = ProfileNotFoundError(name, sorted(set(known) | cached))
    error.remedy = f"{error.remedy}; `llmswitch cache stats` lists the names the cache holds answers for"
    raise error
