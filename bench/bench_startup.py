"""Cold-start wall time of `llmswitch --help` and `llmswitch chat --profile echo hi`, as ratios against
`python -c pass` measured in the same run (these machines are shared and noisy: only ratios mean much).

    python bench/bench_startup.py [--runs 9]

Goals: --help within 3x `python -c pass`, `chat --profile echo hi` within 5x.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def measure(commands: dict[str, list[str]], runs: int, env: dict[str, str]) -> dict[str, tuple[float, float]]:
    """Median wall time and median CPU time (user + system of the process) of each command, run interleaved so
    drifting machine load hits all of them alike."""
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
            wall[name].append(time.perf_counter() - started)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[name].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name])) for name in commands}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    exe = shutil.which("llmswitch", path=os.path.dirname(sys.executable)) or "llmswitch"
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "LLMSWITCH_CONFIG": os.path.join(home, "config.toml"),
               "LLMSWITCH_DATA_DIR": os.path.join(home, "data")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # start from cached byte code, as users do
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "llmswitch --help": [exe, "--help"],
            "llmswitch chat --profile echo hi": [exe, "chat", "--profile", "echo", "hi"],
        }
        # Warm the OS file cache (and write byte code) once so every command is measured the same way.
        for argv in commands.values():
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        times = measure(commands, args.runs, env)
    base_wall, base_cpu = times["python -c pass"]
    print(f"load average {os.getloadavg()[0]:.1f}; wall time (the goal), and CPU time (steadier on a busy machine)")
    for (name, (wall, cpu)), goal in zip(times.items(), ("(baseline)", "(goal <= 3x)", "(goal <= 5x)"), strict=True):
        print(f"{name:<34} {wall * 1000:7.1f} ms  {wall / base_wall:5.2f}x   CPU {cpu * 1000:7.1f} ms  "
              f"{cpu / base_cpu:5.2f}x  {goal}")


if __name__ == "__main__":
    main()
