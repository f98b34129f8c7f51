"""The terminal report of ``llmswitch bench``: a table of medians with min-max, then bar charts."""

from __future__ import annotations

from collections.abc import Callable

from llmswitch.bench import ProfileBench, Spread

BAR_WIDTH = 40


def _seconds(value: float) -> str:
    if value < 0.01:
        return f"{value * 1000:.1f} ms"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _rate(value: float) -> str:
    return f"{value:,.1f}"


def _count(value: float) -> str:
    return f"{value:.0f}"


def _usd(value: float) -> str:
    from llmswitch.pricing import format_usd

    return format_usd(value)


def _cell(spread: Spread | None, shown: Callable[[float], str]) -> str:
    if spread is None:
        return "-"
    if spread.low == spread.high:
        return shown(spread.median)
    return f"{shown(spread.median)} ({shown(spread.low)}–{shown(spread.high)})"


COLUMNS: tuple[tuple[str, str, Callable[[float], str]], ...] = (
    ("first token", "ttft_s", _seconds),
    ("tokens/s", "tokens_per_s", _rate),
    ("total", "total_s", _seconds),
    ("in", "input_tokens", _count),
    ("out", "output_tokens", _count),
    ("cost/call", "cost_usd", _usd),
)
CHARTS = (("time to first token", "ttft_s", _seconds), ("total latency", "total_s", _seconds),
          ("output tokens per second", "tokens_per_s", _rate))


def render(results: list[ProfileBench], *, runs: int, warmup: int) -> None:
    from rich.text import Text

    from llmswitch.cli.tables import console, table
    from llmswitch.terminal import for_display

    out = console()
    grid = table("profile", *(name for name, _, _ in COLUMNS), "cold start", "ok", right=(
        *(name for name, _, _ in COLUMNS), "cold start", "ok"),
        title=f"median (min–max) of {runs} call{'s' if runs != 1 else ''} per profile, after {warmup} warm-up")
    for result in results:
        cells = [_cell(result.spread(metric), shown) for _, metric, shown in COLUMNS]
        if result.tokens_estimated and cells[4] != "-":
            cells[4] += " ~"
        cold = result.cold_start_s
        grid.add_row(result.profile, *cells, _seconds(cold) if cold is not None else "-",
                     f"{len(result.ok)}/{len(result.samples)}" if not result.error else "0")
    out.print(grid)
    for result in results:
        error = result.error or result.first_error
        if error:
            failed = len(result.failures) if not result.error else "all"
            out.print(Text(f"{result.profile}: {failed} failed: {for_display(error, out.file)}", style="red"))
    if any(result.tokens_estimated for result in results):
        out.print("~ the backend reported no usage: tokens counted by llmswitch (an estimate)")
    for title, metric, shown in CHARTS:
        medians = {result.profile: spread.median for result in results if (spread := result.spread(metric))}
        if len(medians) < 1:
            continue
        out.print(f"\n{title} (median)")
        longest = max(medians.values()) or 1.0
        width = max(len(name) for name in medians)
        for name, value in medians.items():
            bar = "█" * max(1, round(BAR_WIDTH * value / longest)) if value > 0 else ""
            out.print(f"  {name:<{width}}  {bar} {shown(value)}", highlight=False)
