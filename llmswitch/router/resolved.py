"""A route resolved: its members bound to their backends, ready to call like any profile.

:class:`ResolvedRoute` is a :class:`~llmswitch.client.ResolvedProfile` (so ``chat``, the TUI, a
:class:`~llmswitch.conversation.Conversation` and the Python API take it unchanged) whose calls are planned
over its leaves (nested routes flattened, each ordered by its own kind and strategy). ``target.backend`` is
the route's kind and ``target.model`` its members; the member that answered a call is ``result.resolved``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from llmswitch.client import ResolvedProfile
from llmswitch.router.limits import Gate, flight_key, sets_limits
from llmswitch.router.policy import RetryPolicy, member_keys
from llmswitch.router.routes import RouteSpec
from llmswitch.router.state import RouterState
from llmswitch.types import HealthReport, Request, Status, TokenCount

if TYPE_CHECKING:
    from llmswitch.accounting import BudgetStatus
    from llmswitch.response_cache import CachePolicy


@dataclass
class ResolvedRoute(ResolvedProfile):
    spec: RouteSpec | None = None
    members: dict[str, ResolvedProfile] = field(default_factory=dict)  # direct members, leaves or routes
    rng: random.Random = field(default_factory=random.Random)  # a split's draw (seed it for a fixed order)
    # The retry keys given on the command line (-o) for this call: above every member's own, as the user asked.
    imposed: Mapping[str, Any] = field(default_factory=dict)

    @property
    def route(self) -> RouteSpec:
        assert self.spec is not None
        return self.spec

    def leaves(self) -> list[ResolvedProfile]:
        return list(self._leaves_by_name.values())

    # What a call needs of the route's shape, worked out at its first call: the members do not change once
    # resolved, and every call would otherwise walk the tree again (the router's cost per call, see
    # bench/bench_router.py).

    @cached_property
    def _leaves_by_name(self) -> dict[str, ResolvedProfile]:
        found: dict[str, ResolvedProfile] = {}
        for member in self.members.values():
            for leaf in member.leaves():
                found.setdefault(leaf.name, leaf)
        return found

    @cached_property
    def _call_gates(self) -> dict[str, tuple[Gate, ...]]:
        return self.gates()

    @cached_property
    def _counted(self) -> list[str]:
        return self.counted_keys()

    def routes_to(self, member: str) -> tuple[str, ...]:
        """This route, then each nested route on the way to ``member`` (where :meth:`leaves` first finds it)."""
        return self._path_to(member) or (self.name,)

    def _path_to(self, member: str) -> tuple[str, ...] | None:
        for child in self.members.values():
            if isinstance(child, ResolvedRoute):
                inner = child._path_to(member)
                if inner is not None:
                    return (self.name, *inner)
            elif child.name == member:
                return (self.name,)
        return None

    def order(self, in_flight: Mapping[str, int] | None = None) -> list[str]:
        """The leaves in the order this call tries them (each nested route ordered by its own rule).
        ``in_flight``: the counts under :meth:`counted_keys`, read by the caller (the driver awaits them on the
        async path); None reads them here."""
        from llmswitch.router import strategies

        counts = self.in_flight_counts() if in_flight is None else in_flight
        members = self.members

        def busy(name: str) -> int:
            return sum(counts.get(flight_key(leaf.name), 0) for leaf in members[name].leaves())

        def price(name: str) -> float | None:
            return _cheapest(self.members[name])

        ordered: list[str] = []
        for name in strategies.order(self.route, self.rng, busy=busy, price=price):
            member = self.members[name]
            ordered.extend(member.order(counts) if isinstance(member, ResolvedRoute) else [member.name])
        return list(dict.fromkeys(ordered))

    def counted_keys(self) -> list[str]:
        """The state's in-flight keys the order depends on: every leaf of a ``least-busy`` pool, at any depth."""
        keys: list[str] = []
        if self.route.kind == "pool" and self.route.strategy == "least-busy":
            keys.extend(flight_key(leaf.name) for leaf in self.leaves())
        for member in self.members.values():
            if isinstance(member, ResolvedRoute):
                keys.extend(member.counted_keys())
        return list(dict.fromkeys(keys))

    def in_flight_counts(self) -> dict[str, int]:
        state = self._state()
        return {key: state.in_flight(key) for key in self.counted_keys()}

    def gates(self, around: tuple[Gate, ...] = ()) -> dict[str, tuple[Gate, ...]]:
        """For each leaf, the limits a call to it passes: its own, then those of every route on its way that
        sets one (innermost first), so a route's ``max_concurrent`` holds across its members."""
        if sets_limits(self.settings):
            around = ((self.name, self.settings), *around)
        found: dict[str, tuple[Gate, ...]] = {}
        for member in self.members.values():
            if isinstance(member, ResolvedRoute):
                for leaf, gates in member.gates(around).items():
                    found.setdefault(leaf, gates)
            else:
                found.setdefault(member.name, ((member.name, member.settings), *around))
        return found

    @cached_property
    def policies(self) -> dict[str, RetryPolicy]:
        """Each leaf's retry policy (see :mod:`llmswitch.router.policy`): its own retry and cooldown keys, else
        those of the nearest route on its way that sets them; keys given with -o above them all."""
        imposed = member_keys(self.imposed)
        return {leaf: RetryPolicy.from_settings({**keys, **imposed}) for leaf, keys in self._member_keys({}).items()}

    def _member_keys(self, around: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        inherited = {**around, **member_keys(self.settings)}
        found: dict[str, dict[str, Any]] = {}
        for member in self.members.values():
            if isinstance(member, ResolvedRoute):
                for leaf, keys in member._member_keys(inherited).items():
                    found.setdefault(leaf, keys)
            else:
                found.setdefault(member.name, {**inherited, **member_keys(member.settings)})
        return found

    def _state(self) -> RouterState:
        from llmswitch.router.state import shared_local_state

        return self.state or shared_local_state()

    def routed_call(self, request: Request, hook: str) -> Any:
        from llmswitch.router.driver import RoutedCall
        from llmswitch.router.plan import CallPlan

        leaves = self._leaves_by_name
        plan = CallPlan(list(leaves), self.policy, time.monotonic(), self.rng,
                        spread=self.route.kind != "fallback", cools=True,
                        windows=lambda name: context_window(leaves[name]), policies=self.policies)
        return RoutedCall(plan, leaves, lambda member: member_request(member, request), self._state(),
                          self.observers, hook, gates=self._call_gates, ordering=self.order,
                          counted=self._counted, route=self.name)

    # ---- what a profile offers, for a route ----------------------------------------------------------------

    def cache_identity(self) -> dict[str, Any]:
        """Every leaf's identity with its own generation defaults (a member's system prompt shapes its answer
        and is not in the route's request): any member's answer is the route's, so kind and strategy are not."""
        from llmswitch.profiles import GENERATION_KEYS

        return {"route": [{**leaf.cache_identity(),
                           "defaults": {**{key: leaf.settings[key] for key in GENERATION_KEYS
                                           if leaf.settings.get(key) is not None}, **leaf._default_extras()}}
                          for leaf in self.leaves()]}

    def _cache_policy(self, request: Request) -> CachePolicy | None:
        """The route's policy, for what its members send: where the route's request sets no temperature, a
        member's own temperature applies (:func:`member_request`), and one above 0 is a sampled answer."""
        policy = super()._cache_policy(request)
        if policy is None or policy.temperature or request.temperature is not None:
            return policy
        sampled = any((leaf.settings.get("temperature") or 0) > 0 for leaf in self.leaves())
        return None if sampled else policy

    def _require_key(self) -> None:
        """Each member checks its own key when its turn comes (a member without one is passed over)."""

    def _default_extras(self) -> dict[str, Any]:
        """None: a route's request carries only what the route and the call set; each member adds its own
        defaults when its turn comes (:func:`member_request`)."""
        return {}

    def worst_case_usd(self, request: Request) -> float | None:
        """The most this call could cost: on the dearest member (None when a member's price is unknown)."""
        worst: float | None = 0.0
        for leaf in self.leaves():
            usd = leaf.worst_case_usd(member_request(leaf, request))
            worst = None if usd is None or worst is None else max(worst, usd)
        return worst

    def check_budget(self, request: Request) -> None:
        """The route's own budget covers its members together: their spend in the period added up, against the
        most this call could cost on the dearest member. Each member's own budget is checked on its turn."""
        from llmswitch.accounting import budget_refusal, budgets_of, over_budget, unknown_price_refusal

        if not budgets_of(self.settings):
            return
        worst = self.worst_case_usd(request)
        if worst is None:
            raise unknown_price_refusal(
                f"route '{self.name}'", "one of its members",
                remedy="set price_input_per_mtok and price_output_per_mtok in each member profile (USD per "
                "million tokens), or remove the route's budget")
        status = over_budget(self.budget_statuses(), worst)
        if status is not None:
            raise budget_refusal(
                f"route '{self.name}'", status, worst, spent_by=" across its members",
                remedy=f"raise budget_usd_per_{status.period} in [profiles.{self.name}], lower max_tokens, or wait "
                "for the budget to reset")

    def budget_statuses(self) -> list[BudgetStatus]:
        """The route's own budgets (empty when it sets none) against its members' spend in each period, added
        up: what :meth:`check_budget` and ``doctor`` judge."""
        from llmswitch.accounting import BudgetStatus, budget_status, budgets_of

        if not budgets_of(self.settings):
            return []
        per_leaf = [budget_status(leaf.name, self.settings, state=self.state) for leaf in self.leaves()]
        return [BudgetStatus(statuses[0].period, statuses[0].budget_usd, sum(s.spent_usd for s in statuses),
                             statuses[0].since) for statuses in zip(*per_leaf, strict=True)]

    def count_tokens(self, request: Request) -> TokenCount:
        first = self.leaves()[0]
        return first.count_tokens(member_request(first, request))

    def first_use_notice(self) -> str | None:
        return None

    def health(self, timeout: float = 10.0, offline: bool = False) -> HealthReport:
        """Healthy when enough members are: a fallback or a split needs one, a pool needs half of them."""
        from llmswitch.types import Check, CheckStatus, describe_problems

        checks = []
        up = 0
        for name, member in self.members.items():
            report = member.health(timeout, offline)
            healthy = report.status in (Status.OK, Status.DEGRADED, Status.NOT_CHECKED)
            up += healthy
            trouble = describe_problems(report.checks)  # which member, and what is wrong with it
            checks.append(Check(f"member {name}", CheckStatus.PASS if healthy else CheckStatus.FAIL,
                                report.status.value + (f": {trouble}" if trouble else ""),
                                None if healthy else f"see `llmswitch doctor {name}`"))
        return route_report(self.route, up, checks)

    async def ahealth(self, timeout: float = 10.0, offline: bool = False) -> HealthReport:
        import asyncio

        return await asyncio.to_thread(self.health, timeout, offline)


def route_report(spec: RouteSpec, up: int, checks: list[Any]) -> HealthReport:
    """A route's health from its members': ok when enough are up (a pool needs half of them, a fallback or a
    split one), degraded when fewer are, down when none is. Each member's row follows the verdict."""
    from llmswitch.types import Check, CheckStatus

    needed = max(1, (len(spec.members) + 1) // 2) if spec.kind == "pool" else 1
    if up == 0:
        verdict, status = Check("route", CheckStatus.FAIL, f"no member of {spec.kind} '{spec.name}' is up",
                                remedy="fix a member (see its row) or add one that answers"), Status.DOWN
    elif up < needed:
        verdict, status = Check("route", CheckStatus.WARN, f"{up} of {len(spec.members)} members up, {needed} "
                                "needed", remedy="fix the members that are down (see their rows)"), Status.DEGRADED
    else:
        verdict, status = Check("route", CheckStatus.PASS, f"{up} of {len(spec.members)} members up"), Status.OK
    return HealthReport(status=status, checks=(verdict, *checks))


def member_request(member: ResolvedProfile, request: Request) -> Request:
    """The route's request as ``member`` sends it: the member's own defaults under what the route set."""
    return member.request(
        list(request.messages), system=request.system, temperature=request.temperature, top_p=request.top_p,
        top_k=request.top_k, max_tokens=request.max_tokens, seed=request.seed,
        stop=list(request.stop) or None, **dict(request.extras))


def context_window(member: ResolvedProfile) -> int | None:
    """The member's context window in tokens: its profile's ``context_window``, else its price table's entry
    for the model (None when neither says)."""
    from llmswitch.accounting import price_of

    own = member.settings.get("context_window")
    return int(own) if own is not None else price_of(member).context_window


def _cheapest(member: ResolvedProfile) -> float | None:
    """Price per million input + output tokens of the member (its cheapest leaf for a route), None if unknown."""
    from llmswitch.accounting import price_of

    known = []
    for leaf in member.leaves():
        price = price_of(leaf)
        if price.known and price.input_per_mtok is not None and price.output_per_mtok is not None:
            known.append(price.input_per_mtok + price.output_per_mtok)
    return min(known) if known else None


def route_target(spec: RouteSpec, first: ResolvedProfile) -> Any:
    """What a route shows where a profile shows its backend and model: its kind and its members."""
    from dataclasses import replace

    return replace(first.target, profile=spec.name, backend=spec.kind, model=", ".join(spec.members),
                   notes=(), key_withheld=None)


def resolve_route(client: Any, profile: Any, specs: Mapping[str, RouteSpec], *, model: str | None,
                  member_settings: Mapping[str, Any], route_settings: Mapping[str, Any],
                  api_key: str | None) -> ResolvedRoute:
    """Resolve a checked route and its members, depth first (``specs`` has every route reachable)."""
    spec = specs[profile.name]
    members: dict[str, ResolvedProfile] = {}
    for name in spec.members:
        if name in specs:
            members[name] = resolve_route(client, client.store.get(name), specs, model=model,
                                          member_settings=member_settings, route_settings={}, api_key=api_key)
        else:
            members[name] = client.resolve(name, model=model, settings=member_settings or None, api_key=api_key)
    settings = {**spec.settings, **route_settings}
    first = next(iter(members.values()))
    return ResolvedRoute(profile=profile, handle=first.handle, settings=settings, target=route_target(spec, first),
                         observers=client.observers, state=client.router_state, spec=spec, members=members,
                         imposed=route_settings)
