"""Profiles: named choices of backend, model, options and generation defaults.

A profile is one table in the config file; keys are flat so ``--set base_url=...`` reads naturally::

    default_profile = "claude"

    [profiles.claude]
    backend = "anthropic"
    model = "claude-sonnet-5-5"
    temperature = 0.2          # generation default
    timeout = 60               # backend option

Built-in profiles work with no file at all: each backend plugin declares its own (``BackendInfo.profiles``:
``local`` from llamacpp, ``openai``, ``anthropic``, ``ollama``, ``echo``), so the core names none. A table of
the same name in the file overrides their keys (or replaces them when it names another backend).

Routing profiles (fallback chains, pools, weighted splits) will be profiles whose table has ``route``
instead of ``backend`` and names other profiles: everything that takes a profile name goes through
:func:`ProfileStore.get`, so they will work wherever a profile does.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmswitch.config import config_path, parse_toml, read_config, read_config_text, write_config_text
from llmswitch.errors import ConfigError, InvalidOptionError, ProfileNotFoundError, close_matches
from llmswitch.profile_env import (
    KEY_PREFIX,
    PROFILE_VARIABLE,
    SNIPPET_VARIABLE,
    EnvironmentProfiles,
    is_variable,
    read_environment,
    variable_spelling,
)
from llmswitch.record import record
from llmswitch.secrets import looks_like_a_key, mask, remember_profile_secrets, secret_values
from llmswitch.types import BackendInfo, OptionSpec

BUILTIN_DEFAULT = "local"


def builtin_profiles() -> dict[str, dict[str, Any]]:
    """The profiles the installed backends declare (reads the plugin registry, which imports no SDK)."""
    from llmswitch.plugins import get_registry

    found: dict[str, dict[str, Any]] = {}
    for name, handle in sorted(get_registry().backends.items()):
        for profile, values in handle.info.profiles.items():
            found.setdefault(profile, {"backend": name, **values})
    return found

# Keys every profile may have, whatever its backend, with their types.
PROFILE_KEYS: dict[str, OptionSpec] = {
    spec.name: spec
    for spec in (
        OptionSpec("backend", "str", description="the backend (plugin) that answers"),
        OptionSpec("model", "str", description="the model to ask"),
        OptionSpec("description", "str", description="a note shown by `profiles list`"),
        OptionSpec("price_input_per_mtok", "float", description="USD per million input tokens"),
        OptionSpec("price_output_per_mtok", "float", description="USD per million output tokens"),
        OptionSpec("price_cached_input_per_mtok", "float", description="USD per million cached input tokens"),
        OptionSpec("context_window", "int", description="the model's context window in tokens, where its price "
                   "table does not say (a route's fallback after a too-long conversation prefers a larger one)",
                   minimum=1),
        OptionSpec("budget_usd_per_day", "float", description="refuse calls past this daily spend"),
        OptionSpec("budget_usd_per_month", "float", description="refuse calls past this monthly spend"),
        OptionSpec("price_batch_input_per_mtok", "float",
                   description="USD per million input tokens through the provider's batch service"),
        OptionSpec("price_batch_output_per_mtok", "float",
                   description="USD per million output tokens through the provider's batch service"),
        OptionSpec("batch_max_requests", "int",
                   description="most requests in one provider batch job (below the provider's own limit)"),
        OptionSpec("history", "bool", default=True,
                   description="save conversations with this profile in the chat history"),
        OptionSpec("cache", "bool", default=False,
                   description="answer a repeated request from the response cache (llmswitch.response_cache)"),
        OptionSpec("cache_ttl", "duration", default="1d",
                   description="how long a cached answer stays (90s, 30m, 1h, 7d, or a number of seconds)"),
        OptionSpec("cache_temperature", "bool", default=False,
                   description="cache requests whose temperature is above 0 too"),
    )
}

# Generation defaults: they fill the Request unless the command line overrides them.
GENERATION_KEYS: dict[str, OptionSpec] = {
    spec.name: spec
    for spec in (
        OptionSpec("system", "str", description="system prompt"),
        OptionSpec("temperature", "float", description="sampling temperature"),
        OptionSpec("top_p", "float", description="nucleus sampling"),
        OptionSpec("top_k", "int", description="top-k sampling"),
        OptionSpec("max_tokens", "int", description="most tokens to generate", minimum=1),
        OptionSpec("stop", "list", description="stop sequences"),
        OptionSpec("seed", "int", description="sampling seed"),
    )
}

# Keys every profile (plain or route) may set to shape its retries, cooldowns and rate limits; their defaults
# live in llmswitch.router.policy.RetryPolicy (None here: the router decides).
ROUTER_KEYS: dict[str, OptionSpec] = {
    spec.name: spec
    for spec in (
        OptionSpec("max_retries", "int", None, "retries on one member after a failure that may pass (0: none)",
                   minimum=0, absent="the default, 2"),
        OptionSpec("backoff_base_s", "float", None, "first backoff ceiling in seconds (doubles each retry)",
                   minimum=0, absent="the default, 0.5"),
        OptionSpec("backoff_max_s", "float", None, "largest backoff ceiling in seconds", minimum=0,
                   absent="the default, 8"),
        OptionSpec("retry_after_max_s", "float", None,
                   "longest Retry-After waited for on one member; longer ones move on (or fail) at once",
                   minimum=0, absent="the default, 60"),
        OptionSpec("timeout_total", "float", None, "one deadline in seconds over every retry and fallback",
                   more_than=0, absent="no deadline"),
        OptionSpec("replay_after_text", "bool", None,
                   "after text has reached you, a failure is answered again by the next member"),
        OptionSpec("cooldown_s", "float", None, "how long a failing member is skipped (0: never)", minimum=0,
                   absent="the default, 30"),
        OptionSpec("cooldown_failures", "int", None, "failures within cooldown_window_s that cool a member",
                   minimum=1, absent="the default, 3"),
        OptionSpec("cooldown_window_s", "float", None, "the window in which cooldown_failures are counted",
                   more_than=0, absent="the default, 60"),
        OptionSpec("max_concurrent", "int", None, "calls in flight at once through this profile", minimum=1,
                   absent="no limit"),
        OptionSpec("rpm", "int", None, "requests per minute through this profile", minimum=1, absent="no limit"),
        OptionSpec("tpm", "int", None, "tokens per minute (input + max_tokens reserved, settled with usage)",
                   minimum=1, absent="no limit"),
    )
}


TYPE_NAMES = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "list": "a list of strings",
    "table": "a table (TOML table or JSON object)",
    "path": "a file path (string)",
    "duration": 'a duration such as "90s", "30m", "1h", "7d", or a number of seconds',
}


@record(slots=False)
class Profile:
    """A profile as read: its name, where it came from, and its settings (its raw keys, not yet checked)."""

    name: str
    settings: Mapping[str, Any]
    source: str  # the sources it was merged from: "built-in", a file path, "built-in + <path>", ...
    # where each key was set: "built-in", the file's path, "LLMSWITCH_PROFILES", the variable's name,
    # "command line" (a key missing here comes from ``source``)
    origins: Mapping[str, str] = field(default_factory=dict)

    def origin(self, key: str) -> str:
        return self.origins.get(key, self.source)

    @property
    def backend(self) -> str:
        return str(self.settings.get("backend", ""))

    @property
    def model(self) -> str | None:
        model = self.settings.get("model")
        return str(model) if model else None

    @property
    def description(self) -> str:
        return str(self.settings.get("description", ""))

    @property
    def keeps_history(self) -> bool:
        """``history = false`` keeps this profile's conversations out of the chat history."""
        return self.settings.get("history", True) is not False


PROFILE_NAME_CHARACTERS = "use letters, digits, - and _"


def refuse_unprintable_name(name: str, where: str = "", what: str = "profile name") -> None:
    """A name with a control character (ESC, a newline...) could drive the terminal that lists it, and no one
    can type it: refused wherever a profile name (or a gateway key's, ``what``) enters (shown escaped)."""
    import unicodedata

    if any(unicodedata.category(character) == "Cc" for character in name):
        raise ConfigError(f"{where}the {what} {name!r} contains a control character",
                          remedy=f"rename it: {PROFILE_NAME_CHARACTERS}")


@dataclass
class ProfileStore:
    """The built-in profiles, the user's file and the environment's profiles, read once."""

    path: Path
    document: dict[str, Any] = field(default_factory=dict)
    environment: EnvironmentProfiles = field(default_factory=EnvironmentProfiles)

    @classmethod
    def load(cls, explicit_path: str | os.PathLike[str] | None = None) -> ProfileStore:
        path = config_path(explicit_path)
        document = read_config(path)
        store = cls(path=path, document=document)
        store._check_shape()
        store.environment = read_environment([*builtin_profiles(), *store.user_profiles])
        # From now on no output can show these in full: the file's credentials and the environment's.
        for values in [*store.user_profiles.values(), *store.environment.snippet.values()]:
            remember_profile_secrets(values)
        for variables in store.environment.variables.values():
            remember_profile_secrets({key: text for key, (text, _) in variables.items()})
        return store

    def _check_shape(self) -> None:
        profiles = self.document.get("profiles", {})
        if not isinstance(profiles, dict):
            raise ConfigError(
                f"{self.path}: 'profiles' must be a table of tables",
                remedy="write each profile as [profiles.NAME] followed by its keys",
            )
        for name, values in profiles.items():
            refuse_unprintable_name(name, f"{self.path}: ")
            if not isinstance(values, dict):
                raise ConfigError(
                    f"{self.path}: profile '{name}' must be a table, not {type(values).__name__}",
                    remedy=f"write it as [profiles.{name}] followed by its keys",
                )
        default = self.document.get("default_profile")
        if default is not None and not isinstance(default, str):
            raise ConfigError(f"{self.path}: default_profile must be a string (a profile name)")

    # ---- reading ----------------------------------------------------------------------------------

    @property
    def user_profiles(self) -> dict[str, dict[str, Any]]:
        return self.document.get("profiles", {})  # type: ignore[no-any-return]

    def names(self) -> list[str]:
        return sorted(set(builtin_profiles()) | set(self.user_profiles) | self.environment.names())

    @property
    def default_name(self) -> str:
        return self.environment.default or str(self.document.get("default_profile") or BUILTIN_DEFAULT)

    @property
    def default_origin(self) -> str:
        """Who chose the default: LLMSWITCH_PROFILE, the file, or the built-in default."""
        if self.environment.default:
            return PROFILE_VARIABLE
        return str(self.path) if self.document.get("default_profile") else "built-in"

    def get(self, name: str | None) -> Profile:
        """The profile of that name (the default when None); suggests close names when there is none.

        Its sources are merged key by key in order (built-in, file, LLMSWITCH_PROFILES, LLMSWITCH_PROFILE_*);
        a source naming another backend than the one so far replaces the profile instead.
        """
        chosen_by = None if name else self.default_origin
        name = name or self.default_name
        values: dict[str, Any] = {}
        origins: dict[str, str] = {}
        sources: list[str] = []
        for source, layer, layer_origins in self._sources(name):
            if "backend" in layer and values and layer["backend"] != values.get("backend"):
                values, origins, sources = {}, {}, []
            values.update(layer)
            origins.update(layer_origins)
            sources.append(source)
        if not sources:
            raise missing_profile(name, self.names(), chosen_by)
        if sources != ["built-in"] and origins.get("description") == "built-in":
            # The built-in's description describes the built-in ("a tiny demo model"): once another source
            # changes the profile, only a description of its own (if any) is true.
            del values["description"], origins["description"]
        return Profile(name, values, " + ".join(sources), origins)

    def _sources(self, name: str) -> Iterator[tuple[str, Mapping[str, Any], Mapping[str, str]]]:
        """Each source that defines the profile: its label, its keys, and where each key was set."""
        file_layers = (("built-in", builtin_profiles().get(name)), (str(self.path), self.user_profiles.get(name)),
                       (SNIPPET_VARIABLE, self.environment.snippet.get(name)))
        for source, layer in file_layers:
            if layer is not None:
                yield source, layer, dict.fromkeys(layer, source)
        variables = self.environment.variables.get(name)
        if variables:
            yield (f"{KEY_PREFIX}{variable_spelling(name)}_*",
                   {key: text for key, (text, _) in variables.items()},
                   {key: variable for key, (_, variable) in variables.items()})

    def all(self) -> list[Profile]:
        return [self.get(name) for name in self.names()]

    def lookup(self, name: str) -> tuple[Mapping[str, Any], str] | None:
        """A profile's keys and source, or None when there is no such profile (what route checks read)."""
        try:
            found = self.get(name)
        except ProfileNotFoundError:
            return None
        return found.settings, found.source

    def check_route(self, name: str, values: Mapping[str, Any]) -> None:
        """Raise ConfigError (exit 2) unless ``values``, written as profile ``name``, is a route `chat` could use:
        its own keys checked, every member a profile (else close names), no cycle through it (named)."""
        from llmswitch.router.routes import check_routes, read_route

        read_route(name, values)  # its own keys first, named without a file: it is not written yet
        as_written = ProfileStore(self.path, {**self.document, "profiles": {**self.user_profiles, name: dict(values)}},
                                  self.environment)

        def lookup(profile: str) -> tuple[Mapping[str, Any], str] | None:
            found = as_written.lookup(profile)
            return (found[0], "") if found is not None and profile == name else found  # not in the file yet

        check_routes(name, lookup, as_written.names())

    # ---- writing ----------------------------------------------------------------------------------

    def add(self, name: str, values: dict[str, Any], *, replace: bool = False) -> None:
        """Add a profile to the file, or with ``replace`` overwrite one; the rest of the file is kept as written.
        A route is checked first (:meth:`check_route`): a broken one is never written."""
        from llmswitch import profile_file

        refuse_unprintable_name(name)
        if not name or any(c in name for c in " .[]\"'"):
            raise ConfigError(f"'{name}' is not a usable profile name", remedy=PROFILE_NAME_CHARACTERS)
        exists = name in self.user_profiles
        if exists and not replace:
            raise ConfigError(
                f"profile '{name}' already exists in {self.path}",
                remedy="pass --replace to overwrite it, or choose another name",
            )
        if "route" in values:
            self.check_route(name, values)
        edit = profile_file.replace_profile if exists else profile_file.add_profile
        self._edit(lambda text: edit(text, name, values))

    def routes_naming(self, name: str) -> list[str]:
        """The routes (fallback, pool, split) that list ``name`` among their members, in name order."""
        routes = []
        for other in self.names():
            if other == name:
                continue
            try:
                values = self.get(other).settings
            except ConfigError:  # a profile that cannot be read is reported where it is used
                continue
            if "route" not in values:
                continue
            listed = values.get("members")
            weights = values.get("weights")
            members = [*(listed if isinstance(listed, list) else ()), *(weights if isinstance(weights, dict) else ())]
            if name in members:
                routes.append(other)
        return routes

    def remove(self, name: str, *, force: bool = False) -> list[str]:
        """Remove a profile from the file, with its comments; other comments stay. Refused (ConfigError) while a
        route names it as a member and nothing else defines it (a built-in, the environment), unless ``force``;
        returns the routes left naming a profile that is gone (only with ``force``)."""
        from llmswitch import profile_file

        if name not in self.user_profiles:
            if name in builtin_profiles():
                raise ConfigError(f"'{name}' is a built-in profile and cannot be removed")
            if name in self.environment.names():
                raise ConfigError(f"profile '{name}' comes from the environment, not from {self.path}",
                                  remedy=f"unset {SNIPPET_VARIABLE} or the {KEY_PREFIX}"
                                  f"{variable_spelling(name)}_* variables that define it")
            raise ProfileNotFoundError(name, self.names())
        stays = name in builtin_profiles() or name in self.environment.names()  # the name still resolves
        broken = [] if stays else self.routes_naming(name)
        if broken and not force:
            named = " and ".join(f"'{route}'" for route in broken)
            raise ConfigError(
                f"profile '{name}' is a member of the route{'s' if len(broken) > 1 else ''} {named}; "
                f"removing it would make {'them' if len(broken) > 1 else 'it'} fail",
                remedy=f"first take '{name}' out of {'that route' if len(broken) == 1 else 'those routes'} (edit "
                f"{self.path}, or `llmswitch profiles add ROUTE --route ... --replace` without it), or remove "
                "it anyway with --force",
            )
        self._edit(lambda text: profile_file.remove_profile(text, name))
        return broken

    def set_default(self, name: str) -> None:
        from llmswitch import profile_file

        self.get(name)  # raises with suggestions when unknown
        if name not in self.user_profiles and name not in builtin_profiles():
            raise ConfigError(f"profile '{name}' exists only in the environment, so the file cannot make it the "
                              "default", remedy=f"set {PROFILE_VARIABLE}={name} beside the variables that define it")
        self._edit(lambda text: profile_file.set_default_profile(text, name))

    def _edit(self, change: Callable[[str], str]) -> None:
        """Apply one edit to the file's text, write it atomically, and read the result back."""
        text = change(read_config_text(self.path))
        self.document = parse_toml(text, str(self.path))  # an edit that broke the file is never written
        write_config_text(self.path, text)

    def world_readable_key_warning(self) -> str | None:
        """A warning when the file holds a credential (a literal api_key, a secret header, a key inside a
        base_url) and others can read it."""
        if not any(secret_values(values) for values in self.user_profiles.values()):
            return None
        try:
            mode = self.path.stat().st_mode
        except OSError:
            return None
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            return (
                f"{self.path} holds a credential (an api_key, a secret header or a key inside a base_url) and "
                "other users can read it: "
                f"run `chmod 600 {self.path}`, or use api_key_env to name a variable instead"
            )
        return None


# ---- validation ---------------------------------------------------------------------------------------


def describe_type(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


_SECONDS = re.compile(r"^\s*\d+(?:\.\d+)?\s*$")


def duration_seconds(value: Any) -> float | None:
    """A duration setting in seconds: a number (``3600``, ``"3600"``, ``2.5``) or a duration (``"1h"``, see
    :func:`llmswitch.ledger.parse_duration`); None when it is neither."""
    from llmswitch.ledger import parse_duration

    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return float(value) if _SECONDS.match(value) else parse_duration(value)
    return None


def check_type(spec: OptionSpec, value: Any, where: str) -> Any:
    """Return ``value`` as the spec's type (ints are accepted for floats) or raise InvalidOptionError."""
    ok: bool
    if spec.type == "duration":
        seconds = duration_seconds(value)
        if seconds is None:
            raise InvalidOptionError(f"{where}: '{spec.name}' must be {TYPE_NAMES['duration']}, not {value!r}",
                                     remedy=f"{spec.name}: {spec.description}")
        if seconds <= 0:
            raise InvalidOptionError(f"{where}: '{spec.name}' must be longer than 0, not {value!r}",
                                     remedy=f"{spec.name}: {spec.description}")
        return value
    if spec.type in ("str", "path"):
        ok = isinstance(value, str)
    elif spec.type == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif spec.type == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok:
            try:
                value = float(value)
            except OverflowError:  # an integer past any float: refused as not finite below
                value = math.inf
    elif spec.type == "bool":
        ok = isinstance(value, bool)
    elif spec.type == "list":
        if isinstance(value, str):
            value = [value]
        ok = isinstance(value, list) and all(isinstance(item, str) for item in value)
    elif spec.type == "table":
        ok = isinstance(value, dict)
        odd = non_finite_entry(value) if ok else None
        if odd is not None:
            raise InvalidOptionError(f"{where}: '{spec.name}' holds {odd}, which no server can read in JSON",
                                     remedy="write an ordinary number there, or remove that entry")
    else:  # pragma: no cover - a plugin declared a type we do not know
        ok = True
    if not ok:
        raise InvalidOptionError(
            f"{where}: '{spec.name}' must be {TYPE_NAMES.get(spec.type, spec.type)}, not {describe_type(value)}",
            remedy=f"{spec.name}: {spec.description}" if spec.description else None,
        )
    if spec.choices and value not in spec.choices:
        raise InvalidOptionError(
            f"{where}: '{spec.name}' must be one of {', '.join(spec.choices)}, not {value!r}"
        )
    return check_range(spec, value, where)


def non_finite_entry(value: Any, path: str = "") -> str | None:
    """``x.y = inf`` for the first infinite or nan number nested in a table or list, else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{path} = {value!r}"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = non_finite_entry(item, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


def check_range(spec: OptionSpec, value: Any, where: str) -> Any:
    """``value`` when it is within the spec's bounds, else InvalidOptionError naming the bound and what leaving
    the option out means. ``where`` is empty on the command line (the flag names the option)."""
    if isinstance(value, float) and not math.isfinite(value):
        # inf and nan pass every comparison below one way or the other, and no server takes them in JSON
        raise InvalidOptionError(
            (f"{where}: " if where else "") + f"'{spec.name}' must be a finite number, not {value!r}",
            remedy=(f"{spec.name}: {spec.description}; " if spec.description else "")
            + f"write an ordinary number, or remove it for {spec.absent}",
        )
    if spec.minimum is not None and value < spec.minimum:
        bound = f"at least {spec.minimum:g}"
    elif spec.more_than is not None and value <= spec.more_than:
        bound = f"more than {spec.more_than:g}"
    else:
        return value
    raise InvalidOptionError(
        (f"{where}: " if where else "") + f"'{spec.name}' must be {bound}, not {value!r}",
        remedy=f"{spec.name}: {spec.description}; write a number {bound}, or remove it for {spec.absent}",
    )


def parse_cli_value(spec: OptionSpec, text: str, where: str = "command line") -> Any:
    """Turn ``--set key=VALUE`` / ``-o key VALUE`` / an environment variable's text into the spec's type."""
    import json

    try:
        if spec.type == "int":
            return check_range(spec, int(text), "" if where == "command line" else where)
        if spec.type == "float":
            return check_range(spec, float(text), "" if where == "command line" else where)
        if spec.type == "bool":
            lowered = text.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if spec.type == "list":
            if text.startswith("["):
                return check_type(spec, json.loads(text), where)
            return [text]
        if spec.type == "table":
            return check_type(spec, json.loads(text), where)
        if spec.type == "duration" and _SECONDS.match(text):  # seconds are kept as the number they are
            return float(text) if "." in text else int(text)
    except (ValueError, json.JSONDecodeError):
        raise InvalidOptionError(
            ("" if where == "command line" else f"{where}: ")
            + f"'{spec.name}' must be {TYPE_NAMES.get(spec.type, spec.type)}, not {text!r}",
            remedy='tables are written as JSON, e.g. \'{"X-Org": "me"}\'' if spec.type == "table" else None,
        ) from None
    return text


def option_specs(info: BackendInfo | None) -> dict[str, OptionSpec]:
    """Every key a profile of this backend may set."""
    specs: dict[str, OptionSpec] = {**PROFILE_KEYS, **GENERATION_KEYS, **ROUTER_KEYS}
    if info is not None:
        for spec in info.options:
            specs[spec.name] = spec
        for spec in info.generation_extras:
            specs[spec.name] = spec
        if info.presets:
            specs["preset"] = OptionSpec(
                "preset", "str", description="a named server preset", choices=tuple(sorted(info.presets))
            )
    return specs


def validate(profile: Profile, info: BackendInfo) -> dict[str, Any]:
    """Check every key of a profile against the backend's declared options; return typed values.

    Presets are expanded here: a preset's values sit under the profile's own.
    """
    specs = option_specs(info)
    values, origins = with_preset(profile, info)
    checked: dict[str, Any] = {}
    for key, value in values.items():
        origin = origins.get(key, profile.source)
        where = f"profile '{profile.name}' ({origin})"
        spec = specs.get(key)
        if spec is None:
            suggestions = close_matches(key, specs)
            hint = f"did you mean '{suggestions[0]}'? " if suggestions else ""
            raise InvalidOptionError(
                f"{where}: unknown option '{key}' for backend '{info.name}'",
                remedy=hint + "valid options: " + ", ".join(sorted(specs)),
            )
        if is_variable(origin) and isinstance(value, str):
            value = parse_cli_value(spec, value, where)  # a variable holds text: read it as --set would
        checked[key] = check_type(spec, value, where)
    variable = checked.get("api_key_env")
    if isinstance(variable, str) and looks_like_a_key(variable):
        # The key itself where its variable's name belongs: say so, showing the key masked only.
        where = f"profile '{profile.name}' ({origins.get('api_key_env', profile.source)})"
        raise InvalidOptionError(
            f"{where}: api_key_env holds what looks like an API key ({mask(variable.strip())}), not the name of "
            "an environment variable",
            remedy='write api_key_env = "MY_KEY_VARIABLE" and export MY_KEY_VARIABLE=<the key>; or, to keep the '
            "key in the file, use api_key instead (and make the file private: chmod 600)",
        )
    return checked


def require_backend(profile: Profile, installed: Iterable[str]) -> str:
    """The backend a profile that is not a route runs on. A profile that names none (a table with only
    ``model``, or ``type = "fallback"`` written for ``route``) is a ConfigError naming the profile, what is
    missing and how to write it, with the misspelt key when there is one; ``installed``: the backends to offer."""
    if profile.backend:
        return profile.backend
    offered = sorted(installed)
    where = f"profile '{profile.name}' ({profile.source})"
    misspelt = _misspelt_shape(profile, offered)
    raise InvalidOptionError(
        f"{where} names no backend and is not a route",
        remedy=(f"{misspelt} Otherwise, a" if misspelt else "a") + f'dd backend = "NAME" to [profiles.{profile.name}] '
        f'(installed: {", ".join(offered) or "none"}), or make it a route: route = "fallback" with members = ["a", "b"]',
    )


def _misspelt_shape(profile: Profile, installed: list[str]) -> str:
    """``'type' is not a profile key: did you mean route = "fallback"?`` for a key written where ``backend``
    or ``route`` belongs (a near spelling, or a value that is a route kind or an installed backend)."""
    import json

    from llmswitch.router.routes import ROUTE_KINDS

    for key, value in profile.settings.items():
        if key in PROFILE_KEYS or key in GENERATION_KEYS or key in ROUTER_KEYS:
            continue
        unknown = f"'{key}' is not a profile key: did you mean"
        if isinstance(value, str) and value in ROUTE_KINDS:
            return f"{unknown} route = {json.dumps(value)}?"
        if isinstance(value, str) and value in installed:
            return f"{unknown} backend = {json.dumps(value)}?"
        near = close_matches(key, ("backend", "route"))
        if near:
            return f"{unknown} '{near[0]}'?"
    return ""


def missing_profile(name: str, known: list[str], chosen_by: str | None) -> ProfileNotFoundError:
    """No profile of that name: close names, or, for a built-in profile whose plugin is not installed, the
    extra that brings it (never a close name then: 'local' is not a typo of anything installed)."""
    from llmswitch.extras import extra_for_profile

    extra = extra_for_profile(name)
    error = ProfileNotFoundError(name, [] if extra else known, chosen_by=chosen_by)
    if extra is not None:
        error.message += f": it is built in once its backend is installed ({', '.join(extra.backends)})"
        error.args = (error.message,)
        error.remedy = f"{extra.command}, or define '{name}' yourself with `llmswitch profiles add {name} ...`"
        error.suggestions = []
    return error


def with_preset(profile: Profile, info: BackendInfo) -> tuple[dict[str, Any], dict[str, str]]:
    """The profile's keys with its preset's values under them, and where each key was set."""
    values = dict(profile.settings)
    origins = {key: profile.origin(key) for key in values}
    preset_name = values.get("preset")
    if preset_name is None:
        return values, origins
    where = f"profile '{profile.name}' ({profile.origin('preset')})"
    if not info.presets:
        raise InvalidOptionError(f"{where}: backend '{info.name}' has no presets")
    check_type(option_specs(info)["preset"], preset_name, where)
    preset = info.presets[preset_name]
    return {**preset, **values}, {**dict.fromkeys(preset, f"preset {preset_name}"), **origins}
