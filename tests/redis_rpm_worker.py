"""One of the processes of the shared-``rpm`` test (tests/test_redis_shared_rpm.py): run as a child process.

``python -m tests.redis_rpm_worker REDIS_URL PROFILE LIMIT WINDOW_S REQUESTS``: waits for a line on stdin (so
every worker starts together), then sends REQUESTS chats to PROFILE, each only once the shared window in Redis
admits it. Each prompt carries the time its place was taken, so the server can check the limiter itself.
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


def main(argv: list[str]) -> None:
    url, profile, limit, window_s, requests = argv[0], argv[1], float(argv[2]), float(argv[3]), int(argv[4])
    clock = StampedClock()
    state = RedisState.from_url(url, clock=clock)
    resolved = Client().resolve(profile)
    resolved.health(timeout=10.0)  # loads the HTTP stack and opens a connection, so the first chat is not slower
    state.in_flight("warm-up")  # and connects to Redis
    print("ready", flush=True)
    sys.stdin.readline()
    try:
        for _ in range(requests):
            while (wait := state.try_take(f"rpm:{profile}", 1, limit, window_s)) > 0:
                time.sleep(wait)
            resolved.complete(resolved.request(f"taken at {clock.last!r}"))
    finally:
        state.close()
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
