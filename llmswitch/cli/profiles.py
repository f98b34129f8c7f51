"""``llmswitch profiles``: list, show, add, remove, default."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import click

from llmswitch.cli.errors import echo_status
from llmswitch.errors import InvalidOptionError, LLMSwitchError
from llmswitch.key_policy import describe_source
from llmswitch.profile_env import PROFILE_VARIABLE
from llmswitch.profile_settings import DEFAULT, Setting
from llmswitch.profiles import Profile, ProfileStore, option_specs, parse_cli_value, validate
from llmswitch.secrets import redact_url, shown_setting
from llmswitch.terminal import for_display


def _echo(line: str) -> None:
    """A line of the listing: config values are the user's file, which may hold any character."""
    click.echo(for_display(line, sys.stdout))


def _store(ctx: click.Context) -> ProfileStore:
    return ProfileStore.load(ctx.obj.get("config"))


@click.group()
def profiles() -> None:
    """List, show, add and remove profiles, and choose the default."""


@profiles.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_profiles(ctx: click.Context, as_json: bool) -> None:
    """Every profile: built-in ones, those in your file and the environment's, with the model each runs."""
    store = _store(ctx)
    rows = [(p, p.name == store.default_name, _modelshown_setting(p)) for p in store.all()]
    if as_json:
        import json

        click.echo(json.dumps([
            {"name": p.name, "backend": p.backend or None, "route": p.settings.get("route"), "model": model,
             "default": is_default, "source": p.source, "description": p.description}
            for p, is_default, model in rows
        ], indent=2))
        return
    width = max(len(p.name) for p, _, _ in rows)
    backend_width = max(len(_backend_shown(p)) for p, _, _ in rows)
    model_width = max(len(model) for _, _, model in rows)
    for profile, is_default, model in rows:
        marker = "*" if is_default else " "
        # A built-in's note says what it is ("a tiny demo model..."); another profile shows where it comes from.
        about = profile.description if profile.source == "built-in" else f"[{_source_label(profile.source, store)}]"
        line = (f"{marker} {profile.name:<{width}}  {_backend_shown(profile):<{backend_width}}  "
                f"{model:<{model_width}}  {about}")
        _echo(line.rstrip())
    chosen = f", from {store.default_origin}" if store.default_origin == PROFILE_VARIABLE else ""
    click.echo(f"(* default{chosen}; file: {store.path})", err=True)


def _backend_shown(profile: Profile) -> str:
    """The backend column: the backend, or for a route its kind."""
    return profile.backend or f"{profile.settings.get('route')} route" if "route" in profile.settings else profile.backend


def _modelshown_setting(profile: Profile) -> str:
    """The model the profile runs (a preset's, the backend's default, a model file), or why it is unknown;
    for a route, its members."""
    if "route" in profile.settings:
        from llmswitch.router.routes import shares

        weights = profile.settings.get("weights")
        split = shares(weights) if isinstance(weights, dict) else None
        if split is not None:  # a split says how it divides the calls: "→ claude 80%, openai 20%"
            return "→ " + ", ".join(f"{member} {percent(share)}" for member, share in split.items())
        members = profile.settings.get("members") or list(weights or {})
        return "→ " + ", ".join(str(member) for member in members) if isinstance(members, list) else "?"
    from llmswitch.plugins import get_registry
    from llmswitch.profile_settings import model_in_use

    try:
        info = get_registry().backend(profile.backend).info
        return model_in_use(validate(profile, info), info) or "(no model: set model)"
    except LLMSwitchError:
        return profile.model or f"(see `llmswitch profiles show {profile.name}`)"


def percent(share: float) -> str:
    """80%, 33.3%, 6.25%, 100%: three significant digits at most, never an exponent."""
    value = share * 100
    return "100%" if value >= 99.95 else f"{value:.3g}%"


def _source_label(source: str, store: ProfileStore) -> str:
    """A profile's sources, short: "your file", "environment", or both."""
    parts = source.split(" + ")
    labels = ["your file" if part == str(store.path) else "environment" for part in parts if part != "built-in"]
    return " + ".join(dict.fromkeys(labels))


@profiles.command("show")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def show(ctx: click.Context, name: str | None, as_json: bool) -> None:
    """One profile: its own keys, then every setting its backend accepts with its type, default, the value in
    effect and where that came from; its key (masked) and URL."""
    store = _store(ctx)
    profile = store.get(name)
    if "route" in profile.settings:
        _show_route(ctx, profile, as_json)
        return
    secret_names = {"api_key"}
    info = None
    try:
        from llmswitch.plugins import get_registry

        info = get_registry().backend(profile.backend).info
        secret_names |= {spec.name for spec in info.options if spec.secret}
    except LLMSwitchError as error:
        echo_status(f"# warning: {error.message}")
    if not as_json:
        _echo(f"[profiles.{profile.name}]  # {profile.source}")
        for key, value in profile.settings.items():
            _echo(f"{key} = {_toml_value(shown_setting(key, value, secret_names))}")
    settings: list[Setting] = []
    notes: list[str] = []
    if info is not None:
        from llmswitch.client import build_target
        from llmswitch.plugins import get_registry
        from llmswitch.profile_settings import model_in_use, settings_in_effect

        try:
            settings = settings_in_effect(profile, info)
        except LLMSwitchError as error:
            echo_status(f"# invalid: {error.message}")
            if error.remedy:
                echo_status(f"#   hint: {error.remedy}")
        else:
            target = build_target(profile, get_registry().backend(profile.backend),
                                  {s.spec.name: s.value for s in settings if s.origin != DEFAULT})
            notes.append(f"runs: {model_in_use({**target.options, 'model': target.model}, info)}")
            if target.base_url:
                notes.append(f"base_url resolves to {redact_url(target.base_url)} "
                             f"(from {describe_source(target.base_url_source)})")
            if info.key_env:
                if target.api_key is not None:
                    notes.append(f"key: {target.api_key.masked} (from {target.api_key.source})")
                elif target.key_withheld:
                    notes.append("key: found, but not sent to this base_url (see the note)")
                else:
                    notes.append(f"key: not set ({target.key_variable or info.key_env})")
            notes += [f"note: {note}" for note in target.notes]
            notes += _cache_lines({s.spec.name: s.value for s in settings})
    if as_json:
        import json

        click.echo(json.dumps({"name": profile.name, "backend": profile.backend, "source": profile.source,
                               "settings": _settings_json(settings, secret_names, store), "notes": notes}, indent=2))
    else:
        for note in notes:
            _echo(f"# {note}")
        if settings:
            _print_settings(settings, secret_names, store, profile.backend)
    warning = store.world_readable_key_warning()
    if warning:
        echo_status(f"warning: {warning}")


def _show_route(ctx: click.Context, profile: Profile, as_json: bool) -> None:
    """A route: its keys as written, then each member with the backend and model it runs (checked: a cycle or
    an unknown member is the error `chat` would give, exit 2)."""
    from llmswitch.client import Client
    from llmswitch.router.resolved import ResolvedRoute

    client = Client(ctx.obj.get("config"))
    route = client.resolve(profile.name)
    assert isinstance(route, ResolvedRoute)
    from llmswitch.profile_settings import route_settings_in_effect
    from llmswitch.router.routes import shares

    weights = dict(zip(route.route.members, route.route.weights, strict=True)) if route.route.kind == "split" else {}
    split = shares(weights) or {}
    members = [{"name": name, "backend": member.target.backend, "model": member.target.model,
                **({"weight": weights[name]} if name in weights else {})}
               for name, member in route.members.items()]
    temperatures = [leaf.settings["temperature"] for leaf in route.leaves() if leaf.settings.get("temperature")]
    notes = _cache_lines(route.settings, max(temperatures, default=None))
    if as_json:
        import json

        # The shape of a plain profile's (settings with type, default, value in effect and origin; notes), where
        # it applies: a route has no backend of its own, so no backend options and no key.
        settings = _settings_json(route_settings_in_effect(profile, route.settings), {"api_key"}, client.store)
        click.echo(json.dumps({"name": profile.name, "route": route.route.kind, "strategy": route.route.strategy
                               if route.route.kind == "pool" else None, "source": profile.source,
                               "members": members, "settings": settings, "notes": notes}, indent=2))
        return
    _echo(f"[profiles.{profile.name}]  # {profile.source}")
    for key, value in profile.settings.items():
        _echo(f"{key} = {_toml_value(value)}")
    _echo(f"# a {route.route.kind} route" + (f" ({route.route.strategy})" if route.route.kind == "pool" else "")
          + "; in effect: " + ", ".join(f"{key} = {value}" for key, value in _fields(route.policy).items()))
    for member in members:
        share = f", {percent(split[member['name']])} of calls" if member["name"] in split else ""
        _echo(f"# member {member['name']}: {member['backend']} / {member['model']}{share}")
    for line in notes:
        _echo(f"# {line}")


def _settings_json(settings: list[Setting], secret_names: set[str], store: ProfileStore) -> list[dict[str, Any]]:
    return [{"name": s.spec.name, "group": s.group, "type": s.spec.type,
             "default": shown_setting(s.spec.name, s.spec.default, secret_names),
             "value": shown_setting(s.spec.name, s.value, secret_names),
             "from": _origin_label(s.origin, store), "description": s.spec.description}
            for s in settings]


def _cache_lines(settings: Mapping[str, object], members_temperature: float | None = None) -> list[str]:
    from llmswitch.response_cache import describe

    line = describe(settings, members_temperature)
    return [line] if line else []


def _fields(policy: object) -> dict[str, object]:
    from dataclasses import asdict

    return {key: value for key, value in asdict(policy).items() if value is not None}  # type: ignore[call-overload]


def _print_settings(settings: list[Setting], secret_names: set[str], store: ProfileStore, backend: str) -> None:
    from rich.text import Text

    from llmswitch.cli.tables import console, table

    out = console()
    titles = {"profile": "profile", "backend": f"options of the {backend} backend", "generation": "generation"}
    for group, title in titles.items():
        rows = [s for s in settings if s.group == group]
        if not rows:
            continue
        grid = table("setting", "type", "default", "in effect", "from", title=title)
        for s in rows:
            cells = (s.spec.name, s.spec.type, _cell(shown_setting(s.spec.name, s.spec.default, secret_names)),
                     _cell(shown_setting(s.spec.name, s.value, secret_names), unset="(unset)"),
                     _origin_label(s.origin, store))
            # Values come from the user's file and environment, which may hold any character (and brackets
            # that rich would read as markup).
            grid.add_row(*(Text(for_display(cell, sys.stdout)) for cell in cells))
        out.print()
        out.print(grid)


def _origin_label(origin: str, store: ProfileStore) -> str:
    return "your file" if origin == str(store.path) else origin


def _cell(value: Any, unset: str = "-") -> str:
    if value is None:
        return unset
    if isinstance(value, str):
        return value if value else '""'
    return _toml_value(value)


def _toml_value(value: Any) -> str:
    from llmswitch.profile_file import toml_item

    return toml_item(value).as_string()


@profiles.command("add")
@click.argument("name")
@click.option("--backend", "-b", required=True, help="The backend (see `llmswitch plugins`).")
@click.option("--model", "-m", help="The model (default: the backend's).")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE", help="An option (repeatable).")
@click.option("--replace", is_flag=True, help="Overwrite a profile of the same name in your file.")
@click.option("--default", "make_default", is_flag=True, help="Make it the default profile.")
@click.pass_context
def add(ctx: click.Context, name: str, backend: str, model: str | None, assignments: tuple[str, ...],
        replace: bool, make_default: bool) -> None:
    """Add a profile to your file, checked against the backend's options first."""
    from llmswitch.plugins import get_registry

    store = _store(ctx)
    info = get_registry().backend(backend).info
    specs = option_specs(info)
    values: dict[str, Any] = {"backend": backend}
    if model:
        values["model"] = model
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidOptionError(f"--set {assignment!r}: expected KEY=VALUE")
        spec = specs.get(key)
        if spec is None:
            validate(Profile(name, {**values, key: raw}, "command line"), info)  # raises with suggestions
            raise InvalidOptionError(f"unknown option '{key}'")  # pragma: no cover
        values[key] = parse_cli_value(spec, raw)
    validate(Profile(name, values, "command line"), info)
    store.add(name, values, replace=replace)
    if make_default:
        store.set_default(name)
    click.echo(f"added profile '{name}' ({backend}) to {store.path}", err=True)
    if "api_key" in values:
        click.echo("warning: the key is stored in plain text; api_key_env (a variable name) is safer", err=True)


@profiles.command("remove")
@click.argument("name")
@click.pass_context
def remove(ctx: click.Context, name: str) -> None:
    """Remove a profile from your file."""
    store = _store(ctx)
    store.remove(name)
    click.echo(f"removed profile '{name}' from {store.path}", err=True)


@profiles.command("default")
@click.argument("name")
@click.pass_context
def default(ctx: click.Context, name: str) -> None:
    """Make NAME the profile used when --profile is not given."""
    store = _store(ctx)
    store.set_default(name)
    click.echo(f"default profile is now '{name}'", err=True)
    if store.environment.default and store.environment.default != name:
        click.echo(f"note: {PROFILE_VARIABLE}={store.environment.default} is set and picks the default here "
                   "until it is unset", err=True)
