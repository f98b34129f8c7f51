"""`llmswitch plugins new`, `install` and `uninstall` as an author uses them: a generated distribution is
pip-installed into a virtual environment of its own (not this checkout, not the test venv), shows as loaded,
answers through a profile, passes its own tests (the plugin contract among them) and is uninstalled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from llmswitch.errors import ConfigError
from llmswitch.testing.openai_server import openai_server
from tests.helpers import run_cli

LOCAL_PIP = ("--", "--no-deps", "--no-build-isolation")  # no network: llmswitch and setuptools are already here


@pytest.fixture(scope="module")
def scratch_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real virtual environment that sees the test venv's packages (llmswitch, pip, pytest) through a .pth
    file, so what is installed into it goes into it alone."""
    root = tmp_path_factory.mktemp("scratch") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    parent = sysconfig.get_paths()["purelib"]
    Path(purelib, "_llmswitch_test_parent.pth").write_text(f"import site; site.addsitedir({parent!r})\n")
    return python


def scratch(python: Path, *args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(python), *args], capture_output=True, text=True, cwd=cwd, timeout=timeout,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})


def listed(python: Path) -> dict[str, dict[str, object]]:
    result = scratch(python, "-m", "llmswitch", "plugins", "--json")
    assert result.returncode == 0, result.stderr
    return {record["name"]: record for record in json.loads(result.stdout)}


@pytest.mark.parametrize("shape", ["local", "http"])
def test_a_generated_plugin_installs_loads_answers_and_passes_its_own_tests(
        shape: str, scratch_venv: Path, tmp_path: Path, config_file: Path) -> None:
    name = f"gen_{shape}"
    made = scratch(scratch_venv, "-m", "llmswitch", "plugins", "new", name, "--dir", str(tmp_path),
                   *(["--http"] if shape == "http" else []))
    assert made.returncode == 0, made.stderr
    root = tmp_path / f"llmswitch-gen-{shape}"
    assert {"pyproject.toml", "README.md", f"llmswitch_{name}/__init__.py", f"llmswitch_{name}/prices.toml",
            "tests/test_contract.py"} <= {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    pyproject = (root / "pyproject.toml").read_text()
    assert 'license = "Apache-2.0"' in pyproject and "setuptools>=77" in pyproject
    assert f'{name} = "llmswitch_{name}"' in pyproject

    installed = scratch(scratch_venv, "-m", "llmswitch", "plugins", "install", str(root), *LOCAL_PIP)
    assert installed.returncode == 0, installed.stderr
    assert f"{name} (llmswitch-gen-{shape} 0.1.0): loaded" in installed.stderr
    assert listed(scratch_venv)[name]["status"] == "loaded"
    assert not Path(sysconfig.get_paths()["purelib"], f"llmswitch_{name}").exists()  # not in the test venv

    try:
        if shape == "http":
            with openai_server() as server:
                server.state.options["answer"] = "generated and answering"
                config_file.write_text(f'[profiles.p]\nbackend = "{name}"\nbase_url = "{server.url}/v1"\n')
                chat = scratch(scratch_venv, "-m", "llmswitch", "chat", "-p", "p", "hello")
            assert (chat.returncode, chat.stdout) == (0, "generated and answering\n"), chat.stderr
        else:
            config_file.write_text(f'[profiles.p]\nbackend = "{name}"\n')
            chat = scratch(scratch_venv, "-m", "llmswitch", "chat", "-p", "p", "hello there")
            assert (chat.returncode, chat.stdout) == (0, "You said: hello there\n"), chat.stderr

        own_tests = scratch(scratch_venv, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
                            cwd=root)
        assert own_tests.returncode == 0, own_tests.stdout[-3000:]
        assert "test_contract_failures_are_errors_of_the_tree_with_a_remedy" in own_tests.stdout or \
            " passed" in own_tests.stdout
    finally:
        removed = scratch(scratch_venv, "-m", "llmswitch", "plugins", "uninstall", name)
    assert removed.returncode == 0 and f"uninstalled llmswitch-gen-{shape}" in removed.stderr, removed.stderr
    assert name not in listed(scratch_venv)


def test_a_plugin_that_breaks_loading_is_reported_and_can_be_removed(scratch_venv: Path, tmp_path: Path) -> None:
    assert run_cli("plugins", "new", "broken", "--dir", str(tmp_path)).exit_code == 0
    module = tmp_path / "llmswitch-broken" / "llmswitch_broken" / "__init__.py"
    module.write_text(module.read_text() + "\nraise RuntimeError('this plugin is broken on purpose')\n")

    kept = scratch(scratch_venv, "-m", "llmswitch", "plugins", "install", str(module.parents[1]), *LOCAL_PIP)
    assert kept.returncode == 1
    assert "FAILS to load" in kept.stderr and "broken on purpose" in kept.stderr
    assert "llmswitch plugins uninstall broken" in kept.stderr and "Traceback" not in kept.stderr
    assert listed(scratch_venv)["broken"]["status"] == "failed"
    echo = scratch(scratch_venv, "-m", "llmswitch", "chat", "-p", "echo", "still here")
    assert echo.stdout == "still here\n"  # the others keep working

    removed = scratch(scratch_venv, "-m", "llmswitch", "plugins", "install", "--yes", str(module.parents[1]),
                      "--", "--no-deps", "--no-build-isolation", "--force-reinstall")
    assert "uninstalled llmswitch-broken" in removed.stderr, removed.stderr
    assert "broken" not in listed(scratch_venv)


def test_new_refuses_a_bad_name_and_a_folder_in_use(tmp_path: Path) -> None:
    bad = run_cli("plugins", "new", "My-Backend", "--dir", str(tmp_path))
    assert bad.exit_code == 2 and "lower-case letters" in bad.stderr
    assert run_cli("plugins", "new", "twice", "--dir", str(tmp_path)).exit_code == 0
    again = run_cli("plugins", "new", "twice", "--dir", str(tmp_path))
    assert again.exit_code == 2 and "not empty" in again.stderr


def test_installing_into_a_python_outside_a_virtualenv_is_refused_with_the_reason(tmp_path: Path) -> None:
    # The interpreter the test venv was made from: a Python that is not a virtual environment.
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    code = (f"import site, sys; site.addsitedir({sysconfig.get_paths()['purelib']!r}); "
            "from llmswitch.cli import main; main(['plugins', 'install', 'llmswitch-nothing'])")
    result = subprocess.run([str(base), "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "not a virtual environment" in result.stderr and "--user" in result.stderr
    assert "PEP 668" in result.stderr


def test_uninstall_refuses_the_core_and_an_unknown_name() -> None:
    from llmswitch.plugin_install import PluginState, distribution_of

    plugins = [PluginState("echo", "llmswitch-echo", "0.1.0", "loaded", ("echo",))]
    assert distribution_of("echo", plugins) == "llmswitch-echo"
    with pytest.raises(ConfigError, match="not a plugin"):
        distribution_of("llmswitch", plugins)
    with pytest.raises(ConfigError, match="no installed plugin is called 'nothing'") as unknown:
        distribution_of("nothing", plugins)
    assert "llmswitch-echo" in (unknown.value.remedy or "")
