"""The batch's live progress on a terminal: done/total, rate, ETA, spend so far, failures (rich, on stderr)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from llmswitch.batch.job import Progress

if TYPE_CHECKING:
    from llmswitch.batch.job import Plan, Summary
    from llmswitch.batch.results import BatchResult

REFRESH_S = 0.1


class BarProgress(Progress):
    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as Bar

        self.bar = Bar(
            TextColumn("batch"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
            TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[spend]}"),
            TextColumn("{task.fields[failures]}"),
            console=Console(stderr=True), refresh_per_second=1 / REFRESH_S,
        )
        self.task = self.bar.add_task("batch", total=0, rate="", spend="$0", failures="0 failed")
        self.started_at = time.perf_counter()
        self.last = 0.0

    def started(self, plan: Plan) -> None:
        self.bar.update(self.task, total=plan.total, completed=plan.done_before)
        self.bar.start()

    def advanced(self, result: BatchResult, summary: Summary) -> None:
        now = time.perf_counter()
        if now - self.last < REFRESH_S and summary.done < summary.total:
            return  # rich redraws on its own clock; one update per refresh is enough
        self.last = now
        self.show(summary, now)

    def show(self, summary: Summary, now: float) -> None:
        from llmswitch.pricing import format_usd

        rate = summary.answered / max(now - self.started_at, 1e-9)
        self.bar.update(self.task, completed=summary.done, rate=f"{rate:.1f}/s", spend=format_usd(summary.cost_usd),
                        failures=f"{summary.failed} failed")

    def finished(self, summary: Summary) -> None:
        self.show(summary, time.perf_counter())
        self.bar.stop()
