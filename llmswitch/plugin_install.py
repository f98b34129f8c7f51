"""``llmswitch plugins install`` / ``uninstall``: pip into llmswitch's own environment, then load and report.

pip runs as ``sys.executable -m pip``, so a plugin lands next to the llmswitch that will load it (as ``llm
install`` does), whatever ``pip`` is first on PATH. What was installed is then loaded in a fresh process (a
plugin that was already imported here would show its old self) and reported: loaded with its backends, or
the error that stops it, with the command that removes it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field

from llmswitch.errors import ConfigError, LLMSwitchError
from llmswitch.record import record

CORE_DISTRIBUTION = "llmswitch"


@record(slots=False)
class PluginState:
    """One plugin as a fresh process loads it (``llmswitch plugins --json``)."""

    name: str
    distribution: str | None
    version: str | None
    status: str
    backends: tuple[str, ...] = ()
    error: str | None = None


@dataclass
class InstallReport:
    """What an install changed: the plugins that appeared or changed version, and pip's own output."""

    changed: list[PluginState] = field(default_factory=list)
    pip_output: str = ""

    @property
    def broken(self) -> list[PluginState]:
        return [state for state in self.changed if state.status == "failed"]


def in_virtual_environment() -> bool:
    return sys.prefix != sys.base_prefix


def check_environment(*, user: bool, system: bool) -> None:
    """Refuse to pip-install into a Python that is not a virtual environment unless the user said so."""
    if in_virtual_environment() or user or system:
        return
    raise ConfigError(
        f"llmswitch runs on {sys.executable}, which is not a virtual environment: installing a plugin there "
        "changes the Python every program on this machine shares (and a distribution's Python refuses it: "
        "PEP 668)",
        remedy="add --user to install for your user only, or --system to install into that Python anyway; "
        "better, install llmswitch in a virtual environment (`pipx install llmswitch`, or python3 -m venv)",
    )


def loaded_plugins() -> list[PluginState]:
    """The plugins a fresh llmswitch process loads (this process may hold stale imports)."""
    result = subprocess.run([sys.executable, "-m", "llmswitch", "plugins", "--json"], capture_output=True,
                            text=True, timeout=300)
    if result.returncode != 0:
        raise LLMSwitchError(f"llmswitch could not list its plugins after the change: {result.stderr.strip()}",
                             remedy="run `llmswitch plugins` to see what is wrong")
    return [PluginState(record["name"], record["distribution"], record["version"], record["status"],
                        tuple(record["backends"]), record["error"]) for record in json.loads(result.stdout)]


def run_pip(arguments: list[str]) -> str:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *arguments]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        from llmswitch.secrets import redact

        tail = "\n".join(redact(result.stderr.strip() or result.stdout.strip()).splitlines()[-8:])
        raise LLMSwitchError(f"pip failed ({' '.join(arguments[:1])} exited {result.returncode}):\n{tail}",
                             remedy="fix what pip says above and run the command again")
    return result.stdout


def install(spec: str, *, user: bool = False, system: bool = False, pip_options: tuple[str, ...] = ()) -> InstallReport:
    """``pip install`` a plugin (a name on the index, a local path, a URL), then load it in a fresh process."""
    check_environment(user=user, system=system)
    before = {(state.name, state.version) for state in loaded_plugins()}
    output = run_pip(["install", *(["--user"] if user else []), *pip_options, spec])
    installed = installed_distributions(output)
    changed = [state for state in loaded_plugins()
               if (state.name, state.version) not in before or normalized(state.distribution or "") in installed]
    return InstallReport(changed, output)


def normalized(distribution: str) -> str:
    """A distribution name as PEP 503 compares them (``LLMSwitch_Acme`` is ``llmswitch-acme``)."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


def installed_distributions(pip_output: str) -> set[str]:
    """The distributions pip's ``Successfully installed a-1.0 b-2.0`` line names (a reinstall of the same
    version counts: it may have changed)."""
    names: set[str] = set()
    for line in pip_output.splitlines():
        if line.startswith("Successfully installed "):
            names.update(normalized(item.rsplit("-", 1)[0]) for item in line.split()[2:])
    return names


def distribution_of(name: str, plugins: list[PluginState]) -> str:
    """The distribution to remove for ``name``: a plugin, a backend or a distribution name."""
    for state in plugins:
        if name in (state.name, state.distribution, *state.backends) and state.distribution:
            if state.distribution.lower() == CORE_DISTRIBUTION:
                break
            return state.distribution
    if name.lower() == CORE_DISTRIBUTION:
        raise ConfigError("llmswitch itself is not a plugin", remedy="pip uninstall llmswitch removes it")
    known = sorted({state.distribution for state in plugins if state.distribution})
    raise ConfigError(f"no installed plugin is called '{name}'",
                      remedy=f"installed plugin distributions: {', '.join(known) or 'none'} "
                      "(`llmswitch plugins` lists them)")


def uninstall(name: str, *, system: bool = False, user: bool = False) -> str:
    """``pip uninstall`` the distribution that provides plugin (or backend) ``name``; return its name."""
    check_environment(user=user, system=system)
    distribution = distribution_of(name, loaded_plugins())
    run_pip(["uninstall", "--yes", distribution])
    return distribution
