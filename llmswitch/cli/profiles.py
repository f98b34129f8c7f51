"""``llmswitch profiles``: list, show, add, remove, default."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
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

        registry = get_registry()
        info = registry.backend_of(profile).info
        secret_names |= {spec.name for spec in info.options if spec.secret}
    except LLMSwitchError as error:
        echo_status(f"# warning: {error.message}")
        if error.remedy:
            echo_status(f"#   hint: {error.remedy}")
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
@click.option("--backend", "-b", help="The backend (see `llmswitch plugins`).")
@click.option("--model", "-m", help="The model (default: the backend's).")
@click.option("--route", "route", metavar="fallback|pool|split",
              help="Route to other profiles instead of running a backend (see docs/routing.md).")
@click.option("--member", "member_lists", multiple=True, metavar="NAME[,NAME...]",
              help="A member of a fallback or pool, in order (repeatable).")
@click.option("--weight", "weight_texts", multiple=True, metavar="NAME=WEIGHT",
              help="A member of a split and its relative weight (repeatable).")
@click.option("--strategy", metavar="STRATEGY", help="A pool's strategy: round-robin (default), least-busy, latency or cost.")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE", help="An option (repeatable).")
@click.option("--replace", is_flag=True, help="Overwrite a profile of the same name in your file.")
@click.option("--default", "make_default", is_flag=True, help="Make it the default profile.")
@click.pass_context
def add(ctx: click.Context, name: str, backend: str | None, model: str | None, route: str | None,
        member_lists: tuple[str, ...], weight_texts: tuple[str, ...], strategy: str | None,
        assignments: tuple[str, ...], replace: bool, make_default: bool) -> None:
    """Add a profile to your file: one that runs a backend (checked against its options), or a route over other
    profiles (members checked to exist, no cycle, a known strategy, positive weights).

    \b
      llmswitch profiles add fast --backend openai --set preset=groq
      llmswitch profiles add reliable --route fallback --member claude --member openai --member local
      llmswitch profiles add fleet --route pool --strategy least-busy --member vllm-a,vllm-b
      llmswitch profiles add ab --route split --weight claude=80 --weight openai=20
    """
    store = _store(ctx)
    members = [member.strip() for listed in member_lists for member in listed.split(",") if member.strip()]
    if route is None:
        if backend is None:
            raise InvalidOptionError(f"say what '{name}' runs: --backend NAME (see `llmswitch plugins`), or --route "
                                     "fallback|pool|split with its members",
                                     remedy=f"e.g. llmswitch profiles add {name} --backend NAME, or llmswitch "
                                     f"profiles add {name} --route fallback --member main --member spare")
        for flag, given in (("--member", members), ("--strategy", strategy), ("--weight", weight_texts)):
            if given:
                raise InvalidOptionError(f"{flag} applies to a route, and '{name}' runs the backend '{backend}'",
                                         remedy="drop --backend and give --route fallback|pool|split, or drop "
                                         f"{flag}")
        values = _backend_values(name, backend, model, assignments)
    else:
        values = _route_values(name, route, backend=backend, model=model, members=members, weight_texts=weight_texts,
                               strategy=strategy, assignments=assignments)
    store.add(name, values, replace=replace)
    if make_default:
        store.set_default(name)
    if route is None:
        click.echo(f"added profile '{name}' ({backend}) to {store.path}", err=True)
    else:
        click.echo(f"added route '{name}' ({_route_summary(values)}) to {store.path}", err=True)
    if "api_key" in values:
        click.echo("warning: the key is stored in plain text; api_key_env (a variable name) is safer", err=True)


def _backend_values(name: str, backend: str, model: str | None, assignments: tuple[str, ...]) -> dict[str, Any]:
    """A plain profile's keys from the flags, checked against the backend's options."""
    from llmswitch.plugins import get_registry

    info = get_registry().backend(backend).info
    specs = option_specs(info)
    values: dict[str, Any] = {"backend": backend}
    if model:
        values["model"] = model
    for key, raw in _assignments(assignments):
        spec = specs.get(key)
        if spec is None:
            validate(Profile(name, {**values, key: raw}, "command line"), info)  # raises with suggestions
            raise InvalidOptionError(f"unknown option '{key}'")  # pragma: no cover
        values[key] = parse_cli_value(spec, raw)
    validate(Profile(name, values, "command line"), info)
    return values


def _route_values(name: str, kind: str, *, backend: str | None, model: str | None, members: list[str],
                  weight_texts: tuple[str, ...], strategy: str | None, assignments: tuple[str, ...]) -> dict[str, Any]:
    """A route's keys from the flags, as they are written in the file; the flags that do not fit a route (or this
    kind of route) are refused here, in the flags' words. What a route's keys may hold is checked by the store,
    the way `chat` reads them (llmswitch.router.routes)."""
    from llmswitch.router.routes import route_keys

    if backend is not None:
        raise InvalidOptionError(f"'{name}' either runs a backend or routes to other profiles, not both",
                                 remedy="drop --backend (each member names its own), or drop --route")
    if model is not None:
        raise InvalidOptionError("--model does not apply to a route: each member runs its own model",
                                 remedy="set the model in the members' profiles (`chat -m MODEL` applies one to "
                                 "every member of a call)")
    if strategy is not None and kind != "pool":
        raise InvalidOptionError(f"--strategy applies to a pool (--route pool), not to a {kind}",
                                 remedy="drop --strategy, or make it --route pool")
    values: dict[str, Any] = {"route": kind}
    if kind == "split":
        if members:
            raise InvalidOptionError("a split's members come with their weights: --weight NAME=WEIGHT, not --member",
                                     remedy=_SPLIT_EXAMPLE)
        if not weight_texts:
            raise InvalidOptionError("a split route needs members: --weight NAME=WEIGHT (repeat it)",
                                     remedy=_SPLIT_EXAMPLE)
        values["weights"] = _weights(weight_texts)
    else:
        if weight_texts:
            raise InvalidOptionError(f"--weight gives a split's members (--route split), not a {kind}'s",
                                     remedy=f"give a {kind}'s members with --member NAME, in order")
        if not members:
            raise InvalidOptionError(f"a {kind} route needs members: --member NAME (repeat it, in order)",
                                     remedy=f"e.g. --route {kind} --member main --member spare (profile names)")
        values["members"] = members
    if strategy is not None:
        values["strategy"] = strategy
    specs = route_keys()
    for key, raw in _assignments(assignments):
        spec = specs.get(key)
        values[key] = raw if spec is None else parse_cli_value(spec, raw)  # an unknown key: the check names it
    return values


_SPLIT_EXAMPLE = "e.g. --weight main=80 --weight spare=20 (80% of calls to main)"


def _weights(texts: tuple[str, ...]) -> dict[str, Any]:
    """``--weight NAME=WEIGHT`` flags as a split's table, each weight read as a number where it is one; whether
    it is a usable weight (positive, finite) is the route's check, the same as for the file's."""
    weights: dict[str, Any] = {}
    for text in texts:
        member, sep, raw = (part.strip() for part in text.partition("="))
        if not sep or not member:
            raise InvalidOptionError(f"--weight {text!r}: expected NAME=WEIGHT", remedy=_SPLIT_EXAMPLE)
        if member in weights:
            raise InvalidOptionError(f"--weight lists '{member}' more than once",
                                     remedy="give each member of the split one --weight")
        weights[member] = _number(raw)
    return weights


def _number(text: str) -> int | float | str:
    """``80`` -> 80, ``0.5`` -> 0.5; anything else stays the text it is (and is refused, quoted, by the check)."""
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def _assignments(assignments: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    """``--set KEY=VALUE`` flags as (key, raw text) pairs."""
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidOptionError(f"--set {assignment!r}: expected KEY=VALUE")
        yield key, raw


def _route_summary(values: Mapping[str, Any]) -> str:
    """What a route does, in a few words: "fallback: a, then b", "pool, least-busy: a, b", "split: a 80%, b 20%"."""
    from llmswitch.router.routes import shares

    if values["route"] == "split":
        return "split: " + ", ".join(f"{member} {percent(share)}"
                                     for member, share in (shares(values["weights"]) or {}).items())
    if values["route"] == "pool":
        return f"pool, {values.get('strategy', 'round-robin')}: " + ", ".join(values["members"])
    return "fallback: " + ", then ".join(values["members"])


@profiles.command("remove")
@click.argument("name")
@click.option("--force", is_flag=True, help="Remove it even though a route names it as a member.")
@click.pass_context
def remove(ctx: click.Context, name: str, force: bool) -> None:
    """Remove a profile from your file (refused while a route names it, unless --force)."""
    store = _store(ctx)
    broken = store.remove(name, force=force)
    click.echo(f"removed profile '{name}' from {store.path}", err=True)
    for route in broken:
        click.echo(f"warning: route '{route}' still names '{name}' and fails until you take it out of its members",
                   err=True)


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
