"""One of the processes of the shared-``rpm`` tests (tests/test_redis_shared_rpm.py): run as a child process.

``python -m tests.redis_rpm_worker direct REDIS_URL PROFILE LIMIT WINDOW_S REQUESTS`` takes each request's place
from the shared window itself (RedisState.try_take), and puts the time it was taken in the prompt, so the server
can check the limiter exactly. ``python -m tests.redis_rpm_worker profile PROFILE REQUESTS`` sends through the
profile as any caller does: the router admits each call under the profile's ``rpm``, in the state named by
the config's ``[router] state``. Both wait for a line on stdin first, so every worker starts together.
"""

from __future__ import annotations

import sys
import time

from llmswitch.client import Client
from llmswitch.router.redis_state import RedisState


class StampedClock:
    """time.time, remembering the last reading: the ``now`` a successful take was recorded at."""

    def __init__(self) -> None:
        self.last = 0.0

    def __call__(self) -> float:
        self.last = time.time()
        return self.last


def ready(client: Client) -> None:
    """One chat the server does not count (through a profile without limits), so the first counted one is no
    slower than the rest (modules loaded, connection open); then wait for the go."""
    warm_up = client.resolve("warm-up")
    warm_up.complete(warm_up.request("warm-up"))
    print("ready", flush=True)
    sys.stdin.readline()


def direct(url: str, profile: str, limit: float, window_s: float, requests: int) -> None:
    clock = StampedClock()
    state = RedisState.from_url(url, clock=clock)
    state.in_flight("warm-up")  # connected before the go
    client = Client()
    resolved = client.resolve(profile)
    ready(client)
    try:
        for _ in range(requests):
            while (wait := state.try_take(f"rpm:{profile}", 1, limit, window_s)) > 0:
                time.sleep(wait)
            resolved.complete(resolved.request(f"taken at {clock.last!r}"))
    finally:
        state.close()


def through_profile(profile: str, requests: int) -> None:
    client = Client()
    client.router_state.in_flight("warm-up")  # the configured state, connected before the go
    resolved = client.resolve(profile)
    ready(client)
    for _ in range(requests):
        resolved.complete(resolved.request(f"sent at {time.time()!r}"))


def main(argv: list[str]) -> None:
    if argv[0] == "direct":
        direct(argv[1], argv[2], float(argv[3]), float(argv[4]), int(argv[5]))
    else:
        through_profile(argv[1], int(argv[2]))
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
