"""Developer sessions: `scripts/nox.sh -s tests`, `-s lint`, `-s typecheck`.

Each session runs on the Python that runs nox (`scripts/nox.sh` uses python3), so the sessions work on
whatever python3 a machine has (3.11 on Debian 12, 3.12 on Ubuntu 24.04) instead of being skipped when one
fixed version is missing.

Every session installs llama-cpp-python from the portable wheel built (once, then cached by flags) by
scripts/llama-wheel.sh: a native build crashes with SIGILL on CPUs that advertise AMX.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True

PLUGINS = ["echo", "openai", "anthropic", "ollama", "llamacpp"]


def install_everything(session: nox.Session) -> None:
    session.run("bash", "scripts/install.sh", "--test", "--venv", session.virtualenv.location, external=True)


@nox.session(python=None)
def tests(session: nox.Session) -> None:
    """The whole suite, slow tests (real GGUF model, llama.cpp's server) included."""
    install_everything(session)
    session.run("python", "-m", "pytest", *(session.posargs or ["-q"]))


@nox.session(python=None)
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "llmswitch", "plugins", "tests", "bench")


@nox.session(python=None)
def typecheck(session: nox.Session) -> None:
    install_everything(session)
    session.install("mypy")
    session.run("mypy", "llmswitch", *[f"plugins/llmswitch-{name}" for name in PLUGINS])
