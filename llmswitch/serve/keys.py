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
from dataclasses import dataclass
from typing import Any

from llmswitch.errors import ConfigError

KEYS_VARIABLE = "LLMSWITCH_SERVE_KEYS"
HASH_PREFIX = "sha256:"
KEY_PREFIX = "lsw-"


def hash_key(key: str) -> str:
    """The stored form of a gateway key. A plain SHA-256 suffices: the keys are 32 random bytes, not passwords."""
    return HASH_PREFIX + hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class GatewayKeys:
    """The hashes of the keys that may call the gateway; empty means no key is asked for."""

    hashes: frozenset[str] = frozenset()

    @classmethod
    def load(cls, document: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> GatewayKeys:
        """The keys of the config file's ``[serve]`` table and of ``LLMSWITCH_SERVE_KEYS``."""
        environ = os.environ if environ is None else environ
        table = document.get("serve", {})
        if not isinstance(table, dict):
            raise ConfigError("[serve] in the config file must be a table",
                              remedy='write it as [serve] followed by keys = ["sha256:..."]')
        stored = table.get("keys", [])
        if not isinstance(stored, list) or not all(isinstance(key, str) for key in stored):
            raise ConfigError("[serve] keys must be a list of strings",
                              remedy="add keys with `llmswitch serve --new-key` (it stores their hashes)")
        for key in stored:
            if not key.startswith(HASH_PREFIX):
                raise ConfigError("[serve] keys holds a key in clear; the file keeps only hashes",
                                  remedy="remove it and add one with `llmswitch serve --new-key`, or put keys in "
                                  f"clear in {KEYS_VARIABLE} instead")
        from_environment = [key.strip() for key in environ.get(KEYS_VARIABLE, "").split(",") if key.strip()]
        return cls(frozenset([*stored, *(_as_hash(key) for key in from_environment)]))

    def __bool__(self) -> bool:
        return bool(self.hashes)

    def accepts(self, presented: str | None) -> bool:
        if not presented:
            return False
        digest = hash_key(presented)
        # compare_digest against each: how long the check takes says nothing about which hash came close
        return any([hmac.compare_digest(digest, known) for known in self.hashes])


def _as_hash(key: str) -> str:
    return key if key.startswith(HASH_PREFIX) else hash_key(key)


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


def store_new_key(config: str | None) -> str:
    """Create a key, add its hash to ``[serve] keys`` in the config file, and return the key (shown once)."""
    import tomlkit

    from llmswitch.config import config_path, parse_toml, read_config_text, write_config_text

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
    key = new_key()
    stored.append(hash_key(key))
    updated = document.as_string()
    GatewayKeys.load(parse_toml(updated, str(path)), {})  # never write a file the gateway would refuse
    write_config_text(path, updated)
    return key

