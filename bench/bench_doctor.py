"""How long ``doctor`` takes for N profiles whose health check each takes D seconds.

The claim: checked concurrently, ten profiles of one second each finish in about one second. The baseline,
measured in the same run, is checking the same profiles one after the other (``diagnose`` in a loop), which
takes about N × D. Reported: both wall times, their ratio, and doctor's overhead over the ideal D.

    python bench/bench_doctor.py                       # 10 profiles × 1 s (the claim)
    python bench/bench_doctor.py --profiles 4 --delay 0.2 --repeat 1   # a quick check that it works

The profiles use a backend registered from Python whose health hook sleeps (standing in for a server's
round trip), so nothing here depends on the network or on other plugins' speed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from llmswitch import hookimpl
from llmswitch.types import BackendInfo, Check, CheckStatus, HealthReport, Target


class SleepyBackend:
    def __init__(self, delay: float) -> None:
        self.delay = delay

    @hookimpl
    def llmswitch_backends(self) -> list[BackendInfo]:
        return [BackendInfo(name="sleepy", summary="health takes a while", default_model="z")]

    @hookimpl
    def health(self, target: Target, timeout: float, offline: bool) -> HealthReport:
        time.sleep(self.delay)
        return HealthReport.from_checks([Check("server", CheckStatus.PASS, "answered")], latency_s=self.delay)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=10)
    parser.add_argument("--delay", type=float, default=1.0, help="seconds each health check takes")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the median is reported")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="llmswitch-bench-doctor-"))
    config = home / "config.toml"
    config.write_text("".join(f'[profiles.p{i}]\nbackend = "sleepy"\n' for i in range(args.profiles)))
    os.environ["LLMSWITCH_CONFIG"] = str(config)
    os.environ["LLMSWITCH_DATA_DIR"] = str(home / "data")

    from llmswitch.client import Client
    from llmswitch.doctor import diagnose, run_doctor
    from llmswitch.plugins import register_plugin

    register_plugin(SleepyBackend(args.delay), "sleepy")
    client = Client()
    names = [f"p{i}" for i in range(args.profiles)]
    timeout = max(5.0, args.delay * 2)

    def sequential() -> float:
        started = time.perf_counter()
        for name in names:
            diagnose(client, name, timeout=timeout)
        return time.perf_counter() - started

    def concurrent() -> float:
        started = time.perf_counter()
        report = run_doctor(client, names, timeout=timeout)
        elapsed = time.perf_counter() - started
        if not report.ok:
            sys.exit(f"unexpected: {[(d.profile, d.status) for d in report.diagnoses]}")
        return elapsed

    concurrent()  # warm up: plugin registry, imports
    base = statistics.median(sequential() for _ in range(args.repeat))
    doctor = statistics.median(concurrent() for _ in range(args.repeat))
    print(f"{args.profiles} profiles, health check {args.delay:g} s each, median of {args.repeat}")
    print(f"  one after another (baseline): {base:7.3f} s")
    print(f"  llmswitch doctor (concurrent): {doctor:7.3f} s")
    print(f"  speed-up: {base / doctor:5.1f}x   doctor / one check: {doctor / args.delay:5.2f}x "
          f"(1.00x is ideal; the claim is 'about one check')")


if __name__ == "__main__":
    main()
