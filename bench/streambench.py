"""What the three streaming benchmarks share: the protocol server in a subprocess, the expected text, the
plugin runner, interleaved median timing and the ratio report. Each bench_*_stream.py keeps only what is
specific to its protocol (the plain httpx2 + json.loads baseline, and the SDK for comparison)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROMPT = "Tell me a long story."


def start_server(module: str, tokens: int, *extra: str) -> tuple[subprocess.Popen[str], str]:
    """Start ``tests.servers.<module>`` streaming ``tokens`` words; return the process and its base URL."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen(
        [sys.executable, "-m", f"tests.servers.{module}", "--tokens", str(tokens), *extra],
        cwd=REPO, env=env, stdout=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    if not url.startswith("http://"):
        process.kill()
        raise SystemExit(f"the benchmark server did not start (said {url!r})")
    return process, url


def expected_text(tokens: int) -> str:
    sys.path.insert(0, str(REPO))
    from tests.servers.http import words

    return "".join(words(tokens))


def plugin_in_process(profile: str) -> Callable[[], str]:
    """Stream the prompt through the installed plugin, the way `llmswitch chat` does."""
    from llmswitch.client import Client

    resolved = Client().resolve(profile)

    def run() -> str:
        result = resolved.stream(resolved.request(PROMPT))
        for _event in result:
            pass
        if result.error is not None:
            raise SystemExit(f"the plugin failed: {result.error}")
        return result.text

    return run


def timed(run: Callable[[], str], expected: str) -> tuple[float, float]:
    """Seconds of wall time and of this process's CPU time (for an in-process runner: its own work, without
    waiting for the server or the disk)."""
    started, cpu_started = time.perf_counter(), time.process_time()
    text = run()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    if text.strip() != expected.strip():
        raise SystemExit(f"wrong answer: {len(text)} characters instead of {len(expected)}")
    return elapsed, cpu


def compare(runners: dict[str, Callable[[], str]], expected: str, runs: int,
            cpu: dict[str, float] | None = None) -> dict[str, float]:
    """Median seconds of each runner; runs interleaved so drifting machine load hits all of them alike.
    ``cpu``: filled with the median CPU seconds of each (in-process runners only: a child process's work is
    not this process's)."""
    for run in runners.values():
        timed(run, expected)  # warm up: imports, connection pool, the server's encoded stream
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in runners}
    for _ in range(runs):
        for name, run in runners.items():
            samples[name].append(timed(run, expected))
    if cpu is not None:
        cpu.update({name: statistics.median(each[1] for each in values) for name, values in samples.items()})
    return {name: statistics.median(each[0] for each in values) for name, values in samples.items()}


def report(title: str, times: dict[str, float], baseline: str, goal: float | None) -> None:
    print(title)
    base = times[baseline]
    for name, seconds in times.items():
        ratio = seconds / base
        mark = ""
        if name != baseline and goal is not None and name.startswith("llmswitch"):
            mark = f"  (goal <= {goal}x: {'met' if ratio <= goal else 'NOT met'})"
        print(f"  {name:<34} {seconds * 1000:8.1f} ms  {ratio:5.2f}x{mark}")


def report_in_process(runners: dict[str, Callable[[], str]], expected: str, runs: int, baseline: str,
                      goal: float) -> None:
    """Compare in-process runners; print their wall times, then their CPU times (the server's apart)."""
    cpu: dict[str, float] = {}
    report("in-process:", compare(runners, expected, runs, cpu), baseline, goal)
    report("in-process, CPU time of this process (the server's apart; blind to waiting for the server and the "
           "disk, so read it beside the wall time):", cpu, baseline, None)
