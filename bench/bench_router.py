"""What routing costs, against local OpenAI-protocol servers (same-run ratios; the machine may be busy).

1. Happy path: a fallback route over one member against the member called directly (both through the sync
   ``Client``, whole answers, one at a time). Goal: the route adds at most 2% or 0.2 ms per call.
2. A fallback whose first member refuses connections against calling its second member directly.
   Goal: within 1.05x + 10 ms.
3. A pool of 4 servers, each serving at most 10 requests at once and answering each after 50 ms, through
   ``AsyncClient``: requests per second through the pool against the sum of what each server sustains alone.
   Goal: at least 0.9x. Each server gets the same load either way (400 requests a burst, 20 in flight).

The cases of 1 and 2 take turns round by round; every call writes its ledger row, as a library call does.

    python bench/bench_router.py [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CALLS = 300
POOL_SIZE, SERVER_SLOTS, SERVER_DELAY_S, POOL_REQUESTS = 4, 10, 0.05, 400


def serve(slots: int, delay: float) -> None:
    """A server that answers at most ``slots`` requests at once, each after ``delay`` seconds (child process)."""
    sys.path.insert(0, str(REPO))
    from tests.servers.http import LocalServer
    from tests.servers.openai_server import OpenAIHandler

    gate = threading.Semaphore(slots)

    class Limited(OpenAIHandler):
        wbufsize = 1 << 16  # headers and body in one write: no Nagle/delayed-ACK stall per answer

        def setup(self) -> None:
            super().setup()
            import socket

            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_POST(self) -> None:  # noqa: N802
            with gate:
                time.sleep(delay)
                super().do_POST()

    server = LocalServer(Limited)
    server.state.options.update(tokens=5)
    with server:
        print(server.url, flush=True)
        sys.stdout.close()
        threading.Event().wait()


def start(slots: int = 1000, delay: float = 0.0) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([sys.executable, __file__, "--serve", str(slots), str(delay)], stdout=subprocess.PIPE,
                               text=True, cwd=REPO)
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def timed(runs: int, **cases: Callable[[], Any]) -> dict[str, tuple[float, float]]:
    """Median seconds of each case, wall and CPU (this process: the servers are others), the cases taking
    turns round by round (A B A B ...), so that a machine getting busier, or the ledger file growing, weighs on
    every case alike rather than on the one measured last."""
    for run in cases.values():
        run()  # warm up: connections, imports, the ledger file
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, run in cases.items():
            started, cpu = time.perf_counter(), time.process_time()
            run()
            samples[name].append((time.perf_counter() - started, time.process_time() - cpu))
    return {name: (statistics.median(wall for wall, _ in times), statistics.median(cpu for _, cpu in times))
            for name, times in samples.items()}


def sync_calls(name: str) -> Callable[[], None]:
    from llmswitch import Client

    resolved = Client().resolve(name)
    request = resolved.request("hi")

    def run() -> None:
        for _ in range(CALLS):
            resolved.complete(request)

    return run


def pool_rate(name: str, servers: int, runs: int) -> tuple[float, float]:
    """Requests per second through ``name`` (a profile on one server, or a pool over ``servers``) through
    ``AsyncClient``, and the client's CPU seconds per request. Measured alike whatever the number of servers:
    each server gets ``POOL_REQUESTS`` requests per burst with ``2 * SERVER_SLOTS`` of them in flight, so a
    burst lasts as long alone as through the pool, and its start and end weigh the same on both."""
    from llmswitch import AsyncClient

    requests = POOL_REQUESTS * servers

    async def main() -> tuple[float, float]:
        async with AsyncClient() as client:
            resolved = client.resolve(name)
            request = resolved.request("hi")
            semaphore = asyncio.Semaphore(2 * SERVER_SLOTS * servers)

            async def one() -> None:
                async with semaphore:
                    await resolved.acomplete(request)

            async def burst() -> tuple[float, float]:
                started, cpu = time.perf_counter(), time.process_time()
                await asyncio.gather(*(one() for _ in range(requests)))
                return requests / (time.perf_counter() - started), (time.process_time() - cpu) / requests

            await burst()
            rates, cpus = zip(*[await burst() for _ in range(runs)], strict=True)
            return statistics.median(rates), statistics.median(cpus)

    return asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"(machine load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; read the ratios)")
    processes = []
    with tempfile.TemporaryDirectory() as home:
        os.environ.update(LLMSWITCH_CONFIG=str(Path(home) / "config.toml"), LLMSWITCH_DATA_DIR=home,
                          NO_PROXY="127.0.0.1")
        try:
            fast, fast_url = start()
            processes.append(fast)
            pool = [start(SERVER_SLOTS, SERVER_DELAY_S) for _ in range(POOL_SIZE)]
            processes.extend(process for process, _ in pool)
            with socket_closed() as dead_port:
                profiles = [
                    f'[profiles.direct]\nbackend = "openai"\nbase_url = "{fast_url}/v1"\nmodel = "test-model"\n',
                    f'[profiles.dead]\nbackend = "openai"\nbase_url = "http://127.0.0.1:{dead_port}/v1"\n'
                    'model = "test-model"\n',
                    '[profiles.route]\nroute = "fallback"\nmembers = ["direct"]\n',
                    '[profiles.chain]\nroute = "fallback"\nmembers = ["dead", "direct"]\n',
                ]
                for index, (_, url) in enumerate(pool):
                    profiles.append(f'[profiles.s{index}]\nbackend = "openai"\nbase_url = "{url}/v1"\n'
                                    'model = "test-model"\n')
                members = ", ".join(f'"s{index}"' for index in range(POOL_SIZE))
                profiles.append(f'[profiles.pool]\nroute = "pool"\nstrategy = "least-busy"\nmembers = [{members}]\n')
                Path(os.environ["LLMSWITCH_CONFIG"]).write_text("\n".join(profiles))

                times = timed(args.runs, direct=sync_calls("direct"), route=sync_calls("route"),
                              chain=sync_calls("chain"))
                direct, routed, chain = (times[name][0] / CALLS for name in ("direct", "route", "chain"))
                direct_cpu, routed_cpu = (times[name][1] / CALLS for name in ("direct", "route"))
                added = routed - direct
                met = added <= max(0.02 * direct, 0.0002)
                print(f"1. happy path, {CALLS} whole answers one at a time:")
                print(f"   member directly {direct * 1000:.3f} ms/call, through a route {routed * 1000:.3f} ms/call: "
                      f"+{added * 1000:.3f} ms ({routed / direct:.3f}x; goal +2% or 0.2 ms: "
                      f"{'met' if met else 'NOT met'})")
                print(f"   client CPU {direct_cpu * 1000:.3f} ms/call directly, {routed_cpu * 1000:.3f} through the "
                      f"route (+{(routed_cpu - direct_cpu) * 1000:.3f} ms)")

                goal = 1.05 * direct + 0.010
                print("2. fallback whose first member refuses connections:")
                print(f"   second member directly {direct * 1000:.3f} ms/call, through the chain "
                      f"{chain * 1000:.3f} ms/call ({chain / direct:.2f}x; goal <= 1.05x + 10 ms: "
                      f"{'met' if chain <= goal else 'NOT met'})")

            alone = [pool_rate(f"s{index}", 1, args.runs) for index in range(POOL_SIZE)]
            through, cpu = pool_rate("pool", POOL_SIZE, args.runs)
            total = sum(rate for rate, _ in alone)
            ratio = through / total
            print(f"3. pool of {POOL_SIZE} servers ({SERVER_SLOTS} at once, {SERVER_DELAY_S * 1000:.0f} ms each), "
                  "AsyncClient:")
            print(f"   alone {', '.join(f'{rate:.0f}' for rate, _ in alone)} req/s (sum {total:.0f}); through the "
                  f"pool {through:.0f} req/s ({ratio:.2f}x; goal >= 0.9x: {'met' if ratio >= 0.9 else 'NOT met'})")
            print(f"   client CPU per request: alone {statistics.median(c for _, c in alone) * 1000:.2f} ms, "
                  f"through the pool {cpu * 1000:.2f} ms ({os.cpu_count()} cores for the client and the "
                  f"{POOL_SIZE} servers)")
        finally:
            for process in processes:
                process.kill()


class socket_closed:
    """A port on 127.0.0.1 that refuses connections while the block runs."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        pass


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]), float(sys.argv[3]))
    else:
        sys.path.insert(0, str(REPO))
        main()
