"""The README's two set-up commands: CI runs the test command verbatim, and it works on a distribution's python3."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def readme_block_after(heading_text: str) -> str:
    """The first ```sh block after the line containing ``heading_text``."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    start = readme.index(heading_text)
    match = re.search(r"```sh\n(.*?)```", readme[start:], re.S)
    assert match, f"no sh block after {heading_text!r} in README.md"
    return match.group(1).strip()


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    command = readme_block_after("Install and pass the tests")
    ci_lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert command in ci_lines
    assert "pip install" not in command  # a distribution's python3 refuses it (PEP 668)


def test_readme_commands_name_scripts_that_exist_and_run() -> None:
    for heading in ("Install and run the main job", "Install and pass the tests"):
        script = readme_block_after(heading).split()[0]
        path = REPO / script
        assert path.is_file() and os.access(path, os.X_OK), f"{script} is missing or not executable"


def _externally_managed_python() -> str | None:
    """A distribution's python3 that refuses pip installs (PEP 668), if this machine has one."""
    python = shutil.which("python3", path="/usr/bin:/bin")
    if python is None:
        return None
    stdlib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
                            capture_output=True, text=True).stdout.strip()
    return python if stdlib and glob.glob(os.path.join(stdlib, "EXTERNALLY-MANAGED")) else None


@pytest.mark.slow
def test_nox_script_works_with_an_externally_managed_python(tmp_path: Path) -> None:
    """`scripts/nox.sh` gets nox running where `python3 -m pip install nox` is refused."""
    python = _externally_managed_python()
    if python is None:
        pytest.skip("no externally managed (PEP 668) python3 in /usr/bin on this machine")
    refused = subprocess.run([python, "-m", "pip", "install", "--dry-run", "nox"], capture_output=True, text=True)
    if "No module named pip" not in refused.stderr:
        assert refused.returncode != 0 and "externally-managed-environment" in refused.stderr
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy2(REPO / "scripts" / "nox.sh", checkout / "scripts" / "nox.sh")
    shutil.copy2(REPO / "noxfile.py", checkout / "noxfile.py")
    env = {**os.environ, "PYTHON": python}
    listed = subprocess.run(["scripts/nox.sh", "--list"], cwd=checkout, env=env, capture_output=True, text=True,
                            timeout=600)
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"^\* tests\b", listed.stdout, re.M), listed.stdout


def test_install_script_is_quiet_and_shows_the_full_log_on_failure(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the virtualenv should go")
    result = subprocess.run(["bash", str(REPO / "scripts" / "install.sh"), "--venv", str(blocker / "venv")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert re.match(r"install: \[1/\d+\] virtualenv", lines[0]), lines[0]
    assert "The full log follows" in result.stderr
    assert "python3 -m venv" in result.stderr and "failed" in result.stderr  # the step's own output, from the log
    kept = re.search(r"log kept at (\S+)\)", result.stderr)
    assert kept and Path(kept.group(1)).is_file()
    Path(kept.group(1)).unlink()


def test_every_pyproject_declares_an_spdx_license_with_a_setuptools_that_reads_it() -> None:
    tomllib = pytest.importorskip("tomllib")
    for path in [REPO / "pyproject.toml", *sorted(REPO.glob("plugins/*/pyproject.toml"))]:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
        assert document["project"]["license"] == "Apache-2.0", path  # a string (PEP 639), not a table
        assert "setuptools>=77" in document["build-system"]["requires"], path
