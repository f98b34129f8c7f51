"""Streaming speed of the ollama plugin against a plain httpx + json.loads loop, on the same local stream.

A local server (its own process, so it never competes with the measured code for the GIL) streams an
N-token answer in Ollama's NDJSON format (one ``{"message": {"content": ...}, "done": false}`` line per
token, then the ``done`` line with the counts). The in-process time to receive the whole stream through the
plugin (``Client().resolve(P).stream(...)``: the entry point, httpx, the plugin's NDJSON reader, the core's
StreamResult) is compared with a plain ``httpx.Client.stream`` + ``iter_lines`` + ``json.loads`` loop that
keeps the text, measured in the same run, interleaved, median of several runs. Goal: <= 1.25x. Both sides
reuse their HTTP client across runs, so neither pays for connection setup or client construction.

    python bench/bench_ollama_stream.py                        # 20,000 tokens, 7 runs
    python bench/bench_ollama_stream.py --tokens 2000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODEL = "llama3.2"
PROMPT = "Tell me a long story."
BODY = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "stream": True}


def start_server(tokens: int) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.servers.ollama_server", "--tokens", str(tokens)],
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


def plain_in_process(base_url: str) -> Callable[[], str]:
    import httpx

    client = httpx.Client(timeout=60)

    def run() -> str:
        parts: list[str] = []
        with client.stream("POST", base_url + "/api/chat", json=BODY) as response:
            for line in response.iter_lines():
                if not line:
                    continue
                chunk = json.loads(line)
                content = chunk["message"]["content"]
                if content:
                    parts.append(content)
                if chunk["done"]:
                    break
        return "".join(parts)

    return run


def plugin_in_process(profile: str) -> Callable[[], str]:
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


def timed(run: Callable[[], str], expected: str) -> float:
    started = time.perf_counter()
    text = run()
    elapsed = time.perf_counter() - started
    if text != expected:
        raise SystemExit(f"wrong answer: {len(text)} characters instead of {len(expected)}")
    return elapsed


def compare(runners: dict[str, Callable[[], str]], expected: str, runs: int) -> dict[str, float]:
    """Median seconds of each runner; runs interleaved so drifting machine load hits all of them alike."""
    for run in runners.values():
        timed(run, expected)  # warm up: imports, connection pool, the server's encoded stream
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(runs):
        for name, run in runners.items():
            samples[name].append(timed(run, expected))
    return {name: statistics.median(values) for name, values in samples.items()}


def report(times: dict[str, float], baseline: str, goal: float) -> None:
    base = times[baseline]
    for name, seconds in times.items():
        ratio = seconds / base
        mark = f"  (goal <= {goal}x: {'met' if ratio <= goal else 'NOT met'})" if name.startswith("llmswitch") else ""
        print(f"  {name:<34} {seconds * 1000:8.1f} ms  {ratio:5.2f}x{mark}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tokens", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    expected = expected_text(args.tokens)
    server, base_url = start_server(args.tokens)
    try:
        with tempfile.TemporaryDirectory() as home:
            config = Path(home) / "config.toml"
            config.write_text(f'[profiles.bench]\nbackend = "ollama"\nbase_url = "{base_url}"\nmodel = "{MODEL}"\n')
            os.environ.update({"LLMSWITCH_CONFIG": str(config), "LLMSWITCH_DATA_DIR": str(Path(home) / "data"),
                               "NO_PROXY": "127.0.0.1,localhost"})
            print(f"{args.tokens} tokens from {base_url}, median of {args.runs} runs\n\nin-process:")
            runners: dict[str, Callable[[], str]] = {
                "plain httpx + json.loads": plain_in_process(base_url),
                "llmswitch ollama plugin": plugin_in_process("bench"),
            }
            report(compare(runners, expected, args.runs), "plain httpx + json.loads", 1.25)
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
