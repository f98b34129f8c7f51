"""Streaming speed of the openai plugin against a plain httpx2 + json.loads loop, on the same local stream.

A local server (its own process, so it never competes with the measured code for the GIL) streams an
N-token answer in OpenAI's SSE format. Two comparisons, each a ratio against a baseline measured in the
same run (the machines are shared and noisy: only ratios mean much), median of several interleaved runs:

1. in-process: receiving the whole stream through the plugin (``Client().resolve(P).stream(...)``) versus
   a plain ``httpx2.Client.stream`` + ``iter_lines`` + ``json.loads`` loop.  Goal: <= 1.25x.
2. whole process: ``llmswitch chat --profile P "..."`` versus a plain httpx2 script doing the same work
   (stream, print each token as it arrives).  Goal: <= 1.25x, for 2,000 and for 20,000 tokens.

    python bench/bench_openai_stream.py                      # 2,000 and 20,000 tokens, 7 runs each
    python bench/bench_openai_stream.py --tokens 2000 --runs 3
    python bench/bench_openai_stream.py --sdk                # also time the openai SDK's own chunk objects
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path

from streambench import (
    PROMPT,
    compare,
    expected_text,
    plugin_in_process,
    report,
    report_in_process,
    start_server,
)

MODEL = "test-model"
BODY = {
    "model": MODEL,
    "messages": [{"role": "user", "content": PROMPT}],
    "stream": True,
    "stream_options": {"include_usage": True},
}

PLAIN_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import httpx2

    body = json.loads(sys.argv[2])
    write, flush = sys.stdout.write, sys.stdout.flush
    with httpx2.Client(timeout=60) as client:
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






def plain_in_process(base_url: str) -> str:
    import httpx2

    parts: list[str] = []
    with httpx2.Client(timeout=60) as client, client.stream("POST", base_url + "/chat/completions", json=BODY) as response:
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






def command_runner(argv: list[str], env: dict[str, str], cpu: list[float]) -> Callable[[], str]:
    """Run the command; append its CPU time (user + system, from the children's rusage) to ``cpu``."""

    def run() -> str:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(argv, env=env, capture_output=True, text=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
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




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", default="2000,20000", help="stream lengths to measure, comma-separated")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--sdk", action="store_true", help="also time the openai SDK's typed chunks")
    parser.add_argument("--no-process", action="store_true", help="skip the whole-process comparison")
    args = parser.parse_args()

    for tokens in (int(part) for part in args.tokens.split(",")):
        measure(tokens, args)
        print()


def measure(tokens: int, args: argparse.Namespace) -> None:
    expected = expected_text(tokens)
    server, server_url = start_server("openai_server", tokens)
    base_url = server_url + "/v1"
    try:
        with tempfile.TemporaryDirectory() as home:
            config = Path(home) / "config.toml"
            config.write_text(f'[profiles.bench]\nbackend = "openai"\nbase_url = "{base_url}"\nmodel = "{MODEL}"\n')
            env = {**os.environ, "LLMSWITCH_CONFIG": str(config), "LLMSWITCH_DATA_DIR": str(Path(home) / "data"),
                   "NO_PROXY": "127.0.0.1,localhost"}
            env.pop("PYTHONDONTWRITEBYTECODE", None)  # both processes start from cached byte code, as users' do
            os.environ.update({k: env[k] for k in ("LLMSWITCH_CONFIG", "LLMSWITCH_DATA_DIR", "NO_PROXY")})
            print(f"{tokens} tokens from {base_url}, median of {args.runs} runs "
                  f"(load average {os.getloadavg()[0]:.1f}: read the ratios)\n")

            runners: dict[str, Callable[[], str]] = {
                "plain httpx2 + json.loads": lambda: plain_in_process(base_url),
                "llmswitch openai plugin": plugin_in_process("bench"),
            }
            if args.sdk:
                runners["openai SDK typed chunks"] = sdk_in_process(base_url)
            report_in_process(runners, expected, args.runs, "plain httpx2 + json.loads", 1.25)

            if args.no_process:
                return
            cli = llmswitch_command()
            if cli is None:
                print("\nwhole process: skipped (the llmswitch CLI with `chat` is not installed yet)")
                return
            script = Path(home) / "plain_chat.py"
            script.write_text(PLAIN_SCRIPT)
            cpu: dict[str, list[float]] = {"plain httpx2 script": [], "llmswitch chat --profile bench": []}
            processes = {
                "plain httpx2 script": command_runner([sys.executable, str(script), base_url, json.dumps(BODY)], env,
                                                      cpu["plain httpx2 script"]),
                "llmswitch chat --profile bench": command_runner([*cli, "chat", "--profile", "bench", PROMPT], env,
                                                                 cpu["llmswitch chat --profile bench"]),
            }
            print()
            report("whole process:", compare(processes, expected, args.runs), "plain httpx2 script", 1.25)
            # CPU time is what each process itself spent: steadier than wall time on a busy machine, and blind to
            # waiting (the server, fsync), so read it beside the wall time, not instead of it.
            report("whole process, CPU time (user + system; the warm-up run left out):",
                   {name: statistics.median(samples[1:]) for name, samples in cpu.items()}, "plain httpx2 script", None)
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
