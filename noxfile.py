"""Developer sessions: `scripts/nox.sh -s tests`, `-s lint`, `-s typecheck`.

Each session runs on the Python that runs nox (`scripts/nox.sh` uses python3), so the sessions work on
whatever python3 a machine has (3.11 on Debian 12, 3.12 on Ubuntu 24.04) instead of being skipped when one
fixed version is missing.

Every session installs llama-cpp-python from the portable wheel built (once, then cached by flags) by
scripts/llama-wheel.sh: a native build crashes with SIGILL on CPUs that advertise AMX.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "dist", "lint", "typecheck"]  # `scripts/nox.sh -s mutate` runs on request
nox.options.reuse_existing_virtualenvs = True

PLUGINS = ["echo", "openai", "anthropic", "ollama", "llamacpp", "transformers"]
# Run on every `nox -s tests` (and so in CI): quick, and about the mistakes that cost the most.
FAST_MUTATION_GROUPS = ["secrets", "budget"]


def install_everything(session: nox.Session) -> None:
    session.run("bash", "scripts/install.sh", "--test", "--venv", session.virtualenv.location, external=True)


@nox.session(python=None)
def tests(session: nox.Session) -> None:
    """The whole suite, slow tests (real GGUF models through llama.cpp and transformers, llama.cpp's server)
    included, in random order; then mutation testing of key masking and budgets, so a test that stops
    catching those mistakes turns CI red."""
    install_everything(session)
    session.run("python", "-m", "pytest", *(session.posargs or ["-q"]))
    if not session.posargs:
        session.run("python", "scripts/mutate.py", *FAST_MUTATION_GROUPS)


@nox.session(python=None)
def mutate(session: nox.Session) -> None:
    """Mutation testing of the modules whose mistakes cost money, keys or data (docs/testing.md)."""
    install_everything(session)
    session.run("python", "scripts/mutate.py", *session.posargs)


@nox.session(python=None)
def dist(session: nox.Session) -> None:
    """Build every distribution (sdist and wheel), `twine check --strict` them, install the BUILT wheels (not
    the checkout) into a fresh virtualenv and smoke-test them: package data a wheel leaves out fails here."""
    session.install("build", "twine", "setuptools>=77")
    session.run("python", "scripts/check_dists.py")


@nox.session(python=None)
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "llmswitch", "plugins", "tests", "bench")


@nox.session(python=None)
def typecheck(session: nox.Session) -> None:
    install_everything(session)
    session.install("mypy")
    session.run("mypy", "llmswitch", *[f"plugins/llmswitch-{name}" for name in PLUGINS])
