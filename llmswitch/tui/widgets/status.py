"""The status line: which profile and model answer, and what the last answer and the conversation cost."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from llmswitch.tui.session import TurnStats


def format_usd(value: float | None, *, partial: bool = False, none: str = "?") -> str:
    """Dollars; ``none`` when unknown; a ``+?`` suffix when some parts of a total are unknown."""
    if value is None:
        return "?" if partial else none
    if value == 0:
        return "$0" + ("+?" if partial else "")
    text = f"${value:.4f}" if value >= 0.0001 else f"${value:.2g}"
    return text + ("+?" if partial else "")


def format_tokens(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


class StatusLine(Static):
    """One line, updated after each answer and on every profile switch."""

    def show(
        self,
        *,
        profile: str,
        backend: str,
        model: str,
        last: TurnStats,
        total_cost_usd: float | None,
        unknown_cost: bool,
        state: str = "",
        conversation_id: int | None = None,
        saved: bool = True,
    ) -> None:
        parts: list[tuple[str, str] | str] = [(f" {profile} ", "bold reverse"), f" {backend} · {model}"]
        if last.output_tokens is not None or last.input_tokens is not None or last.latency_s is not None:
            parts.append(f"  │ in {format_tokens(last.input_tokens)} out {format_tokens(last.output_tokens)}")
            if last.latency_s is not None:
                parts.append(f" · {last.latency_s:.2f}s")
            parts.append(f" · {format_usd(last.cost_usd)}" + (" (cached)" if last.cached else ""))
        parts.append(f"  │ conversation {format_usd(total_cost_usd, partial=unknown_cost, none='–')}")
        if conversation_id is not None:
            parts.append((f"  #{conversation_id}", "dim"))
        if not saved:
            parts.append(("  not saved", "bold"))
        if state:
            parts.append((f"  {state}", "italic"))
        self.update(Content.assemble(*parts))
