"""A route's diagnosis: healthy when enough of its members are (a pool half of them, a fallback or a split one),
each member's verdict a check under it with what is wrong with it, each member's own diagnosis kept
(``Diagnosis.members``: the rows ``doctor`` prints under the route), and the route's own budget judged against
its members' spend added up."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from llmswitch.doctor.report import Diagnosis, finish
from llmswitch.errors import LLMSwitchError
from llmswitch.secrets import redact
from llmswitch.types import Check, CheckStatus, Status, describe_problems

if TYPE_CHECKING:
    from llmswitch.client import Client
    from llmswitch.profiles import Profile
    from llmswitch.router.resolved import ResolvedRoute


def diagnose_route(client: Client, profile: Profile, diagnose_member: Callable[[str], Diagnosis]) -> Diagnosis:
    """Check the route's members with ``diagnose_member`` and judge the route by them."""
    from llmswitch.router.resolved import ResolvedRoute, route_report

    diagnosis = Diagnosis(profile.name, backend=str(profile.settings.get("route")), model=None, is_route=True)
    try:
        route = client.resolve(profile.name)
    except LLMSwitchError as error:
        diagnosis.checks.append(Check("config", CheckStatus.FAIL, redact(error.message),
                                      error.remedy or f"fix [profiles.{profile.name}] in {profile.source}"))
        return finish(diagnosis)
    assert isinstance(route, ResolvedRoute)
    diagnosis.model = route.target.model
    rows, up, checked = [], 0, 0
    for name in route.route.members:
        member = diagnose_member(name)
        diagnosis.members.append(member)
        healthy = member.status in (Status.OK, Status.DEGRADED, Status.NOT_CHECKED)
        up += healthy
        checked += member.status is not Status.NOT_CHECKED
        trouble = describe_problems(member.checks)
        rows.append(Check(f"member {name}", CheckStatus.PASS if healthy else CheckStatus.FAIL,
                          f"{member.status.value} ({member.backend or '?'} / {member.model or '?'})"
                          + (f": {trouble}" if trouble else ""),
                          None if healthy else f"see `llmswitch doctor {name}`"))
    report = route_report(route.route, up, rows)
    diagnosis.checks.extend(report.checks)
    budget = _check_budget(diagnosis, route)
    if budget is not None:
        diagnosis.checks.append(budget)
    diagnosis.status = report.status
    if budget is not None and budget.status is not CheckStatus.PASS and report.status is Status.OK:
        diagnosis.status = Status.DOWN if budget.status is CheckStatus.FAIL else Status.DEGRADED
    if diagnosis.status is Status.OK and not checked:
        diagnosis.status = Status.NOT_CHECKED  # offline: no member's server was asked
    return diagnosis


def _check_budget(diagnosis: Diagnosis, route: ResolvedRoute) -> Check | None:
    """The route's own budget, against its members' spend added up (as a call through it is checked)."""
    from llmswitch.accounting import budgets_of
    from llmswitch.doctor.checks import judge_budgets

    if not budgets_of(route.settings):
        return None
    unpriced = diagnosis.unpriced()
    return judge_budgets(
        diagnosis, route.budget_statuses, price_known=not unpriced,
        unknown_price_remedy=f"set price_input_per_mtok and price_output_per_mtok in [profiles.{', '.join(unpriced)}]"
        " (USD per million tokens), or remove the route's budget")
