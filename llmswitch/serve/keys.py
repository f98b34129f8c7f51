"""Gateway keys: who may call ``llmswitch serve``, and where it may listen.

Gateway keys are the gateway's own, never an upstream provider's (those stay in the profiles and never reach a
client). They come from the config file, stored hashed::

    [serve]
    keys = ["sha256:9f86d0..."]     # `llmswitch serve --new-key` adds one and prints the key once

and from ``LLMSWITCH_SERVE_KEYS`` (keys separated by commas, in clear or ``sha256:`` hashed), for containers
and CI. With any key configured every request needs one (``Authorization: Bearer KEY`` as OpenAI's clients
send, or ``x-api-key: KEY`` as Anthropic's do); without keys the gateway answers loopback only.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import field
from typing import Any

from llmswitch.errors import ConfigError
from llmswitch.record import record
from llmswitch.secrets import remember_secret

KEYS_VARIABLE = "LLMSWITCH_SERVE_KEYS"
HASH_PREFIX = "sha256:"
KEY_PREFIX = "lsw-"


def hash_key(key: str) -> str:
    """The stored form of a gateway key. A plain SHA-256 suffices: the keys are 32 random bytes, not passwords."""
    return HASH_PREFIX + hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


# What a key may carry besides its hash: the router's own rate-limit keys and the budget keys of a profile,
# enforced by the same code (llmswitch.router.limits, llmswitch.accounting).
LIMIT_KEYS = ("rpm", "tpm", "max_concurrent")
BUDGET_KEYS = ("budget_usd_per_day", "budget_usd_per_month")
KEY_TABLE_KEYS = ("name", "hash", *LIMIT_KEYS, *BUDGET_KEYS)
TABLE_EXAMPLE = '{ name = "alice", hash = "sha256:...", rpm = 60, budget_usd_per_day = 5 }'


@record(slots=False)
class GatewayKey:
    """One key's name (its calls' ``gateway_key`` in the ledger) and limits: ``rpm``, ``tpm``,
    ``max_concurrent``, ``budget_usd_per_day``, ``budget_usd_per_month`` (absent: no limit)."""

    name: str
    hash: str
    settings: Mapping[str, Any] = field(default_factory=dict)


@record(slots=False)
class GatewayKeys:
    """The hashes of the keys that may call the gateway; empty means no key is asked for. ``named`` holds the
    keys written as tables (a name, and limits), by hash."""

    hashes: frozenset[str] = frozenset()
    named: Mapping[str, GatewayKey] = field(default_factory=dict)

    @classmethod
    def load(cls, document: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> GatewayKeys:
        """The keys of the config file's ``[serve]`` table and of ``LLMSWITCH_SERVE_KEYS``."""
        environ = os.environ if environ is None else environ
        table = document.get("serve", {})
        if not isinstance(table, dict):
            raise ConfigError("[serve] in the config file must be a table",
                              remedy='write it as [serve] followed by keys = ["sha256:..."]')
        stored = table.get("keys", [])
        if not isinstance(stored, list) or not all(isinstance(key, (str, dict)) for key in stored):
            raise ConfigError("[serve] keys must be a list of hashed keys, each a string or a table with a name "
                              "and limits",
                              remedy=f"add keys with `llmswitch serve --new-key` (it stores their hashes); a key "
                              f"with limits is written {TABLE_EXAMPLE}")
        hashes: list[str] = []
        named: dict[str, GatewayKey] = {}
        for position, entry in enumerate(stored):
            if isinstance(entry, dict):
                key = _key_table(entry, position)
                if key.name in {known.name for known in named.values()}:
                    raise ConfigError(f"[serve] keys names '{key.name}' twice",
                                      remedy="give each key its own name: usage and budgets are counted by it")
                named[key.hash] = key
                entry = key.hash
            hashes.append(_stored_hash(entry, f"[serve] keys[{position}]"))
        from_environment = [key.strip() for key in environ.get(KEYS_VARIABLE, "").split(",") if key.strip()]
        return cls(frozenset([*hashes, *(_as_hash(key, f"{KEYS_VARIABLE} entry {number}")
                                         for number, key in enumerate(from_environment, 1))]), named)

    def __bool__(self) -> bool:
        return bool(self.hashes)

    def accepts(self, presented: str | None) -> bool:
        return self.identify(presented) is not None

    def identify(self, presented: str | None) -> str | None:
        """The stored hash the presented key matches, or None when it matches none."""
        if not presented:
            return None
        digest = hash_key(presented)
        # compare_digest against each: how long the check takes says nothing about which hash came close
        matches = [known for known in self.hashes if hmac.compare_digest(digest, known)]
        if not matches:
            return None
        # Held in clear only now: masked from here on wherever it shows (an upstream's error quoting it, in the
        # log). Only accepted keys are kept, so a client trying keys cannot grow the set.
        remember_secret(presented)
        return matches[0]


def _stored_hash(key: str, where: str) -> str:
    """A hash from the file: never a key in clear, and a whole hash (see :func:`_checked_hash`)."""
    if not key.lower().startswith(HASH_PREFIX):
        raise ConfigError("[serve] keys holds a key in clear; the file keeps only hashes",
                          remedy="remove it and add one with `llmswitch serve --new-key`, or put keys in "
                          f"clear in {KEYS_VARIABLE} instead")
    return _checked_hash(key, where)


def _checked_hash(text: str, where: str) -> str:
    """``sha256:`` and 64 hex digits, in lower case (what :func:`hash_key` makes); anything else could never
    match a key, so a gateway that demanded it would refuse every client without saying why."""
    digest = text[len(HASH_PREFIX):]
    if len(digest) != 64 or any(character not in "0123456789abcdefABCDEF" for character in digest):
        raise ConfigError(f"{where}: {text!r} is not a whole key hash: sha256: must be followed by 64 hex digits "
                          f"(this has {len(digest)} characters)",
                          remedy="copy the whole hash, or remove that entry and create a key with "
                          "`llmswitch serve --new-key` (it stores the whole hash)")
    return HASH_PREFIX + digest.lower()


def _key_table(entry: Mapping[str, Any], position: int) -> GatewayKey:
    """A key written as a table, its values checked as a profile's are (the same specs)."""
    from llmswitch.errors import close_matches
    from llmswitch.profiles import PROFILE_KEYS, ROUTER_KEYS, check_type, refuse_unprintable_name
    from llmswitch.types import OptionSpec

    where = f"[serve] keys[{position}]"
    unknown = [name for name in entry if name not in KEY_TABLE_KEYS]
    if unknown:
        suggestions = close_matches(unknown[0], list(KEY_TABLE_KEYS))
        hint = f"did you mean '{suggestions[0]}'? " if suggestions else ""
        raise ConfigError(f"{where}: unknown key '{unknown[0]}'",
                          remedy=hint + "a key's table takes " + ", ".join(KEY_TABLE_KEYS))
    for required in ("name", "hash"):
        if not isinstance(entry.get(required), str) or not entry[required].strip():
            raise ConfigError(f"{where}: a key written as a table needs a '{required}' (a string)",
                              remedy=f"write it as {TABLE_EXAMPLE}")
    refuse_unprintable_name(entry["name"], f"{where}: ", what="key name")  # it is shown by `usage --by key`
    hashed = _stored_hash(entry["hash"].strip(), f"{where} ('{entry['name'].strip()}')")
    specs: dict[str, OptionSpec] = {**PROFILE_KEYS, **ROUTER_KEYS}
    settings: dict[str, Any] = {}
    for name in (*LIMIT_KEYS, *BUDGET_KEYS):
        if name in entry:
            value = check_type(specs[name], entry[name], where)
            if value <= 0:
                raise ConfigError(f"{where}: '{name}' must be above 0, not {value}",
                                  remedy=f"remove '{name}' for no limit")
            settings[name] = value
    return GatewayKey(entry["name"].strip(), hashed, settings)


def _as_hash(key: str, where: str) -> str:
    """A key from the environment: a hash as it is (checked), a key in clear hashed."""
    return _checked_hash(key, where) if key.lower().startswith(HASH_PREFIX) else hash_key(key)


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a client sent: OpenAI's ``Authorization: Bearer``, else Anthropic's ``x-api-key``."""
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return headers.get("x-api-key") or None


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and localhost: the addresses only this machine reaches."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, keys: GatewayKeys) -> None:
    """Refuse to listen beyond this machine without gateway keys: the profiles' upstream keys would be
    anyone's to spend."""
    if keys or is_loopback(host):
        return
    raise ConfigError(
        f"refusing to listen on {host} without gateway keys: anyone who reaches it could spend the profiles' "
        "upstream keys",
        remedy=f"create a key with `llmswitch serve --new-key` (or set {KEYS_VARIABLE}), or listen on 127.0.0.1",
    )


def store_new_key(config: str | None, name: str | None = None, limits: Mapping[str, Any] | None = None) -> str:
    """Create a key, add its hash to ``[serve] keys`` in the config file, and return the key (shown once).

    With a ``name`` the key is stored as a table (``{ name, hash, ...limits }``): its calls are recorded under
    that name, and ``limits`` (any of ``LIMIT_KEYS`` and ``BUDGET_KEYS``) apply to it. Limits need a name."""
    import tomlkit

    from llmswitch.config import config_path, parse_toml, read_config_text, write_config_text

    limits = {setting: value for setting, value in (limits or {}).items() if value is not None}
    unknown = sorted(set(limits) - {*LIMIT_KEYS, *BUDGET_KEYS})
    if unknown:
        raise ConfigError(f"a gateway key has no limit '{unknown[0]}'",
                          remedy="its limits are " + ", ".join((*LIMIT_KEYS, *BUDGET_KEYS)))
    if name is not None:
        name = name.strip()
        if not name:
            raise ConfigError("a gateway key's name cannot be empty", remedy="give it a name such as alice or ci")
    if limits and name is None:
        raise ConfigError("a gateway key with limits needs a name: its requests, tokens and spend are counted by "
                          "it", remedy="give the key a name (such as alice or ci) along with its limits")
    path = config_path(config)
    text = read_config_text(path)
    document = tomlkit.parse(text)
    table = document.get("serve")
    if table is None:
        table = tomlkit.table()
        document["serve"] = table
    stored = table.get("keys")
    if stored is None:
        stored = tomlkit.array()
        table["keys"] = stored
    if name is not None and name in _stored_names(stored):
        raise ConfigError(f"{path} already has a gateway key named '{name}'",
                          remedy=f"choose another name, or remove the key named '{name}' from [serve] keys first "
                          "to replace it")
    key = new_key()
    if name is None:
        stored.append(hash_key(key))
    else:
        entry = tomlkit.inline_table()
        entry.update({"name": name, "hash": hash_key(key),
                      **{setting: limits[setting] for setting in (*LIMIT_KEYS, *BUDGET_KEYS) if setting in limits}})
        stored.append(entry)
    updated = document.as_string()
    GatewayKeys.load(parse_toml(updated, str(path)), {})  # never write a file the gateway would refuse
    write_config_text(path, updated)
    return key


def _stored_names(stored: Any) -> set[str]:
    return {str(entry.get("name", "")).strip() for entry in stored if isinstance(entry, dict)}


def describe_limits(limits: Mapping[str, Any]) -> str:
    """``rpm 60, budget_usd_per_day 5`` (the names of ``[serve] keys``), or ``no limits``."""
    shown = [f"{setting} {limits[setting]:g}" for setting in (*LIMIT_KEYS, *BUDGET_KEYS)
             if limits.get(setting) is not None]
    return ", ".join(shown) or "no limits"
