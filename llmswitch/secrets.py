"""API keys and other credentials: where they come from, how they are recognised, and how they are shown.

Resolution order, the same for every backend: explicit (``--api-key`` or the profile's ``api_key``) >
the environment variable (the profile's ``api_key_env``, else the backend's) > a ``.env`` file in the
current directory. Base URLs follow the same order. Which base URL a key may then go to is decided in
:mod:`llmswitch.key_policy`.

Credentials are not only ``api_key``: a ``headers`` table may carry ``Authorization``, ``X-Api-Key`` or
``X-Auth-Token``, a base URL may carry ``user:KEY@`` or ``?key=...``, and ``api_key_env`` is sometimes set
to the key itself. Every credential the process sees (the profiles it loads, the keys it resolves) is
remembered, so :func:`redact` scrubs it from any text before it is shown, logged or stored, even text a
server echoed back; credentials inside URLs are scrubbed by their shape as well.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from llmswitch.record import record

_KNOWN_SECRETS: set[str] = set()

# Header names whose values are credentials: Authorization, Cookie, and names ending in key, token or secret
# (X-Api-Key, api-key, X-Auth-Token, X-Goog-Api-Key, ...).
_SECRET_HEADER = re.compile(
    r"^(?:proxy-)?authorization$|^(?:set-)?cookie$|^apikey$|(?:^|[-_])(?:key|token|secret|password)$", re.I
)
# Query parameters whose values are credentials (?key=, ?api_key=, ?access_token=, ?sig=, ...).
_SECRET_PARAMETER = re.compile(r"key|token|secret|passw|auth|sig|credential", re.I)
# In free text: the user-info of a URL, and secret-named query parameters.
_URL_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://)([^/?#@\s\"'<>]+)@", re.I)
_URL_PARAMETER = re.compile(
    r"([?&;][a-z0-9_.-]*(?:key|token|secret|passw|auth|sig|credential)[a-z0-9_.-]*=)([^&#\s\"'<>]+)", re.I
)
# A credential scheme word before the credential itself (``Bearer sk-...``).
_AUTH_SCHEME = re.compile(r"^(?:bearer|basic|token|apikey|key)\s+", re.I)
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEY_PREFIXES = ("sk-", "sk_", "gsk_", "xai-", "hf_", "AIza", "pk-", "ghp_", "github_pat_", "glpat-", "r8_", "nvapi-")


def mask(value: str | None) -> str:
    """``sk-proj-abcdef...wxyz`` becomes ``sk-…wxyz``; short values are hidden entirely."""
    if not value:
        return "(empty)"
    if len(value) < 12:
        return "…" * 3
    prefix = value[:3] if value[:3].endswith("-") else value[:2]
    return f"{prefix}…{value[-4:]}"


def redact(text: str) -> str:
    """The text with every credential this process knows masked, and credentials inside URLs hidden.

    The one function every shown, logged or stored text passes through (messages, remedies, server bodies).
    """
    # Longest first, so a key inside a longer credential (``user:KEY``) cannot leave a piece unmasked.
    for secret in sorted(_KNOWN_SECRETS, key=len, reverse=True):  # a copy: doctor's threads add while we read
        if secret in text:
            text = text.replace(secret, mask(secret))
    if "://" in text:
        text = _URL_USERINFO.sub(r"\1…@", text)
    if "=" in text:
        text = _URL_PARAMETER.sub(lambda match: match.group(1) + mask(match.group(2)), text)
    return text


def excerpt(data: str | bytes, limit: int) -> str:
    """The start of a server's text as it may be shown: decoded, credentials masked, then cut to ``limit``
    characters. Masking first matters: cutting first could leave the first half of a key unmasked."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = redact(text)
    return text if len(text) <= limit else text[:limit] + "…"


def forget_secrets() -> None:
    """Forget every key remembered so far (tests start each case with none known)."""
    _KNOWN_SECRETS.clear()


def remember_secret(value: str) -> None:
    """Mask ``value`` wherever :func:`redact` meets it from now on (values under 6 characters are not
    remembered: replacing them would mangle ordinary text; URLs are scrubbed by shape instead)."""
    if len(value) >= 6:
        _KNOWN_SECRETS.add(value)


def is_secret_header(name: str) -> bool:
    """True for headers that carry credentials: Authorization, Cookie, ``*-key``, ``*-token``, ``*-secret``."""
    return bool(_SECRET_HEADER.search(name.strip()))


def header_credential(value: str) -> str:
    """The credential in a header value: ``Bearer sk-abc`` gives ``sk-abc``."""
    return _AUTH_SCHEME.sub("", value.strip())


def mask_header(value: str) -> str:
    """A secret header's value as shown: ``Bearer sk-…wxyz`` (the scheme word kept, the credential masked)."""
    credential = header_credential(value)
    scheme = value.strip()[: len(value.strip()) - len(credential)]
    return f"{scheme}{mask(credential)}"


def url_credentials(url: str) -> list[str]:
    """The credentials inside a URL: its user-info (``user:KEY@``) and secret-named query values."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return []
    found = []
    if "@" in parts.netloc:
        import base64
        from urllib.parse import unquote

        userinfo = parts.netloc.rpartition("@")[0]
        found.append(userinfo)
        found.extend(piece for piece in userinfo.split(":") if piece)
        # HTTP clients send the user-info as ``Authorization: Basic <base64>``, which a server may echo back.
        found.append(base64.b64encode(unquote(userinfo).encode()).decode())
    found.extend(value for name, value in parse_qsl(parts.query, keep_blank_values=False)
                 if _SECRET_PARAMETER.search(name))
    return found


def redact_url(url: str) -> str:
    """The URL as it may be shown: user-info and secret query values masked."""
    return redact(url)


def looks_like_a_key(value: str) -> bool:
    """True when ``api_key_env`` holds what looks like a key rather than a variable name.

    A variable name is a shell identifier, usually upper case (``OPENAI_API_KEY``); keys have a provider
    prefix (``sk-``, ``gsk_``, ``AIza``...), or contain characters no name has, or a long run of mixed letters
    and digits.
    """
    value = value.strip()
    if not value:
        return False
    if value.startswith(_KEY_PREFIXES) or not _VARIABLE_NAME.fullmatch(value):
        return True
    runs = re.findall(r"[A-Za-z0-9]{16,}", value)
    return any(re.search(r"[0-9]", run) and re.search(r"[a-z]", run) for run in runs)


def secret_values(values: Mapping[str, Any], secret_options: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """Every credential in a profile's settings: ``api_key`` and other secret options, secret headers,
    credentials inside ``base_url``, and ``api_key_env`` when it holds a key instead of a name."""
    found: list[str] = []
    for name, value in values.items():
        if not isinstance(value, str):
            continue
        if name == "api_key" or name in secret_options:
            found.append(value)
        elif name == "api_key_env" and looks_like_a_key(value):
            found.append(value.strip())
        elif "://" in value:
            found.extend(url_credentials(value))
    headers = values.get("headers")
    if isinstance(headers, Mapping):
        for header, value in headers.items():
            if isinstance(value, (str, int, float)) and is_secret_header(str(header)):
                found.extend({str(value).strip(), header_credential(str(value))})
    return found


def remember_profile_secrets(values: Mapping[str, Any], secret_options: frozenset[str] | set[str] = frozenset()) -> None:
    """Remember every credential in a profile's settings, so no output can show it in full."""
    for value in secret_values(values, secret_options):
        remember_secret(value)


def shown_setting(name: str, value: Any, secret_options: frozenset[str] | set[str] = frozenset()) -> Any:
    """A profile setting as ``profiles show`` (or any listing) prints it: credentials masked."""
    if isinstance(value, str):
        if name == "api_key" or name in secret_options or (name == "api_key_env" and looks_like_a_key(value)):
            return mask(value)
        return redact(value)
    if name == "headers" and isinstance(value, Mapping):
        return {header: mask_header(str(item)) if is_secret_header(str(header)) else shown_setting(str(header), item)
                for header, item in value.items()}
    if isinstance(value, list):
        return [redact(item) if isinstance(item, str) else item for item in value]
    return value


@record
class Secret:
    """A resolved key. ``str()`` and ``repr()`` are masked so it cannot leak through formatting."""

    value: str
    source: str  # "flag", "profile", "env:NAME", ".env:NAME"

    def __post_init__(self) -> None:
        remember_secret(self.value)

    def __str__(self) -> str:
        return mask(self.value)

    def __repr__(self) -> str:
        return f"Secret({mask(self.value)!r}, source={self.source!r})"

    @property
    def masked(self) -> str:
        return mask(self.value)


def read_dotenv(path: Path | None = None) -> dict[str, str]:
    """Parse a ``.env`` file (``KEY=VALUE``, optional ``export``, quotes, ``#`` comments). Missing: empty."""
    path = path or Path.cwd() / ".env"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key.strip()] = value
    return values


@record
class Resolved:
    value: str
    source: str


def resolve_setting(
    explicit: str | None,
    explicit_source: str,
    variable: str | None,
    environ: Mapping[str, str] | None = None,
    dotenv: Mapping[str, str] | None = None,
) -> Resolved | None:
    """The first of: an explicit value, the environment variable, the variable in ``.env``."""
    if explicit:
        return Resolved(explicit, explicit_source)
    if not variable:
        return None
    environ = os.environ if environ is None else environ
    if environ.get(variable):
        return Resolved(environ[variable], f"env:{variable}")
    dotenv = read_dotenv() if dotenv is None else dotenv
    if dotenv.get(variable):
        return Resolved(dotenv[variable], f".env:{variable}")
    return None
