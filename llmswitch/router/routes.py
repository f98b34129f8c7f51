"""Route profiles: a profile whose table has ``route`` instead of ``backend`` and names other profiles.

    [profiles.reliable]          # try in order
    route = "fallback"
    members = ["claude", "openai", "local"]

    [profiles.fleet]             # spread load over equivalent servers
    route = "pool"
    strategy = "least-busy"      # round-robin | least-busy | latency | cost
    members = ["vllm-a", "vllm-b", "vllm-c"]

    [profiles.ab]                # a weighted split
    route = "split"
    weights = { claude = 80, openai = 20 }

Routes nest (a pool inside a fallback). :func:`read_route` checks one route's own keys; :func:`check_routes`
walks a route's members and names what is wrong (an unknown member with close names, a cycle as
``a -> b -> a``); both raise :class:`~llmswitch.errors.ConfigError` (exit 2) with a remedy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import field
from typing import Any, Literal

from llmswitch.errors import ConfigError, InvalidOptionError, close_matches
from llmswitch.record import record

RouteKind = Literal["fallback", "pool", "split"]
ROUTE_KINDS: tuple[RouteKind, ...] = ("fallback", "pool", "split")
STRATEGIES = ("round-robin", "least-busy", "latency", "cost")
STRATEGY_MEANINGS = ("round-robin (each call starts one member further), least-busy (the fewest calls in flight), "
                     "latency (the fastest lately, by time to first token), cost (the cheapest)")


@record(slots=False)
class RouteSpec:
    """One route as written: its kind, its members in order, the pool's strategy, the split's weights."""

    name: str
    kind: RouteKind
    members: tuple[str, ...]
    strategy: str = "round-robin"
    weights: tuple[float, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)  # the route's other keys, checked


def is_route(values: Mapping[str, Any]) -> bool:
    return "route" in values


def route_keys() -> dict[str, Any]:
    """The keys a route may set besides its shape: retries, limits (for the route as a whole, on top of each
    member's), budgets, generation defaults."""
    from llmswitch.profiles import GENERATION_KEYS, PROFILE_KEYS, ROUTER_KEYS

    keys = {**PROFILE_KEYS, **GENERATION_KEYS, **ROUTER_KEYS}
    for name in ("backend", "model", "price_input_per_mtok", "price_output_per_mtok", "price_cached_input_per_mtok",
                 "context_window"):
        keys.pop(name, None)
    return keys


def read_route(name: str, values: Mapping[str, Any], source: str = "") -> RouteSpec:
    """The route in ``values`` (a profile's keys), its own keys checked; members are not looked up here."""
    where = f"route '{name}'" + (f" ({source})" if source else "")
    kind = values.get("route")
    if kind not in ROUTE_KINDS:
        raise InvalidOptionError(f"{where}: route must be one of {', '.join(ROUTE_KINDS)}, not {kind!r}",
                                 remedy=_did_you_mean(kind, ROUTE_KINDS)
                                 + 'e.g. route = "fallback" with members = ["a", "b"]')
    if "backend" in values:
        raise InvalidOptionError(f"{where}: a profile either names a backend or routes to other profiles, not both",
                                 remedy=f"remove backend from [profiles.{name}], or remove route and members")
    settings = _checked_settings(values, where)
    weights: tuple[float, ...] = ()
    if kind == "split":
        members, weights = _split_weights(values, where)
    else:
        if "weights" in values:
            raise InvalidOptionError(f"{where}: weights apply to a split only (this route is a {kind})",
                                     remedy='remove weights, or make it route = "split" (its members are the '
                                            "keys of weights)")
        listed = values.get("members")
        if not isinstance(listed, list) or not all(isinstance(member, str) for member in listed):
            raise InvalidOptionError(f"{where}: members must be a list of profile names, not {listed!r}",
                                     remedy='e.g. members = ["main", "spare"] (profile names)')
        twice = sorted({member for member in listed if listed.count(member) > 1})
        if twice:
            raise InvalidOptionError(f"{where}: members lists {', '.join(repr(m) for m in twice)} more than once",
                                     remedy="list each profile once (a pool or fallback tries each member in "
                                            "turn; to favour one, use a split with weights)")
        members = tuple(listed)
    if not members:
        raise ConfigError(f"{where} has no members", remedy="name at least one profile in members (or weights)")
    strategy = values.get("strategy", "round-robin")
    if kind != "pool" and "strategy" in values:
        raise InvalidOptionError(f"{where}: strategy applies to a pool only (this route is a {kind})",
                                 remedy='remove strategy, or make it route = "pool"')
    if strategy not in STRATEGIES:
        raise InvalidOptionError(f"{where}: strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}",
                                 remedy=_did_you_mean(strategy, STRATEGIES) + STRATEGY_MEANINGS)
    return RouteSpec(name, kind, members, str(strategy), weights, settings)


_SHAPE_KEYS = ("route", "members", "weights", "strategy")


def _checked_settings(values: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The route's keys besides its shape, each checked; an unknown key first, so a typo such as ``memebrs``
    is named as a typo rather than as missing members."""
    from llmswitch.profiles import check_type

    allowed = route_keys()
    settings: dict[str, Any] = {}
    for key, value in values.items():
        if key in _SHAPE_KEYS:
            continue
        spec = allowed.get(key)
        if spec is None:
            raise InvalidOptionError(f"{where}: unknown key '{key}' for a route",
                                     remedy=_did_you_mean(key, [*_SHAPE_KEYS, *allowed])
                                     + "a route takes route, members (or weights), strategy, and: "
                                     + ", ".join(sorted(allowed)))
        settings[key] = check_type(spec, value, where)
    return settings


def _split_weights(values: Mapping[str, Any], where: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """A split's members and their weights, each a finite positive number whose total a float can hold
    (``random.choices`` refuses an infinite total at call time, which would read as a plugin's bug)."""
    table = values.get("weights")
    if not isinstance(table, dict) or not table:
        raise InvalidOptionError(f"{where}: a split needs weights, a table of member = weight",
                                 remedy="e.g. weights = { main = 80, spare = 20 } (profile names)")
    if "members" in values:
        raise InvalidOptionError(f"{where}: a split's members are the keys of its weights",
                                 remedy="remove members = [...] and keep weights = { ... }")
    for member, weight in table.items():
        if not _is_positive_number(weight):
            raise InvalidOptionError(f"{where}: the weight of '{member}' must be a positive number, not {weight!r}",
                                     remedy="weights are relative: { a = 80, b = 20 } sends 80% to a")
    weights = tuple(float(weight) for weight in table.values())
    if not math.isfinite(sum(weights)):
        raise InvalidOptionError(f"{where}: the weights add up to more than a number can hold",
                                 remedy="weights are relative, so small ones do: { a = 80, b = 20 } sends 80% to a")
    return tuple(str(member) for member in table), weights


def _is_positive_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
            and math.isfinite(value))


def _did_you_mean(word: Any, known: Any) -> str:
    """``did you mean 'latency'? `` for a near miss among ``known``, else nothing (the remedy goes on)."""
    suggestions = close_matches(word, known) if isinstance(word, str) else []
    return f"did you mean '{suggestions[0]}'? " if suggestions else ""


def shares(weights: Mapping[str, Any]) -> dict[str, float] | None:
    """Each member's share of a split's calls (0 to 1), from its relative weights; None for weights that are
    not all positive numbers (the route's own check says why)."""
    numbers = [weight for weight in weights.values() if _is_positive_number(weight)]
    if not weights or len(numbers) != len(weights) or not math.isfinite(total := sum(numbers)):
        return None
    return {str(member): weight / total for member, weight in weights.items()}


def check_routes(name: str, lookup: Any, known: list[str]) -> dict[str, RouteSpec]:
    """Every route reachable from ``name`` (``lookup(name)`` gives a profile's values and source, or None),
    checked: each member exists (else close names), no route reaches itself (the cycle is named)."""
    found: dict[str, RouteSpec] = {}
    sources: dict[str, str] = {}

    def visit(current: str, path: list[str]) -> None:
        if current in path:
            cycle = " -> ".join([*path[path.index(current):], current])
            raise ConfigError(f"route '{path[0]}' loops: {cycle}",
                              remedy=f"remove '{current}' from the members of '{path[-1]}'")
        looked_up = lookup(current)
        if looked_up is None:
            owner = path[-1]
            suggestions = close_matches(current, known)
            if suggestions:
                fix = ("did you mean " + " or ".join(f"'{s}'" for s in suggestions)
                       + f"? Correct the name in the members of '{owner}'")
            else:
                fix = f"add a profile named '{current}', or take it out of the members of '{owner}'"
            where = f"route '{owner}'" + (f" ({sources[owner]})" if sources.get(owner) else "")
            raise ConfigError(f"{where} names '{current}', which is not a profile",
                              remedy=fix + "; `llmswitch profiles list` shows the profiles")
        values, source = looked_up
        sources[current] = source
        if not is_route(values):
            return
        spec = found.get(current) or read_route(current, values, source)
        found[current] = spec
        for member in spec.members:
            visit(member, [*path, current])

    visit(name, [])
    return found
