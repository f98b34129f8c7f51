"""The one place where errors become what the user reads: a sentence, a remedy, an exit code.

Never a traceback (unless ``LLMSWITCH_DEBUG=1``), never a key in full: every message passes through
:func:`llmswitch.secrets.redact`. A message can quote a server's error body, so on a terminal it is shown
through :func:`llmswitch.terminal.for_display` (an escape sequence in it is shown, not obeyed).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import click

from llmswitch.errors import LLMSwitchError
from llmswitch.secrets import redact
from llmswitch.terminal import for_display

EXIT_OK = 0
EXIT_BACKEND = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def describe(error: LLMSwitchError) -> str:
    """The error as shown on stderr: ``error: message`` and, when there is one, ``  hint: remedy``."""
    text = f"error: {redact(error.message)}"
    if error.remedy:
        text += f"\n  hint: {redact(error.remedy)}"
    return text


def error_payload(error: LLMSwitchError) -> dict[str, Any]:
    """The error as JSON output carries it."""
    payload: dict[str, Any] = {"kind": error.kind, "message": redact(error.message)}
    if error.remedy:
        payload["remedy"] = redact(error.remedy)
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        payload["retry_after"] = retry_after
    return payload


def print_error(error: LLMSwitchError) -> None:
    echo_status(describe(error))


def echo_status(text: str) -> None:
    """A line of status or error text on stderr (neutralized there when stderr is a terminal)."""
    click.echo(for_display(text, sys.stderr), err=True)


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
        message = redact(f"{type(error).__name__}: {error}")
        echo_status(f"error: unexpected failure: {message}")
        click.echo("  hint: run again with LLMSWITCH_DEBUG=1 for the traceback, and report it", err=True)
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
