"""What a profile runs with: every setting its backend accepts, the value in effect and where it came from.

For ``profiles show`` and ``profiles list`` (and anyone else who needs to explain a profile): a setting's
value comes from the profile's own sources (built-in, the file, the environment, the command line), from the
preset it names, or from the backend's declared default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from llmswitch.profiles import GENERATION_KEYS, PROFILE_KEYS, Profile, option_specs, validate, with_preset
from llmswitch.record import record
from llmswitch.types import BackendInfo, OptionSpec

Group = Literal["profile", "backend", "generation", "router"]
DEFAULT = "default"


@record(slots=False)
class Setting:
    """One setting of a profile: its declaration, the value in effect (None: unset) and where it came from."""

    spec: OptionSpec
    value: Any
    origin: str  # "default", "built-in", a file path, "preset NAME", a variable's name, "command line"
    group: Group


def settings_in_effect(profile: Profile, info: BackendInfo) -> list[Setting]:
    """Every setting the profile's backend accepts, in declaration order. Raises like ``validate``."""
    checked = validate(profile, info)
    _, origins = with_preset(profile, info)
    specs = option_specs(info)
    groups: list[tuple[Group, list[OptionSpec]]] = [
        ("profile", [_with_default_model(spec, info) for spec in PROFILE_KEYS.values()]
         + ([specs["preset"]] if "preset" in specs else [])),
        ("backend", list(info.options)),
        # A backend option of a generation setting's name (llamacpp's seed) is listed once, with the backend's.
        ("generation", [spec for spec in (*GENERATION_KEYS.values(), *info.generation_extras)
                        if info.option(spec.name) is None]),
    ]
    return [
        Setting(spec, checked.get(spec.name, spec.default), origins.get(spec.name, DEFAULT) if spec.name in checked
                else DEFAULT, group)
        for group, group_specs in groups for spec in group_specs
    ]


def route_settings_in_effect(profile: Profile, checked: Mapping[str, Any]) -> list[Setting]:
    """Every key a route accepts (its profile keys, generation defaults, retries and limits), with the value in
    effect and where it came from; ``checked`` is the route's own keys as its reading checked them."""
    from llmswitch.profiles import ROUTER_KEYS
    from llmswitch.router.routes import route_keys

    def group(name: str) -> Group:
        return "router" if name in ROUTER_KEYS else "generation" if name in GENERATION_KEYS else "profile"

    return [Setting(spec, checked.get(name, spec.default), profile.origin(name) if name in checked else DEFAULT,
                    group(name))
            for name, spec in route_keys().items()]


def model_in_use(settings: Mapping[str, Any], info: BackendInfo) -> str:
    """The model a profile runs: the file its backend's model option names, else its model, else the default."""
    if info.model_option and settings.get(info.model_option):
        return str(settings[info.model_option])
    return str(settings.get("model") or info.default_model or "")


def _with_default_model(spec: OptionSpec, info: BackendInfo) -> OptionSpec:
    return dataclasses.replace(spec, default=info.default_model) if spec.name == "model" else spec
