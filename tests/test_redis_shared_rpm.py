"""4 processes x 50 requests share one ``rpm`` through a real Redis, against a server that counts them.

The limiter is a sliding window: in any ``WINDOW_S`` no more than ``LIMIT`` places are taken. The server
records when each request arrives and the time its place was taken by the caller's clock (carried in the
prompt), and checks:

- the arrivals: never more than LIMIT in any window of WINDOW_S - J, where J is the spread of the delay between
  taking a place and arriving (a request delayed more than another may land in the next window; J bounds it);
- the run as a whole: no more than 10% below LIMIT per window (the processes do not leave the limit unused).

The window is 1 s rather than a minute so the run takes seconds; the arithmetic is the same.
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

PROCESSES, REQUESTS, LIMIT, WINDOW_S = 4, 50, 20, 1.0
REPO = Path(__file__).resolve().parents[1]


class CountingHandler(OpenAIHandler):
    """The OpenAI protocol, noting when each request arrived and when its place was taken."""

    arrivals: list[tuple[float, float]]  # (arrived, taken), set per server
    lock: threading.Lock

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        arrived = time.time()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        taken = float(re.search(rb"taken at ([0-9.e+-]+)", body).group(1))  # type: ignore[union-attr]
        with self.lock:
            self.arrivals.append((arrived, taken))
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


def test_four_processes_share_one_rpm_through_redis(redis_server: RedisServer, config_file: Path) -> None:
    handler = type("Counting", (CountingHandler,), {"arrivals": [], "lock": threading.Lock()})
    with LocalServer(handler) as server:
        config_file.write_text(f'[profiles.counted]\nbackend = "openai"\nbase_url = "{server.url}/v1"\n'
                               'model = "test-model"\nmax_tokens = 5\n', encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "tests.redis_rpm_worker", redis_server.url, "counted", str(LIMIT),
                 str(WINDOW_S), str(REQUESTS)],
                cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
                out, err = worker.communicate(timeout=120)
                assert worker.returncode == 0 and out.strip() == "done", err
                assert "Traceback" not in err and "unreachable" not in err, err
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait()
        arrivals = handler.arrivals

    assert len(arrivals) == PROCESSES * REQUESTS
    arrived = [a for a, _ in arrivals]
    delays = [a - t for a, t in arrivals]
    jitter = max(delays) - min(delays)
    assert jitter < WINDOW_S / 2, f"the delay from taking a place to arriving varied by {jitter:.3f} s"

    assert most_in_any_window(arrived, WINDOW_S - jitter) <= LIMIT

    # Over the run: requests per window, counting the last window the run opened.
    windows = (max(arrived) - min(arrived)) / WINDOW_S + 1
    per_window = len(arrived) / windows
    print(f"\n{len(arrived)} requests in {max(arrived) - min(arrived):.2f} s: {per_window:.2f} per window of "
          f"{WINDOW_S} s (limit {LIMIT}); delay jitter {jitter * 1000:.1f} ms")
    assert per_window >= 0.9 * LIMIT, f"{per_window:.2f} requests per window, more than 10% below {LIMIT}"
    assert per_window <= LIMIT


def test_the_window_counter_counts_what_it_should() -> None:
    assert most_in_any_window([0.0, 0.5, 0.99, 1.0, 1.5], 1.0) == 3
    assert most_in_any_window([0.0, 1.0, 2.0], 1.0) == 1
    assert most_in_any_window([], 1.0) == 0
