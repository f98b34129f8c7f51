"""``llmswitch serve`` against calling its upstream directly, and against LiteLLM's proxy on the same upstream.

1. Added time to first token: median over ``--runs`` streamed requests through the gateway, minus the median
   straight to the upstream (the OpenAI protocol server, tests/servers/openai_server.py). Goal: at most 3 ms.
2. A 2,000-token stream through the gateway: its throughput over the direct one's. Goal: at least 0.8x.
3. Requests per second at 50 concurrent (whole answers of 20 tokens) through the gateway, over LiteLLM's
   proxy on the same upstream and machine. Goal: at least 2x. LiteLLM is installed only for this, in its own
   virtualenv under the cache dir (``--litellm-venv``), never as a dependency; ``--no-litellm`` skips it.

1 and 2 are measured with two clients, each calling the upstream and the gateway alike: the official openai SDK
(what the gateway's users run) and a minimal one (httpx2, ``json.loads`` of each event), the strict bound where
the gateway's own decoding and re-encoding of each token shows most. Both servers run one process each; the
clients run in this one, interleaved, so a busy machine slows both sides alike: read the ratios. The gateway
checks a gateway key and writes a ledger row per request, as it does in service. With 2, the CPU time per
stream of the gateway process and of the client (on Linux): steadier than wall time on a busy machine, where
the gateway and the client cannot run side by side; on two free cores the gateway keeps up with a client that
spends more CPU per stream than it does.

    python bench/bench_serve.py [--runs 200] [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
from streambench import REPO, start_server

CONCURRENCY = 50
SMALL_TOKENS, LONG_TOKENS = 20, 2000
# 1.108.0: its [proxy] extra installs from PyPI alone (1.110.2's needs a litellm-proxy package PyPI lacks)
LITELLM_SPEC = "litellm[proxy]==1.108.0"
# Both servers check a key on every request, as they would in service (LiteLLM refuses to start without one).
CLIENT_KEY = "sk-bench-" + "0123456789abcdef" * 4
AUTH = {"Authorization": f"Bearer {CLIENT_KEY}"}


def free_port() -> int:
    sys.path.insert(0, str(REPO))
    from llmswitch.testing.server import free_port as pick

    return pick()


def wait_until_up(url: str, process: subprocess.Popen[Any], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}")
        try:
            if httpx2.get(url, timeout=1).status_code < 500:
                return
        except httpx2.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{what} did not start in {timeout:.0f} s")


def start_gateway(upstream: str, workdir: Path) -> tuple[subprocess.Popen[str], str]:
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "config.toml"
    config.write_text(f'[profiles.up]\nbackend = "openai"\nmodel = "test-model"\nbase_url = "{upstream}/v1"\n'
                      'api_key = "sk-bench"\ntimeout = 60\n')
    port = free_port()
    env = {**os.environ, "LLMSWITCH_CONFIG": str(config), "LLMSWITCH_DATA_DIR": str(workdir / "data"),
           "LLMSWITCH_SERVE_KEYS": CLIENT_KEY}
    process = subprocess.Popen([sys.executable, "-m", "llmswitch", "serve", "--port", str(port), "-p", "up"],
                               env=env, stderr=subprocess.DEVNULL, text=True)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(f"{url}/healthz", process, "llmswitch serve")
    return process, url


def litellm_python(venv: Path) -> Path:
    """The separate virtualenv with LiteLLM's proxy, made on first use."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"installing {LITELLM_SPEC} into {venv} (once) ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", LITELLM_SPEC], check=True)
    return python


def start_litellm(upstream: str, workdir: Path, venv: Path) -> tuple[subprocess.Popen[str], str]:
    config = workdir / "litellm.yaml"
    config.write_text("model_list:\n  - model_name: up\n    litellm_params:\n      model: openai/test-model\n"
                      f"      api_base: {upstream}/v1\n      api_key: sk-bench\n"
                      "litellm_settings:\n  drop_params: true\n  telemetry: false\n")
    port = free_port()
    env = {**os.environ, "LITELLM_LOG": "ERROR", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           "LITELLM_MASTER_KEY": CLIENT_KEY}
    process = subprocess.Popen([str(venv / "bin" / "litellm"), "--config", str(config), "--port", str(port),
                                "--host", "127.0.0.1", "--num_workers", "1"],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(f"{url}/health/liveliness", process, "LiteLLM's proxy", timeout=300)
    return process, url


def stop(process: subprocess.Popen[Any]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# ---- 1 and 2: one stream at a time -------------------------------------------------------------------------


def timed_tokens(contents: Iterator[str], tokens: int, base: str) -> tuple[float, float]:
    """Seconds to the first token and to the end of a stream's text pieces; checks every token arrived."""
    started = time.perf_counter()
    first = None
    pieces = 0
    for _content in contents:
        if first is None:
            first = time.perf_counter() - started
        pieces += 1
    if pieces != tokens:
        raise SystemExit(f"{base}: {pieces} of {tokens} tokens arrived")
    return first or float("nan"), time.perf_counter() - started


def stream_once(client: httpx2.Client, base: str, model: str, tokens: int) -> tuple[float, float]:
    """A minimal client: httpx2, each event parsed with json.loads."""
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": True}

    def contents() -> Iterator[str]:
        with client.stream("POST", f"{base}/v1/chat/completions", json=body, headers=AUTH) as response:
            for line in response.iter_lines():
                if line.startswith("data: {"):
                    choices = json.loads(line[6:])["choices"]
                    if choices and choices[0]["delta"].get("content"):
                        yield choices[0]["delta"]["content"]

    return timed_tokens(contents(), tokens, base)


def stream_with_sdk(clients: dict[str, Any], base: str, model: str, tokens: int) -> tuple[float, float]:
    """The official openai SDK (one client per base URL, kept as an application keeps it)."""
    import openai

    client = clients.get(base)
    if client is None:
        client = clients[base] = openai.OpenAI(base_url=f"{base}/v1", api_key=CLIENT_KEY, max_retries=0)

    def contents() -> Iterator[str]:
        for chunk in client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}],
                                                    stream=True):
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content

    return timed_tokens(contents(), tokens, base)


def interleaved(measure: Any, targets: dict[str, tuple[str, str]], runs: int,
                tokens: int) -> dict[str, list[tuple[float, float]]]:
    for base, model in targets.values():
        for _ in range(5):
            measure(base, model, tokens)  # warm up: connections, imports, the server's encoded stream
    found: dict[str, list[tuple[float, float]]] = {name: [] for name in targets}
    for _ in range(runs):
        for name, (base, model) in targets.items():
            found[name].append(measure(base, model, tokens))
    return found


def process_cpu_s(pid: int) -> float | None:
    """CPU seconds of a process so far, all its threads (Linux' /proc: the scheduler's nanoseconds where there
    are, else user + system in clock ticks), None elsewhere."""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    total = 0
    for thread in threads:
        try:
            total += int(Path(f"/proc/{pid}/task/{thread}/schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            break
    else:
        return total / 1e9
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_per_stream(measure: Any, target: tuple[str, str], pid: int, runs: int, tokens: int) -> tuple[float, float]:
    """CPU milliseconds per stream of the gateway process and of this client, over ``runs`` streams in a row:
    steadier than wall time on a busy machine. The gateway keeps up with a client that spends more per
    stream than it does (the two run in parallel on two cores)."""
    before, client_before = process_cpu_s(pid) or 0.0, time.process_time()
    for _ in range(runs):
        measure(*target, tokens)
    gateway = ((process_cpu_s(pid) or 0.0) - before) / runs * 1000
    return gateway, (time.process_time() - client_before) / runs * 1000


# ---- 3: requests per second at 50 concurrent -----------------------------------------------------------------


async def requests_per_second(base: str, model: str, total: int) -> float:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    limits = httpx2.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx2.AsyncClient(limits=limits, timeout=120) as client:
        queue = iter(range(total))
        failures = 0

        async def worker() -> None:
            nonlocal failures
            for _ in queue:
                response = await client.post(f"{base}/v1/chat/completions", json=body, headers=AUTH)
                if response.status_code != 200 or "w0" not in response.text:
                    failures += 1

        warm = [client.post(f"{base}/v1/chat/completions", json=body, headers=AUTH) for _ in range(CONCURRENCY)]
        await asyncio.gather(*warm)
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{failures} of {total} requests to {base} failed")
    return total / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="streams per side for time to first token")
    parser.add_argument("--long-runs", type=int, default=20, help="2,000-token streams per side")
    parser.add_argument("--requests", type=int, default=2000, help="requests per side at 50 concurrent")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the rps comparison (median)")
    parser.add_argument("--litellm-venv", type=Path,
                        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "llmswitch-bench"
                        / "litellm-venv")
    parser.add_argument("--no-litellm", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as temporary:
        workdir = Path(temporary)
        small, small_url = start_server("openai_server", SMALL_TOKENS)
        long, long_url = start_server("openai_server", LONG_TOKENS)
        processes: list[subprocess.Popen[Any]] = [small, long]
        try:
            gateway_small, gateway_small_url = start_gateway(small_url, workdir / "small")
            gateway_long, gateway_long_url = start_gateway(long_url, workdir / "long")
            processes += [gateway_small, gateway_long]
            sdk_clients: dict[str, Any] = {}
            with httpx2.Client(timeout=120) as client:
                clients = {
                    "openai SDK": lambda base, model, tokens: stream_with_sdk(sdk_clients, base, model, tokens),
                    "httpx2 + json.loads": lambda base, model, tokens: stream_once(client, base, model, tokens),
                }
                for label, measure in clients.items():
                    first = interleaved(measure, {"direct": (small_url, "test-model"),
                                                  "gateway": (gateway_small_url, "up")}, args.runs, SMALL_TOKENS)
                    direct_ttft = statistics.median(sample[0] for sample in first["direct"])
                    gateway_ttft = statistics.median(sample[0] for sample in first["gateway"])
                    added_ms = (gateway_ttft - direct_ttft) * 1000
                    print(f"1. [{label}] time to first token, median of {args.runs}: direct "
                          f"{direct_ttft * 1000:.2f} ms, gateway {gateway_ttft * 1000:.2f} ms: added {added_ms:.2f} ms "
                          f"(goal <= 3 ms) {'PASS' if added_ms <= 3 else 'FAIL'}", flush=True)
                    long_runs = interleaved(measure, {"direct": (long_url, "test-model"),
                                                      "gateway": (gateway_long_url, "up")}, args.long_runs,
                                            LONG_TOKENS)
                    direct_s = statistics.median(sample[1] for sample in long_runs["direct"])
                    gateway_s = statistics.median(sample[1] for sample in long_runs["gateway"])
                    ratio = direct_s / gateway_s
                    print(f"2. [{label}] {LONG_TOKENS}-token stream, median of {args.long_runs}: direct "
                          f"{direct_s * 1000:.1f} ms ({LONG_TOKENS / direct_s:,.0f} tok/s), gateway "
                          f"{gateway_s * 1000:.1f} ms ({LONG_TOKENS / gateway_s:,.0f} tok/s): {ratio:.2f}x of direct "
                          f"(goal >= 0.8x) {'PASS' if ratio >= 0.8 else 'FAIL'}", flush=True)
                    if process_cpu_s(gateway_long.pid) is not None:
                        runs = max(args.long_runs, 20)  # enough streams for the kernel's 10 ms CPU ticks (no schedstat)
                        gateway_ms, client_ms = cpu_per_stream(measure, (gateway_long_url, "up"), gateway_long.pid,
                                                               runs, LONG_TOKENS)
                        print(f"   [{label}] CPU per {LONG_TOKENS}-token stream through the gateway, {runs} in a "
                              f"row: gateway process {gateway_ms:.1f} ms, this client {client_ms:.1f} ms", flush=True)
            if args.no_litellm:
                return
            litellm_python(args.litellm_venv)
            proxy, proxy_url = start_litellm(small_url, workdir, args.litellm_venv)
            processes.append(proxy)
            gateway_rps, litellm_rps = [], []
            for _ in range(args.rounds):
                gateway_rps.append(asyncio.run(requests_per_second(gateway_small_url, "up", args.requests)))
                litellm_rps.append(asyncio.run(requests_per_second(proxy_url, "up", args.requests)))
            ours, theirs = statistics.median(gateway_rps), statistics.median(litellm_rps)
            print(f"3. requests/s at {CONCURRENCY} concurrent, {args.requests} requests, median of {args.rounds}: "
                  f"gateway {ours:,.0f}, LiteLLM proxy {theirs:,.0f}: {ours / theirs:.1f}x (goal >= 2x) "
                  f"{'PASS' if ours / theirs >= 2 else 'FAIL'}")
        finally:
            for process in processes:
                stop(process)


if __name__ == "__main__":
    main()
