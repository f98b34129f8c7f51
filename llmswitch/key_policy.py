"""Which server a credential may go to: the rule that keeps a key from reaching a host the user did not choose.

Keys and base URLs each come from one of four places: the command line (``--api-key``, ``-o``/``--set``), the
profile (its table in the config file, a preset it names included), the environment, or a ``.env`` file in
the current directory. A credential is sent to the resolved base URL only when the user wrote that URL next
to it:

1. the base URL is the backend's own (no base URL set anywhere, or one equal to the default): any key;
2. the base URL and the key come from the same place: both in the profile (or on the command line), both
   exported in the environment, both in the same ``.env``;
3. the profile (or command line) sets the base URL and names the key's variable with ``api_key_env``, or
   the key was passed with ``--api-key`` for that profile: the user chose the two together.

Anything else is a *custom* base URL for that key, which is withheld with a note that says why (``doctor``
and ``profiles show`` print it). A ``.env`` that sets ``OPENAI_BASE_URL`` therefore never receives the
``OPENAI_API_KEY`` exported in the shell, and a base URL exported in the shell never receives a key that sits
in the profile. When the base URL comes from ``.env``, the key's variable is read from that ``.env`` first,
so a project's own ``.env`` (URL and key together) keeps working. Secret headers of the profile
(``Authorization``, ``*-key``, ``*-token``) follow the same rule as a key written in the profile.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PROFILE = "profile"
COMMAND_LINE = "flag"


def place_of(source: str | None) -> str:
    """The place a resolved value came from: ``flag``, ``profile``, ``environment``, ``.env`` or ``default``."""
    if source is None:
        return "default"
    if source.startswith("env:"):
        return "environment"
    if source.startswith(".env:"):
        return ".env"
    return source


def describe_source(source: str | None) -> str:
    """``env:OPENAI_BASE_URL`` in words: ``$OPENAI_BASE_URL in the environment``."""
    if source is None:
        return "the backend's default"
    if source.startswith("env:"):
        return f"${source[4:]} in the environment"
    if source.startswith(".env:"):
        return f"{source[5:]} in ./.env"
    if source == COMMAND_LINE:
        return "--api-key"
    return f"the {source}"


def key_may_go_to(key_source: str, url_source: str | None, *, names_variable: bool) -> bool:
    """True when a key from ``key_source`` may go to a base URL from ``url_source`` (None: the default URL)."""
    url_place, key_place = place_of(url_source), place_of(key_source)
    if url_place == "default":
        return True
    if url_place == PROFILE:
        return key_place in (PROFILE, COMMAND_LINE) or names_variable
    return url_place == key_place


def key_withheld_reason(
    key_source: str, url: str, url_source: str | None, *, names_variable: bool, variable: str | None
) -> str | None:
    """None when the key may be sent to ``url``; otherwise a sentence saying why not and how to send it."""
    if key_may_go_to(key_source, url_source, names_variable=names_variable):
        return None
    from llmswitch.secrets import redact_url

    what = f"the key from {describe_source(key_source)}" if key_source != PROFILE else "the profile's api_key"
    remedy = (f'to send it there, set base_url and api_key_env = "{variable}" in the profile'
              if variable else "to send it there, set base_url and the key in the profile")
    return (f"{what} is not sent to the custom base_url {redact_url(url)} (from {describe_source(url_source)}): "
            f"a key goes only to a base URL set in the same place; {remedy}")


def withhold_secret_headers(
    headers: Any, url: str | None, url_source: str | None
) -> tuple[Any, list[str]]:
    """The profile's ``headers`` without its credentials when the base URL is not the profile's own, and
    the names of the headers withheld."""
    from llmswitch.secrets import is_secret_header

    if not isinstance(headers, Mapping) or key_may_go_to(PROFILE, url_source, names_variable=False):
        return headers, []
    withheld = [str(name) for name in headers if is_secret_header(str(name))]
    if not withheld:
        return headers, []
    return {name: value for name, value in headers.items() if str(name) not in withheld}, withheld


def headers_withheld_note(names: list[str], url: str, url_source: str | None) -> str:
    from llmswitch.secrets import redact_url

    listed = ", ".join(names)
    return (f"the profile's {listed} header{'s are' if len(names) > 1 else ' is'} not sent to {redact_url(url)} "
            f"(from {describe_source(url_source)}): credentials go only to a base URL set in the same place; "
            "set base_url in the profile to send them there")
