"""How fast the TUI shows a long streamed answer, and how quickly it reacts to keys while one streams.

1. Render: a 20,000-token Markdown answer (headings, paragraphs, lists, code) from the echo backend with no
   delay, rendered in a headless app at 120x40: the time from Enter until the whole answer is on screen.
   The baseline, measured in the same run, is ``llmswitch chat`` printing the same stream (the command as
   a person runs it, output to a pipe). The claim: the TUI takes at most 3x the baseline.
2. Responsiveness: while a slow answer streams (echo with a small delay per chunk), the delay between a key
   press and its effect: a typed character appearing in the prompt box, and Esc marking the answer cancelled.

    python bench/bench_tui.py                    # the claim: 20,000 tokens, 3 runs, median
    python bench/bench_tui.py --tokens 2000 --repeat 1 --keys 10     # a quick check that it works

Every run uses its own temporary config and history; nothing touches the network.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def markdown_answer(tokens: int) -> str:
    """About ``tokens`` whitespace-separated words of varied Markdown (the echo backend counts words)."""
    words = ["the", "model", "streams", "tokens", "into", "a", "terminal", "renderer", "that", "must", "keep", "up", "with", "it"]
    sections: list[str] = []
    count = 0
    index = 0
    while count < tokens:
        index += 1
        paragraph = " ".join(words[(index + i) % len(words)] for i in range(60))
        block = [f"## Section {index}", "", paragraph, "",
                 f"- item one of section {index} with `inline code`", "- item two with **bold** text",
                 "", "```python", f"def section_{index}(value):", "    return value * 2", "```", ""]
        sections.append("\n".join(block))
        count += sum(len(line.split()) for line in block)
    return "\n".join(sections) + "\nTHE-END"


def write_config(home: Path, answer: str) -> Path:
    import tomli_w

    config = home / "config.toml"
    config.write_text(tomli_w.dumps({
        "default_profile": "bench",
        "profiles": {
            "bench": {"backend": "echo", "prefix": answer},
            "trickle": {"backend": "echo", "prefix": answer, "delay": 0.002},
        },
    }), encoding="utf-8")
    return config


def time_cli(environment: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU time of `llmswitch chat` printing the whole stream to a pipe."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    # Saved to the history like the TUI's answer (both by default), so both pay for the same bookkeeping.
    done = subprocess.run([sys.executable, "-m", "llmswitch", "chat", "--profile", "bench", "go"],
                          env=environment, capture_output=True, timeout=600)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0 or not done.stdout.rstrip().endswith(b"THE-ENDgo"):
        raise SystemExit(f"llmswitch chat failed: {done.stderr.decode()[-500:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


async def time_tui_render(expected_words: int) -> tuple[float, float, int]:
    """Seconds from Enter until the whole answer is rendered and on screen (wall, and this process's CPU:
    the app's loop and the worker thread streaming the answer); the answer's output tokens."""
    from llmswitch.tui.app import create_app

    app = create_app(profile="bench")
    async with app.run_test(size=(120, 40)) as pilot:
        screen: object = app.screen
        prompt = screen.query_one("PromptInput")  # type: ignore[attr-defined]
        prompt.load_text("go")
        await pilot.pause()
        started, cpu_started = time.perf_counter(), time.process_time()
        await pilot.press("enter")
        while screen.current is not None or screen.views:  # type: ignore[attr-defined]
            await asyncio.sleep(0.005)
        await pilot.pause()  # the last refresh: layout and paint of what was mounted
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        answer = screen.chat_log.last_assistant()  # type: ignore[attr-defined]
        if not answer.text.endswith("THE-ENDgo"):
            raise SystemExit("the TUI did not show the whole answer")
        if "THE-ENDgo" not in _screen_text(app):
            raise SystemExit("the end of the answer is not on screen (auto-scroll failed)")
        return elapsed, cpu, screen.session.last.output_tokens or expected_words  # type: ignore[attr-defined]


def _screen_text(app: object) -> str:
    import html
    import re

    svg = app.export_screenshot()  # type: ignore[attr-defined]
    return html.unescape(re.sub(r"<[^>]+>", "", svg)).replace("\xa0", " ")


async def time_keys(presses: int) -> tuple[list[float], float]:
    """Key-to-effect delays (typed characters) and the Esc-to-cancelled delay, while an answer streams.

    Keys are posted the way the terminal driver posts them (not with ``pilot.press``, which also waits for
    the whole screen to go idle); the effect is the prompt box's text changing, or the answer being marked
    cancelled. The repaint follows on the next frame (at most 1/60 s later)."""
    from textual import events

    from llmswitch.tui.app import create_app

    app = create_app(profile="trickle")
    async with app.run_test(size=(120, 40)) as pilot:
        screen: object = app.screen
        prompt = screen.query_one("PromptInput")  # type: ignore[attr-defined]
        prompt.load_text("go")
        await pilot.press("enter")
        answer = None
        while answer is None or len(answer.text) < 200:
            await asyncio.sleep(0.01)
            answer = screen.chat_log.last_assistant()  # type: ignore[attr-defined]
        delays = []
        for index in range(presses):
            character = "abcdefghij"[index % 10]
            before = prompt.text
            started = time.perf_counter()
            app.post_message(events.Key(character, character))
            while prompt.text == before:
                await asyncio.sleep(0.0002)
            delays.append(time.perf_counter() - started)
            await asyncio.sleep(0.05)  # let the stream run between presses
        if not screen.streaming:  # type: ignore[attr-defined]
            raise SystemExit("the answer finished before the key presses ended: use a longer answer (--tokens)")
        started = time.perf_counter()
        app.post_message(events.Key("escape", None))
        while screen.streaming:  # type: ignore[attr-defined]
            await asyncio.sleep(0.0002)
        cancel_delay = time.perf_counter() - started
        while screen.views:  # type: ignore[attr-defined]
            await asyncio.sleep(0.01)
        return delays, cancel_delay


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=20_000, help="length of the answer, in echo tokens")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the median is reported")
    parser.add_argument("--keys", type=int, default=30, help="key presses timed during a stream")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="llmswitch-bench-tui-"))
    answer = markdown_answer(args.tokens)
    config = write_config(home, answer)
    environment = {**os.environ, "LLMSWITCH_CONFIG": str(config), "LLMSWITCH_DATA_DIR": str(home / "data")}
    os.environ.update(environment)

    cli_times, tui_times, cli_cpus, tui_cpus = [], [], [], []
    output_tokens = 0
    for _ in range(args.repeat):
        elapsed, cpu = time_cli(environment)
        cli_times.append(elapsed)
        cli_cpus.append(cpu)
        elapsed, cpu, output_tokens = asyncio.run(time_tui_render(args.tokens))
        tui_times.append(elapsed)
        tui_cpus.append(cpu)
    cli, tui = statistics.median(cli_times), statistics.median(tui_times)
    cli_cpu, tui_cpu = statistics.median(cli_cpus), statistics.median(tui_cpus)
    print(f"answer: {output_tokens:,} tokens, {len(answer):,} characters of Markdown, no delay")
    print(f"llmswitch chat printing it (baseline):   {cli:7.3f} s  (median of {args.repeat}; CPU {cli_cpu:.3f} s, "
          "the whole process)")
    print(f"TUI, Enter to fully on screen:           {tui:7.3f} s  (median of {args.repeat}; CPU {tui_cpu:.3f} s, "
          "in the window)")
    print(f"ratio TUI / chat:                        {tui / cli:7.2f}x  (claim: <= 3x; CPU {tui_cpu / cli_cpu:.2f}x, "
          "a check on a busy machine)")

    delays, cancel = asyncio.run(time_keys(args.keys))
    delays_ms = sorted(delay * 1000 for delay in delays)
    p95 = delays_ms[min(len(delays_ms) - 1, int(0.95 * len(delays_ms)))]
    print(f"key press to effect while streaming:     median {statistics.median(delays_ms):.1f} ms, "
          f"p95 {p95:.1f} ms, max {delays_ms[-1]:.1f} ms  ({len(delays_ms)} presses)")
    print(f"Esc to answer cancelled while streaming: {cancel * 1000:.1f} ms")


if __name__ == "__main__":
    main()
