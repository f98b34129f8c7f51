"""Rich tables for the report commands (doctor, cost, prices, usage). Imported only when one of them runs.

On a terminal: colour and the terminal's width. Piped or captured: no colour, and wide enough that a row
is never folded (so ``grep`` finds it whole).
"""

from __future__ import annotations

import sys
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

PIPED_WIDTH = 200


def console(file: IO[str] | None = None) -> Console:
    from rich.console import Console

    file = file or sys.stdout
    is_terminal = file.isatty()
    return Console(file=file, width=None if is_terminal else PIPED_WIDTH, no_color=not is_terminal,
                   highlight=False, soft_wrap=not is_terminal)


def table(*columns: str, right: tuple[str, ...] = (), title: str | None = None) -> Table:
    """A plain table; ``right`` names the columns to right-align (numbers)."""
    from rich import box
    from rich.table import Table

    grid = Table(box=box.SIMPLE_HEAD, title=title, title_justify="left", pad_edge=False)
    for column in columns:
        grid.add_column(column, justify="right" if column in right else "left", overflow="fold")
    return grid
