"""The one place where errors become what the user reads: a sentence, a remedy, an exit code.

Never a traceback (unless ``LLMSWITCH_DEBUG=1``), never a key in full: every message passes through
:func:`llmswitch.secrets.redact`. A message can quote a server's error body, so on a terminal it is shown
through :func:`llmswitch.terminal.for_display` (an escape sequence in it is shown, not obeyed).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from llmswitch.errors import LLMSwitchError, describe
from llmswitch.terminal import for_display

EXIT_OK = 0
EXIT_BACKEND = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the program is, like Ctrl-C: the same paths keep the partial answer,
    record it as interrupted and charge what was used. Exit code 128 + the signal's number, as a shell does."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


@contextmanager
def stopping_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`Terminated` (a kill or a closed terminal mid-answer
    must not lose what was shown, nor the ledger row); the previous handlers come back after it. After the
    first signal the others are ignored, so the bookkeeping it triggers is not cut short by a second."""

    def raise_terminated(signum: int, frame: object) -> None:
        for number in _STOP_SIGNALS:
            signal.signal(number, signal.SIG_IGN)
        raise Terminated(signum)

    previous = {number: signal.signal(number, raise_terminated) for number in _STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


# SIGHUP: the terminal closed (an ssh session dropped, a window closed). Windows has no SIGHUP.
_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def error_payload(error: LLMSwitchError) -> dict[str, Any]:
    """The error as JSON output carries it (see :meth:`LLMSwitchError.as_dict`)."""
    return error.as_dict()


def print_error(error: LLMSwitchError) -> None:
    echo_status(describe(error, hint_indent="  "))


def echo_status(text: str) -> None:
    """A line of status or error text on stderr (neutralized there when stderr is a terminal)."""
    click.echo(for_display(text, sys.stderr), err=True)


def quietly_echo(text: str) -> None:
    """A status line that may find no terminal to go to (after SIGHUP): then it is simply not shown."""
    try:
        echo_status(text)
    except OSError:
        pass


def run_guarded(run: Callable[[], Any]) -> int:
    """Run the click app; map every way it can end to an exit code."""
    try:
        result = run()
    except LLMSwitchError as error:
        print_error(error)
        return error.exit_code
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        return EXIT_INTERRUPTED
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except Terminated as stop:
        quietly_echo(f"\nstopped by {stop.name}")
        return stop.exit_code
    except KeyboardInterrupt:
        click.echo("\ninterrupted", err=True)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`llmswitch chat ... | head`): not an error worth a message.
        silence_stdout()
        return EXIT_OK
    except Exception as error:  # the last line of defence: a sentence, not a traceback
        if os.environ.get("LLMSWITCH_DEBUG"):
            raise
        echo_status(describe(error, hint_indent="  "))
        return EXIT_BACKEND
    if isinstance(result, int):
        return result
    return EXIT_OK


def silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass
