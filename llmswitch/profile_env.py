"""Profiles from the environment, for containers and CI where writing a config file is awkward.

- ``LLMSWITCH_PROFILE=NAME`` picks the profile used when ``--profile`` is not given (over ``default_profile``).
- ``LLMSWITCH_PROFILES`` holds one TOML snippet shaped like the file: ``[profiles.NAME]`` tables, or
  ``profiles.vllm = { backend = "openai", base_url = "http://127.0.0.1:8000/v1" }`` on one line.
- ``LLMSWITCH_PROFILE_<NAME>_<KEY>=VALUE`` sets one key of one profile: ``LLMSWITCH_PROFILE_VLLM_BACKEND=openai``,
  ``LLMSWITCH_PROFILE_VLLM_MODEL=Qwen/Qwen2.5-7B-Instruct``, ``LLMSWITCH_PROFILE_LOCAL_MODEL_PATH=/m/q.gguf``.
  NAME is an existing profile (any case, ``-`` written as ``_``) or a new one that has a ``..._BACKEND``
  variable; KEY is any key the profile's backend accepts. The text is read as that key's type, as
  ``--set KEY=VALUE`` is, and every error names the variable.

Later sources override earlier ones key by key: built-in < config file < ``LLMSWITCH_PROFILES`` <
``LLMSWITCH_PROFILE_<NAME>_<KEY>`` < ``-o``/``--set`` on the command line. A source that names another
backend than the one before it replaces the profile instead of adding to it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import field
from typing import Any

from llmswitch.config import parse_toml
from llmswitch.errors import ConfigError
from llmswitch.record import record

PROFILE_VARIABLE = "LLMSWITCH_PROFILE"
SNIPPET_VARIABLE = "LLMSWITCH_PROFILES"
KEY_PREFIX = "LLMSWITCH_PROFILE_"


@record(slots=False)
class EnvironmentProfiles:
    """What the environment says about profiles."""

    default: str | None = None
    snippet: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # profile name -> key -> (the variable's text, the variable's name)
    variables: Mapping[str, Mapping[str, tuple[str, str]]] = field(default_factory=dict)

    def names(self) -> set[str]:
        return set(self.snippet) | set(self.variables)


def is_variable(origin: str) -> bool:
    """True when a key's origin is one ``LLMSWITCH_PROFILE_<NAME>_<KEY>`` variable (its value is text)."""
    return origin.startswith(KEY_PREFIX)


def read_environment(known_names: Iterable[str], environ: Mapping[str, str] | None = None) -> EnvironmentProfiles:
    """Read the three kinds of variable; a malformed one is a ConfigError that names it."""
    environ = os.environ if environ is None else environ
    default = environ.get(PROFILE_VARIABLE, "").strip() or None
    snippet = _read_snippet(environ.get(SNIPPET_VARIABLE, ""))
    return EnvironmentProfiles(default, snippet, _read_key_variables(environ, [*known_names, *snippet]))


def _read_snippet(text: str) -> dict[str, dict[str, Any]]:
    if not text.strip():
        return {}
    document = parse_toml(text, SNIPPET_VARIABLE)
    stray = sorted(key for key in document if key != "profiles")
    profiles = document.get("profiles", {})
    if stray or not isinstance(profiles, dict):
        raise ConfigError(
            f"{SNIPPET_VARIABLE} may hold only profiles, not {', '.join(repr(key) for key in stray) or 'that'}",
            remedy="write each one as in the config file: [profiles.NAME] and its keys, or on one line "
            "profiles.NAME = { backend = \"...\", model = \"...\" }",
        )
    for name, values in profiles.items():
        if not isinstance(values, dict):
            raise ConfigError(f"{SNIPPET_VARIABLE}: profile '{name}' must be a table, not {type(values).__name__}",
                              remedy=f"write it as [profiles.{name}] followed by its keys")
    return profiles


def _read_key_variables(environ: Mapping[str, str], known_names: Iterable[str]) -> dict[str, dict[str, tuple[str, str]]]:
    variables = {name: value for name, value in environ.items() if name.startswith(KEY_PREFIX) and value != ""}
    # A profile is named by its variables in upper case; match it back to the spelling the file uses.
    spellings = {variable_spelling(name): name for name in known_names}
    for variable in variables:
        if variable.endswith("_BACKEND") and len(variable) > len(KEY_PREFIX) + len("_BACKEND"):
            spelled = variable[len(KEY_PREFIX):-len("_BACKEND")]
            spellings.setdefault(spelled, spelled.lower())
    found: dict[str, dict[str, tuple[str, str]]] = {}
    for variable, value in sorted(variables.items()):
        rest = variable[len(KEY_PREFIX):]
        # The longest profile name that leaves a key: LLMSWITCH_PROFILE_MY_VLLM_MODEL is my_vllm's model
        # when both "my" and "my_vllm" exist.
        match = max((spelled for spelled in spellings if rest.startswith(spelled + "_") and len(rest) > len(spelled) + 1),
                    key=len, default=None)
        if match is None:
            raise ConfigError(
                f"{variable} names no profile",
                remedy=f"set {KEY_PREFIX}<NAME>_BACKEND to define a new profile NAME, use the name of an existing "
                "one (`llmswitch profiles list`), or unset the variable",
            )
        key = rest[len(match) + 1:].lower()
        found.setdefault(spellings[match], {})[key] = (value, variable)
    return found


def variable_spelling(name: str) -> str:
    """How a profile name is written inside a variable's name: upper case, ``-`` as ``_``."""
    return name.upper().replace("-", "_")
