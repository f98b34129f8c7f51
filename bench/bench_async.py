"""Concurrency through ``AsyncClient`` against a plain ``httpx2.AsyncClient`` + ``asyncio.Semaphore`` script.

1. 200 non-streaming requests, 50 at a time, against a local OpenAI-protocol server that answers each after
   50 ms. Goal: llmswitch within 1.15x of the plain script.
2. 50 concurrent streams of 2,000 tokens each. Goal: within 1.25x of plain httpx2 async (``aiter_lines`` +
   ``json.loads`` per ``data:`` line).

The server runs in its own process; both clients run in this one, interleaved, and each figure is the
median of ``--runs`` rounds. Ratios are what to read: the machine may be busy, and both sides share it.

    python bench/bench_async.py [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from streambench import REPO, start_server

REQUESTS, CONCURRENCY, DELAY_S = 200, 50, 0.05
STREAMS, STREAM_TOKENS = 50, 2000
BODY = {"model": "test-model", "messages": [{"role": "user", "content": "hi"}]}


_plain_client: Any = None


def plain_client() -> Any:
    """One client for the script's whole life, as a service keeps it (llmswitch keeps its pool too)."""
    global _plain_client
    if _plain_client is None:
        import httpx2

        _plain_client = httpx2.AsyncClient(timeout=60, limits=httpx2.Limits(max_connections=None))
    return _plain_client


async def plain_requests(base_url: str) -> int:
    semaphore = asyncio.Semaphore(CONCURRENCY)
    client = plain_client()

    async def one() -> int:
        async with semaphore:
            response = await client.post(base_url + "/chat/completions", json=BODY)
            return len(response.json()["choices"][0]["message"]["content"])

    return sum(await asyncio.gather(*(one() for _ in range(REQUESTS))))


async def plain_streams(base_url: str) -> int:
    body = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
    client = plain_client()

    async def one() -> int:
        parts = []
        async with client.stream("POST", base_url + "/chat/completions", json=body) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    chunk = json.loads(line[6:])
                    if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                        parts.append(chunk["choices"][0]["delta"]["content"])
        return len("".join(parts))

    return sum(await asyncio.gather(*(one() for _ in range(STREAMS))))


def llmswitch_runners(profile: str) -> tuple[Callable[[], Awaitable[int]], Callable[[], Awaitable[int]]]:
    from llmswitch import AsyncClient
    from llmswitch.types import StreamError

    resolved = AsyncClient().resolve(profile)
    request = resolved.request("hi")

    async def requests() -> int:
        semaphore = asyncio.Semaphore(CONCURRENCY)

        async def one() -> int:
            async with semaphore:
                return len((await resolved.acomplete(request)).text)

        return sum(await asyncio.gather(*(one() for _ in range(REQUESTS))))

    async def streams() -> int:
        async def one() -> int:
            result = resolved.astream(request)
            async for event in result:
                if type(event) is StreamError:
                    raise SystemExit(f"the plugin failed: {event.error}")
            return len(result.text)

        return sum(await asyncio.gather(*(one() for _ in range(STREAMS))))

    return requests, streams


def measure(runners: dict[str, Callable[[], Awaitable[int]]], runs: int) -> dict[str, tuple[float, float]]:
    """Median seconds per runner, wall and CPU (this process: the client; the server is another), rounds
    interleaved; every runner must return the same total."""

    async def main() -> dict[str, tuple[float, float]]:
        global _plain_client
        _plain_client = None  # a client belongs to its event loop: one per measurement
        totals = {name: await run() for name, run in runners.items()}  # warm up: pools, imports
        if len(set(totals.values())) != 1:
            raise SystemExit(f"the runners disagree: {totals}")
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in runners}
        for _ in range(runs):
            for name, run in runners.items():
                started, cpu = time.perf_counter(), time.process_time()
                await run()
                samples[name].append((time.perf_counter() - started, time.process_time() - cpu))
        if _plain_client is not None:
            await _plain_client.aclose()
        return {name: (statistics.median(wall for wall, _ in values), statistics.median(cpu for _, cpu in values))
                for name, values in samples.items()}

    return asyncio.run(main())


def show(title: str, times: dict[str, tuple[float, float]], goal: float, calls: int) -> None:
    """The wall ratio is the goal's; the client's CPU per call says what llmswitch adds to it."""
    base, base_cpu = times["plain httpx2"]
    print(title)
    for name, (seconds, cpu) in times.items():
        ratio = seconds / base
        mark = f"  (goal <= {goal}x: {'met' if ratio <= goal else 'NOT met'})" if name != "plain httpx2" else ""
        print(f"  {name:<16} {seconds * 1000:8.1f} ms  {ratio:5.2f}x{mark}; client CPU {cpu / calls * 1000:.3f} ms "
              f"per call ({cpu / base_cpu:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"(machine load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; read the ratios)")
    with tempfile.TemporaryDirectory() as home:
        os.environ["LLMSWITCH_CONFIG"] = str(Path(home) / "config.toml")
        os.environ["LLMSWITCH_DATA_DIR"] = home
        os.environ["NO_PROXY"] = "127.0.0.1"
        server, url = start_server("openai_server", STREAM_TOKENS, "--delay", str(DELAY_S))
        try:
            Path(os.environ["LLMSWITCH_CONFIG"]).write_text(
                f'[profiles.bench]\nbackend = "openai"\nbase_url = "{url}/v1"\nmodel = "test-model"\n')
            requests, streams = llmswitch_runners("bench")
            base = url + "/v1"
            show(f"{REQUESTS} requests, {CONCURRENCY} at a time, each answered after {DELAY_S * 1000:.0f} ms:",
                 measure({"plain httpx2": lambda: plain_requests(base), "llmswitch": requests}, args.runs), 1.15,
                 REQUESTS)
            show(f"{STREAMS} concurrent streams of {STREAM_TOKENS} tokens:",
                 measure({"plain httpx2": lambda: plain_streams(base), "llmswitch": streams}, args.runs), 1.25,
                 STREAMS)
        finally:
            server.kill()


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
