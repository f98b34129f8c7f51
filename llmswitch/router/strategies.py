"""In which order a route tries its members: a fallback's own order, a pool's strategy, a split's draw.

- ``round-robin``: each call starts one member further along (a counter per route, in this process);
- ``least-busy``: fewest calls in flight first (the router state's counts, so shared when the state is);
- ``latency``: fastest first, by a moving average of each member's answers (members never measured first,
  so each gets measured);
- ``cost``: cheapest first, by the member's price per million input + output tokens (unknown prices last);
- a split draws its first member by weight; the others follow, heaviest first, as fallbacks.

Ties keep the round-robin rotation, so equivalent members share the load. Only the order is chosen here:
cooldowns and limits are the plan's and the driver's.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence

from llmswitch.router.routes import RouteSpec

LATENCY_WEIGHT = 0.3  # the weight of the newest answer in a member's moving average

_lock = threading.Lock()
_turns: dict[str, int] = {}
_latency: dict[str, float] = {}


def next_turn(route: str) -> int:
    with _lock:
        turn = _turns.get(route, 0)
        _turns[route] = turn + 1
        return turn


def note_latency(member: str, seconds: float) -> None:
    """Fold one answer's latency into ``member``'s moving average (for the ``latency`` strategy)."""
    with _lock:
        before = _latency.get(member)
        _latency[member] = seconds if before is None else (1 - LATENCY_WEIGHT) * before + LATENCY_WEIGHT * seconds


def mean_latency(member: str) -> float | None:
    with _lock:
        return _latency.get(member)


def forget() -> None:
    """Start over (tests)."""
    with _lock:
        _turns.clear()
        _latency.clear()


def order(spec: RouteSpec, rng: random.Random, *, busy: Callable[[str], int], price: Callable[[str], float | None]
          ) -> list[str]:
    """The route's direct members in the order to try them."""
    members = list(spec.members)
    if spec.kind == "fallback":
        return members
    if spec.kind == "split":
        first = rng.choices(range(len(members)), weights=spec.weights)[0]
        rest = sorted((i for i in range(len(members)) if i != first), key=lambda i: -spec.weights[i])
        return [members[first], *(members[i] for i in rest)]
    turn = next_turn(spec.name) % len(members)
    rotated = members[turn:] + members[:turn]
    if spec.strategy == "round-robin":
        return rotated
    if spec.strategy == "least-busy":
        return _stable(rotated, busy)
    if spec.strategy == "latency":
        return _stable(rotated, lambda member: mean_latency(member) or 0.0)

    def cost(member: str) -> float:
        known = price(member)
        return float("inf") if known is None else known

    return _stable(rotated, cost)


def _stable(members: Sequence[str], key: Callable[[str], float]) -> list[str]:
    return sorted(members, key=key)  # sorted() is stable: ties keep the rotation
