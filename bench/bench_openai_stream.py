"""Streaming speed of the openai plugin against a plain httpx + json.loads loop, on the same local stream.

A local server (its own process, so it never competes with the measured code for the GIL) streams an
N-token answer in OpenAI's SSE format. Two comparisons, each a ratio against a baseline measured in the
same run (the machines are shared and noisy: only ratios mean much), median of several interleaved runs:

1. in-process: receiving the whole stream through the plugin (``Client().resolve(P).stream(...)``) versus
   a plain ``httpx.Client.stream`` + ``iter_lines`` + ``json.loads`` loop.  Goal: <= 1.25x.
2. whole process: ``llmswitch chat --profile P "..."`` versus a plain httpx script doing the same work
   (stream, print each token as it arrives).  Goal: <= 1.5x.

    python bench/bench_openai_stream.py                      # 20,000 tokens, 7 runs
    python bench/bench_openai_stream.py --tokens 2000 --runs 3
    python bench/bench_openai_stream.py --sdk                # also time the openai SDK's own chunk objects
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODEL = "test-model"
PROMPT = "Tell me a long story."
BODY = {
    "model": MODEL,
    "messages": [{"role": "user", "content": PROMPT}],
    "stream": True,
    "stream_options": {"include_usage": True},
}

PLAIN_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import httpx

    body = json.loads(sys.argv[2])
    write, flush = sys.stdout.write, sys.stdout.flush
    with httpx.Client(timeout=60) as client:
        with client.stream("POST", sys.argv[1] + "/chat/completions", json=body) as response:
            for line in response.iter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    break
                for choice in json.loads(data)["choices"]:
                    content = choice["delta"].get("content")
                    if content:
                        write(content)
                        flush()
    write("\\n")
    """
)


def start_server(tokens: int) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.servers.openai_server", "--tokens", str(tokens)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    if not url.startswith("http://"):
        process.kill()
        raise SystemExit(f"the benchmark server did not start (said {url!r})")
    return process, url + "/v1"


def expected_text(tokens: int) -> str:
    sys.path.insert(0, str(REPO))
    from tests.servers.http import words

    return "".join(words(tokens))


def plain_in_process(base_url: str) -> str:
    import httpx

    parts: list[str] = []
    with httpx.Client(timeout=60) as client, client.stream("POST", base_url + "/chat/completions", json=BODY) as response:
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            data = line[6:]
            if data == "[DONE]":
                break
            for choice in json.loads(data)["choices"]:
                content = choice["delta"].get("content")
                if content:
                    parts.append(content)
    return "".join(parts)


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


def sdk_in_process(base_url: str) -> Callable[[], str]:
    import openai

    client = openai.OpenAI(api_key="unused", base_url=base_url, max_retries=0)

    def run() -> str:
        parts = []
        for chunk in client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": PROMPT}], stream=True,
            stream_options={"include_usage": True},
        ):
            for choice in chunk.choices:
                if choice.delta.content:
                    parts.append(choice.delta.content)
        return "".join(parts)

    return run


def timed(run: Callable[[], str], expected: str) -> float:
    started = time.perf_counter()
    text = run()
    elapsed = time.perf_counter() - started
    if text.strip() != expected.strip():
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


def command_runner(argv: list[str], env: dict[str, str]) -> Callable[[], str]:
    def run() -> str:
        done = subprocess.run(argv, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv[:4])}... failed ({done.returncode}): {done.stderr.strip()[-500:]}")
        return done.stdout

    return run


def llmswitch_command() -> list[str] | None:
    """The CLI, if it is installed and has `chat`."""
    exe = shutil.which("llmswitch", path=os.path.dirname(sys.executable))
    if exe is None:
        return None
    probe = subprocess.run([exe, "chat", "--help"], capture_output=True, text=True)
    return [exe] if probe.returncode == 0 else None


def report(title: str, times: dict[str, float], baseline: str, goal: float | None) -> None:
    print(title)
    base = times[baseline]
    for name, seconds in times.items():
        ratio = seconds / base
        mark = ""
        if name != baseline and goal is not None and name.startswith("llmswitch"):
            mark = f"  (goal <= {goal}x: {'met' if ratio <= goal else 'NOT met'})"
        print(f"  {name:<34} {seconds * 1000:8.1f} ms  {ratio:5.2f}x{mark}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--sdk", action="store_true", help="also time the openai SDK's typed chunks")
    parser.add_argument("--no-process", action="store_true", help="skip the whole-process comparison")
    args = parser.parse_args()

    expected = expected_text(args.tokens)
    server, base_url = start_server(args.tokens)
    try:
        with tempfile.TemporaryDirectory() as home:
            config = Path(home) / "config.toml"
            config.write_text(f'[profiles.bench]\nbackend = "openai"\nbase_url = "{base_url}"\nmodel = "{MODEL}"\n')
            env = {**os.environ, "LLMSWITCH_CONFIG": str(config), "LLMSWITCH_DATA_DIR": str(Path(home) / "data"),
                   "NO_PROXY": "127.0.0.1,localhost"}
            os.environ.update({k: env[k] for k in ("LLMSWITCH_CONFIG", "LLMSWITCH_DATA_DIR", "NO_PROXY")})
            print(f"{args.tokens} tokens from {base_url}, median of {args.runs} runs\n")

            runners: dict[str, Callable[[], str]] = {
                "plain httpx + json.loads": lambda: plain_in_process(base_url),
                "llmswitch openai plugin": plugin_in_process("bench"),
            }
            if args.sdk:
                runners["openai SDK typed chunks"] = sdk_in_process(base_url)
            report("in-process:", compare(runners, expected, args.runs), "plain httpx + json.loads", 1.25)

            if args.no_process:
                return
            cli = llmswitch_command()
            if cli is None:
                print("\nwhole process: skipped (the llmswitch CLI with `chat` is not installed yet)")
                return
            script = Path(home) / "plain_chat.py"
            script.write_text(PLAIN_SCRIPT)
            processes = {
                "plain httpx script": command_runner([sys.executable, str(script), base_url, json.dumps(BODY)], env),
                "llmswitch chat --profile bench": command_runner([*cli, "chat", "--profile", "bench", PROMPT], env),
            }
            print()
            report("whole process:", compare(processes, expected, args.runs), "plain httpx script", 1.5)
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
