"""``llmswitch batch`` against a plain httpx2 async script, and its memory over a long input.

1. 2,000 requests, 50 at a time, against a local OpenAI-protocol server (its own process) that answers each
   after 50 ms. Baseline: a plain ``httpx2.AsyncClient`` + ``asyncio.Semaphore`` script that writes each
   answer as a JSON line. Measured: ``AsyncClient.batch`` (the library) and the whole ``llmswitch batch`` run
   (``BatchJob``: input file, a checkpoint commit, a ledger row and an output line per answer). Goal: within
   1.2x of the plain script. Rounds are interleaved; each figure is the median of ``--runs``, and this
   process's CPU seconds (the best run) are shown too: on a busy machine they are the steadier figure.
2. 100,000 lines on the echo backend at concurrency 100, the whole run. Goal: RSS grows by less than 50 MB
   from the start of the run to its peak (sampled every 50 ms); the growth from before the input was read is
   shown too.

The machine may be busy: read the ratios, both sides share it.

    python bench/bench_batch.py [--runs 3] [--lines 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from streambench import REPO, start_server

REQUESTS, CONCURRENCY, DELAY_S = 2000, 50, 0.05
MEMORY_LINES, MEMORY_CONCURRENCY, MEMORY_GOAL_MB = 100_000, 100, 50
BODY = {"model": "test-model", "messages": [{"role": "user", "content": "hi"}]}


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def plain_script(base_url: str, output: Path) -> int:
    """What a user writes by hand: one client, a semaphore, a JSON line per answer."""
    import httpx2

    semaphore = asyncio.Semaphore(CONCURRENCY)
    async with httpx2.AsyncClient(timeout=60, limits=httpx2.Limits(max_connections=None)) as client:
        with output.open("w") as out:

            async def one(index: int) -> int:
                async with semaphore:
                    response = await client.post(base_url + "/chat/completions", json=BODY)
                    text = response.json()["choices"][0]["message"]["content"]
                    out.write(json.dumps({"id": index, "text": text}) + "\n")
                    return 1

            return sum(await asyncio.gather(*(one(index) for index in range(REQUESTS))))


async def library(profile: str) -> int:
    from llmswitch import AsyncClient

    async with AsyncClient() as client:
        return sum([result.ok async for result in client.batch(profile, ["hi"] * REQUESTS,
                                                               concurrency=CONCURRENCY)])


def whole_run(profile: str, source: Path, output: Path, concurrency: int) -> Callable[[], Awaitable[int]]:
    async def run() -> int:
        from llmswitch.batch import BatchJob, BatchOptions
        from llmswitch.client import Client
        from llmswitch.kit import aclose_clients

        job = BatchJob(Client(), BatchOptions(str(source), str(output), profile=profile, concurrency=concurrency,
                                              restart=True))
        summary = await job.run(job.prepare())
        await aclose_clients()
        return summary.answered - summary.failed

    return run


def throughput(base_url: str, home: Path, runs: int) -> None:
    source = home / "requests.txt"
    source.write_text("hi\n" * REQUESTS)
    runners: dict[str, Callable[[], Awaitable[int]]] = {
        "plain httpx2": lambda: plain_script(base_url + "/v1", home / "plain.jsonl"),
        "AsyncClient.batch": lambda: library("bench"),
        "llmswitch batch": whole_run("bench", source, home / "out.jsonl", CONCURRENCY),
    }
    samples: dict[str, list[float]] = {name: [] for name in runners}
    cpu: dict[str, list[float]] = {name: [] for name in runners}  # this process's CPU seconds: steadier when busy
    for name, run in runners.items():  # warm up (imports, pools) and check each answers every request
        done = asyncio.run(run())
        if done != REQUESTS:
            raise SystemExit(f"{name} answered {done} of {REQUESTS}")
    for _ in range(runs):
        for name, run in runners.items():
            started, started_cpu = time.perf_counter(), time.process_time()
            asyncio.run(run())
            samples[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - started_cpu)
    base = statistics.median(samples["plain httpx2"])
    ideal = REQUESTS / CONCURRENCY * DELAY_S
    print(f"{REQUESTS} requests, {CONCURRENCY} at a time, each answered after {DELAY_S * 1000:.0f} ms "
          f"(ideal {ideal:.1f} s), median of {runs}:")
    base_cpu = min(cpu["plain httpx2"])
    for name, values in samples.items():
        seconds = statistics.median(values)
        mark = f"  (goal <= 1.2x: {'met' if seconds / base <= 1.2 else 'NOT met'})" if name != "plain httpx2" else ""
        print(f"  {name:<18} {seconds:6.2f} s  {seconds / base:5.2f}x{mark}   runs: "
              + ", ".join(f"{value:.2f}" for value in values))
    print("CPU seconds of this process (best run; the server is another process):")
    for name, values in cpu.items():
        print(f"  {name:<18} {min(values):6.2f} s  {min(values) / base_cpu:5.2f}x")


def memory(home: Path, lines: int) -> None:
    from llmswitch.batch import BatchJob, BatchOptions
    from llmswitch.client import Client

    before_input = rss_mb()
    source = home / "echo.txt"
    source.write_text("".join(f"line number {index} of the memory benchmark\n" for index in range(lines)))
    job = BatchJob(Client(), BatchOptions(str(source), str(home / "echo.jsonl"), profile="echo",
                                          concurrency=MEMORY_CONCURRENCY, restart=True))
    plan = job.prepare()
    start = rss_mb()
    peak = [start]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            peak[0] = max(peak[0], rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    summary = asyncio.run(job.run(plan))
    elapsed = time.perf_counter() - started
    stop.set()
    sampler.join()
    peak[0] = max(peak[0], rss_mb())
    growth = peak[0] - start
    print(f"{lines:,} echo lines at concurrency {MEMORY_CONCURRENCY}: {summary.answered:,} answered in "
          f"{elapsed:.1f} s ({summary.answered / elapsed:,.0f} lines/s)")
    print(f"  RSS at the start of the run {start:.1f} MB, peak {peak[0]:.1f} MB: grew {growth:.1f} MB "
          f"(goal < {MEMORY_GOAL_MB} MB: {'met' if growth < MEMORY_GOAL_MB else 'NOT met'}); "
          f"{peak[0] - before_input:.1f} MB counting the input read and checked")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--lines", type=int, default=MEMORY_LINES)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    print(f"(machine load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; read the ratios)")
    with tempfile.TemporaryDirectory() as directory:
        home = Path(directory)
        os.environ["LLMSWITCH_CONFIG"] = str(home / "config.toml")
        os.environ["LLMSWITCH_DATA_DIR"] = str(home)
        os.environ["NO_PROXY"] = "127.0.0.1"
        server, url = start_server("openai_server", 5, "--delay", str(DELAY_S))
        try:
            (home / "config.toml").write_text(
                f'[profiles.bench]\nbackend = "openai"\nbase_url = "{url}/v1"\nmodel = "test-model"\n')
            throughput(url, home, args.runs)
        finally:
            server.kill()
        if not args.skip_memory:
            memory(home, args.lines)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
