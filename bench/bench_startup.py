"""Cold-start wall time of `llmswitch --help` and `llmswitch chat --profile echo hi`, as ratios against
`python -c pass` measured in the same run (these machines are shared and noisy: only ratios mean much).

    python bench/bench_startup.py [--runs 9]

Goals: --help within 3x `python -c pass`, `chat --profile echo hi` within 5x.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def wall(argv: list[str], runs: int, env: dict[str, str]) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    exe = shutil.which("llmswitch", path=os.path.dirname(sys.executable)) or "llmswitch"
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "LLMSWITCH_CONFIG": os.path.join(home, "config.toml"),
               "LLMSWITCH_DATA_DIR": os.path.join(home, "data")}
        # Warm the OS file cache once so every command is measured the same way.
        for argv in ([sys.executable, "-c", "pass"], [exe, "--help"], [exe, "chat", "--profile", "echo", "hi"]):
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        baseline = wall([sys.executable, "-c", "pass"], args.runs, env)
        help_time = wall([exe, "--help"], args.runs, env)
        chat_time = wall([exe, "chat", "--profile", "echo", "hi"], args.runs, env)
    print(f"python -c pass                      {baseline * 1000:7.1f} ms  (baseline)")
    print(f"llmswitch --help                    {help_time * 1000:7.1f} ms  {help_time / baseline:5.2f}x  (goal <= 3x)")
    print(f"llmswitch chat --profile echo hi    {chat_time * 1000:7.1f} ms  {chat_time / baseline:5.2f}x  (goal <= 5x)")


if __name__ == "__main__":
    main()
