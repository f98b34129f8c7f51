"""``llmswitch plugins new``: write a complete plugin distribution from the templates shipped in the package.

The result installs with pip, shows as loaded in ``llmswitch plugins``, answers through a profile and passes
its own tests (llmswitch's plugin contract among them) as generated. Two shapes: an in-process backend (a
``generate`` function to replace) and, with ``http=True``, an OpenAI-style HTTP backend on the toolkit.
"""

from __future__ import annotations

import datetime
import re
from importlib import resources
from pathlib import Path
from string import Template

from llmswitch.errors import ConfigError
from llmswitch.record import record

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
# generated path -> (template folder, template file); {package} is replaced by the package name
COMMON_FILES = {
    "pyproject.toml": ("common", "pyproject.toml.tmpl"),
    "README.md": ("common", "README.md.tmpl"),
    "tests/conftest.py": ("common", "conftest.py.tmpl"),
    "{package}/py.typed": ("common", "py.typed.tmpl"),
}
SHAPE_FILES = {
    "{package}/__init__.py": "module.py.tmpl",
    "{package}/prices.toml": "prices.toml.tmpl",
    "tests/test_contract.py": "test_contract.py.tmpl",
    "tests/test_backend.py": "test_backend.py.tmpl",
}


@record(slots=False)
class PluginNames:
    """The names one backend name implies, by the convention every llmswitch plugin follows."""

    name: str

    @property
    def distribution(self) -> str:
        return f"llmswitch-{self.name.replace('_', '-')}"

    @property
    def package(self) -> str:
        return f"llmswitch_{self.name}"

    @property
    def key_env(self) -> str:
        return f"{self.name.upper()}_API_KEY"


def check_name(name: str) -> PluginNames:
    if not NAME_PATTERN.match(name):
        raise ConfigError(
            f"'{name}' cannot name a backend",
            remedy="use lower-case letters, digits and underscores, starting with a letter (e.g. `acme` or "
            "`my_server`): it becomes the backend name, the package llmswitch_NAME and the distribution "
            "llmswitch-NAME",
        )
    return PluginNames(name)


def new_plugin(name: str, directory: Path, *, http: bool = False) -> Path:
    """Write the distribution for backend ``name`` into ``directory/llmswitch-NAME``; return that folder.

    Refuses (``ConfigError``) a name that cannot be a backend name and a folder that already has files in it.
    """
    from llmswitch import __version__

    names = check_name(name)
    root = directory / names.distribution
    if root.exists() and any(root.iterdir()):
        raise ConfigError(f"{root} already exists and is not empty",
                          remedy="pick another --dir, or remove that folder first")
    summary = (f"an OpenAI-style chat server ({name})" if http else f"the {name} model, in-process")
    profile_example = (
        f"llmswitch profiles add {name} --backend {name} --set base_url=http://127.0.0.1:8000/v1 "
        f"--model test-model"
        if http else f"llmswitch profiles add {name} --backend {name}   # or use the built-in `{name}` profile"
    )
    values = {
        "name": name,
        "distribution": names.distribution,
        "package": names.package,
        "key_env": names.key_env,
        "summary": summary,
        "core_version": ".".join(__version__.split(".")[:2]),
        "date": datetime.date.today().isoformat(),
        "profile_example": profile_example,
    }
    shape = "http" if http else "local"
    files = {**COMMON_FILES, **{path: (shape, template) for path, template in SHAPE_FILES.items()}}
    templates = resources.files("llmswitch") / "templates"
    for relative, (folder, template) in files.items():
        text = Template((templates / folder / template).read_text(encoding="utf-8")).substitute(values)
        path = root / relative.format(package=names.package)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root
