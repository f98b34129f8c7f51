"""The extras users install (`pip install 'llmswitch[local]'`), and what llmswitch says when one is missing."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from llmswitch.extras import extra_for_backend, extra_for_profile, known_extras
from llmswitch.plugins import get_registry
from tests.helpers import run_cli

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
OPTIONAL = PYPROJECT["project"]["optional-dependencies"]


def requirement_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower() for requirement in requirements}


def test_every_extra_in_the_data_file_pulls_its_backends() -> None:
    for extra in known_extras():
        assert extra.name in OPTIONAL, f"extras.toml names [{extra.name}], which pyproject.toml does not define"
        assert requirement_names(OPTIONAL[extra.name]) == {f"llmswitch-{b}" for b in extra.backends}


def test_every_bundled_backend_and_its_built_in_profiles_have_an_extra() -> None:
    bundled = {path.name.removeprefix("llmswitch-") for path in (ROOT / "plugins").iterdir()}
    registry = get_registry()
    for backend in bundled:
        extra = extra_for_backend(backend)
        assert extra is not None, f"no extra installs the {backend} backend"
        for profile in registry.backends[backend].info.profiles:
            assert extra_for_profile(profile) == extra, f"extras.toml does not say {extra.name} brings '{profile}'"


def test_all_pulls_every_extra() -> None:
    (everything,) = OPTIONAL["all"]
    named = set(re.search(r"\[(.*)\]", everything).group(1).split(","))  # type: ignore[union-attr]
    assert named == set(OPTIONAL) - {"all", "test"}


def test_the_version_is_written_once() -> None:
    from llmswitch import __version__

    assert "version" not in PYPROJECT["project"] and "version" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "llmswitch.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)


def test_with_only_the_core_the_local_profile_names_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMSWITCH_PLUGINS", "")  # no plugin at all: the core alone
    for args in (["chat", "-p", "local", "hi"], ["chat", "hi"]):  # `local` is also the default profile
        result = run_cli(*args)
        assert result.exit_code == 2
        assert "pip install 'llmswitch[local]'" in result.stderr and "Traceback" not in result.stderr
        assert "did you mean" not in result.stderr.lower()


def test_a_missing_backend_is_not_called_a_typo_of_an_installed_one(config_file: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMSWITCH_PLUGINS", "echo,ollama")
    config_file.write_text('[profiles.mine]\nbackend = "llamacpp"\n')
    result = run_cli("chat", "-p", "mine", "hi")
    assert result.exit_code == 2 and "pip install 'llmswitch[local]'" in result.stderr
    assert "ollama'?" not in result.stderr and "Did you mean" not in result.stderr
    config_file.write_text('[profiles.mine]\nbackend = "olama"\n')  # a real typo still gets its suggestion
    assert "Did you mean 'ollama'?" in run_cli("chat", "-p", "mine", "hi").stderr
