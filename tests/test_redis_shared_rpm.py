"""4 processes x 50 requests share one ``rpm`` through a real Redis, against a server that counts them.

The limiter is a sliding window: in any window no more than the limit is taken. The server records when each
request arrives, and checks:

- never more than the limit in any window of arrivals (shortened by the spread of the delay between taking a
  place and arriving, since a request delayed more than another may land in the next window);
- the run as a whole: no more than 10% below the limit per window (the processes leave none of it unused).

The first test takes places from RedisState directly with a 1 s window, so it can check the limiter exactly in
seconds; the second goes through a profile's ``rpm`` (a minute's window) as every caller does, with
``[router] state`` naming the Redis.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from llmswitch.testing.redis_server import RedisServer
from tests.servers.http import LocalServer
from tests.servers.openai_server import OpenAIHandler

pytest.importorskip("redis")
pytest.importorskip("llmswitch_openai")

PROCESSES, REQUESTS = 4, 50
REPO = Path(__file__).resolve().parents[1]


class CountingHandler(OpenAIHandler):
    """The OpenAI protocol, noting when each request arrived (and when its place was taken, if it says)."""

    arrivals: list[tuple[float, float | None]]  # (arrived, taken), set per server
    lock: threading.Lock

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        arrived = time.time()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        stamp = re.search(rb"taken at ([0-9.e+-]+)", body)
        if b"warm-up" not in body:
            with self.lock:
                self.arrivals.append((arrived, float(stamp.group(1)) if stamp else None))
        self.send_json(200, {
            "id": "chatcmpl-local", "object": "chat.completion", "created": 0, "model": "test-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
        })


def most_in_any_window(times: list[float], window_s: float) -> int:
    """The largest number of ``times`` inside one half-open window ``[t, t + window_s)``."""
    times = sorted(times)
    most, start = 0, 0
    for end, at in enumerate(times):
        while times[start] <= at - window_s:
            start += 1
        most = max(most, end - start + 1)
    return most


def run_workers(config_file: Path, profile_lines: str, worker_args: list[str],
                timeout: float) -> list[tuple[float, float | None]]:
    """Start the counting server and PROCESSES workers together; every request the server counted (each
    worker's one chat to the profile ``warm-up`` is not counted)."""
    handler = type("Counting", (CountingHandler,), {"arrivals": [], "lock": threading.Lock()})
    with LocalServer(handler) as server:
        warm_up = '[profiles.warm-up]\nbackend = "openai"\nbase_url = "{server}/v1"\nmodel = "test-model"\n\n'
        config_file.write_text((profile_lines + warm_up).replace("{server}", server.url), encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        workers = [
            subprocess.Popen([sys.executable, "-m", "tests.redis_rpm_worker", *worker_args], cwd=REPO, env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(PROCESSES)
        ]
        try:
            for worker in workers:  # every one imported and connected before any starts
                assert worker.stdout is not None and worker.stdout.readline().strip() == "ready", worker.stderr
            for worker in workers:
                assert worker.stdin is not None
                worker.stdin.write("go\n")
                worker.stdin.flush()
            for worker in workers:
                out, err = worker.communicate(timeout=timeout)
                assert worker.returncode == 0 and out.strip() == "done", err
                assert "Traceback" not in err and "unreachable" not in err, err
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait()
        return list(handler.arrivals)


def per_window_over_the_run(arrived: list[float], window_s: float) -> float:
    """Requests per window over the whole run, counting the last window the run opened."""
    return len(arrived) / ((max(arrived) - min(arrived)) / window_s + 1)


def test_four_processes_share_one_rpm_through_redis(redis_server: RedisServer, config_file: Path) -> None:
    limit, window_s = 20, 1.0
    arrivals = run_workers(
        config_file, '[profiles.counted]\nbackend = "openai"\nbase_url = "{server}/v1"\nmodel = "test-model"\n',
        ["direct", redis_server.url, "counted", str(limit), str(window_s), str(REQUESTS)], timeout=120)
    assert len(arrivals) == PROCESSES * REQUESTS
    arrived = [a for a, _ in arrivals]
    delays = [a - t for a, t in arrivals if t is not None]
    jitter = max(delays) - min(delays)
    assert jitter < window_s / 2, f"the delay from taking a place to arriving varied by {jitter:.3f} s"

    assert most_in_any_window(arrived, window_s - jitter) <= limit
    per_window = per_window_over_the_run(arrived, window_s)
    print(f"\n{len(arrived)} requests in {max(arrived) - min(arrived):.2f} s: {per_window:.2f} per window of "
          f"{window_s} s (limit {limit}); delay jitter {jitter * 1000:.1f} ms")
    assert 0.9 * limit <= per_window <= limit, f"{per_window:.2f} requests per window against a limit of {limit}"


@pytest.mark.slow  # a minute: the profile's rpm window is 60 s
def test_four_processes_share_a_profiles_rpm_through_the_configured_redis(
    redis_server: RedisServer, config_file: Path,
) -> None:
    rpm = 100  # 200 requests: 100 at once, the next 100 one window later
    arrivals = run_workers(
        config_file,
        f'[router]\nstate = "{redis_server.url}"\n\n'
        '[profiles.counted]\nbackend = "openai"\nbase_url = "{server}/v1"\nmodel = "test-model"\n'
        f'rpm = {rpm}\nmax_retries = 0\n',
        ["profile", "counted", str(REQUESTS)], timeout=240)
    assert len(arrivals) == PROCESSES * REQUESTS
    arrived = [a for a, _ in arrivals]
    # Admission and arrival are a few milliseconds apart: allow a whole second.
    assert most_in_any_window(arrived, 60.0 - 1.0) <= rpm
    per_window = per_window_over_the_run(arrived, 60.0)
    print(f"\n{len(arrived)} requests in {max(arrived) - min(arrived):.2f} s: {per_window:.2f} per minute "
          f"(rpm {rpm})")
    assert 0.9 * rpm <= per_window <= rpm, f"{per_window:.2f} requests per minute against an rpm of {rpm}"


def test_the_window_counter_counts_what_it_should() -> None:
    assert most_in_any_window([0.0, 0.5, 0.99, 1.0, 1.5], 1.0) == 3
    assert most_in_any_window([0.0, 1.0, 2.0], 1.0) == 1
    assert most_in_any_window([5.0], 1.0) == 1
