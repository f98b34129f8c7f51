"""Small helpers shared by the core tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner, Result

from llmswitch.cli import cli


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
