"""Small helpers shared by the core tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from llmswitch.cli import cli


def console_script_probe(report: str) -> str:
    """Python source for ``python -c``: run the ``llmswitch`` console script with the arguments after ``-c
    SOURCE``, then ``report`` (statements that write what the test looks at, e.g. ``sys.modules``). The script
    ends through ``os._exit`` once the ``atexit`` handlers ran (llmswitch.process_exit), so ``report`` runs as
    one of them."""
    body = "".join(f"    {line}\n" for line in report.splitlines())
    return ("import atexit, json, runpy, sys\n"
            f"def report():\n{body}"
            "atexit.register(report)\n"
            "sys.argv = ['llmswitch'] + sys.argv[1:]\n"
            "runpy.run_module('llmswitch', run_name='__main__')\n")


def run_cli(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    """Invoke the CLI in-process the way `main` does (errors rendered, exit codes mapped)."""

    runner = CliRunner()
    holder: dict[str, Result] = {}

    def invoke() -> int:
        result = runner.invoke(cli, list(args), input=input, env=env, catch_exceptions=True, standalone_mode=False)
        holder["result"] = result
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.return_value if isinstance(result.return_value, int) else result.exit_code

    return _GuardedResult.run(invoke, holder)


class _GuardedResult:
    @staticmethod
    def run(invoke, holder):  # type: ignore[no-untyped-def]
        import contextlib
        import io

        from llmswitch.cli.errors import run_guarded

        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = run_guarded(invoke)
        result = holder.get("result")
        return CliOutcome(code, result.stdout if result else "", (result.stderr if result else "") + err.getvalue())


class CliOutcome:
    def __init__(self, exit_code: int, stdout: str, stderr: str) -> None:
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __repr__(self) -> str:
        return f"CliOutcome({self.exit_code}, stdout={self.stdout!r}, stderr={self.stderr!r})"


def llmswitch_subprocess(*args: str, input: str | None = None, env: dict[str, str] | None = None,
                         timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the installed CLI as a real process with the test's environment."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "llmswitch", *args],
        input=input, capture_output=True, text=True, env=full_env, timeout=timeout,
    )


def write_config(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _default_signal_dispositions() -> None:
    import signal

    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_DFL)


def interruptible_popen(args: list[str], **kwargs: Any) -> subprocess.Popen[str]:
    """Start a child as a terminal would: SIGINT, SIGTERM and SIGHUP at their defaults.

    A test run started in the background (``cmd &`` in a script, some CI runners) ignores SIGINT, and a child
    inherits an ignored signal: Python would then never raise KeyboardInterrupt in it, and a Ctrl-C test would
    test the parent shell instead of llmswitch.
    """
    return subprocess.Popen(args, preexec_fn=_default_signal_dispositions, **kwargs)  # noqa: PLW1509


def llmswitch_on_terminal(*args: str, lines: tuple[bytes, ...] = (), env: dict[str, str] | None = None,
                          timeout: float = 60) -> tuple[int, bytes]:
    """Run the CLI as a real process whose stdin, stdout and stderr are a pseudo-terminal, as in a user's
    shell; return its exit code and every byte it wrote to the terminal. Each of ``lines`` is typed at the
    next ``> `` prompt (the REPL's)."""
    import pty
    import select
    import time

    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "llmswitch", *args], stdin=terminal, stdout=terminal, stderr=terminal,
        env={**os.environ, **(env or {})}, close_fds=True, preexec_fn=_default_signal_dispositions,
    )
    os.close(terminal)
    output = bytearray()
    typed = 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.1)
            if ready:
                try:
                    data = os.read(controller, 65536)
                except OSError:  # EIO: the process closed its end of the terminal
                    break
                if not data:
                    break
                output += data
                if typed < len(lines) and output.count(b"> ") > typed:
                    os.write(controller, lines[typed])
                    typed += 1
            elif process.poll() is not None:
                break
        else:
            process.kill()
            raise AssertionError(f"llmswitch {' '.join(args)} did not end within {timeout}s: {bytes(output)!r}")
        return process.wait(timeout=10), bytes(output)
    finally:
        os.close(controller)


def python_processes_at_once(code: str, *args: str, count: int = 3) -> None:
    """Run ``python -c code args`` ``count`` times at once (several llmswitch opening one file); each must
    succeed."""
    processes = [subprocess.Popen([sys.executable, "-c", code, *args], stderr=subprocess.PIPE, text=True)
                 for _ in range(count)]
    for process in processes:
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
