"""Where a backend's server is and how every request to it is made: the data one target's calls share."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from llmswitch.errors import InvalidOptionError, LLMSwitchError
from llmswitch.types import Target

CONNECT_TIMEOUT_S = 10.0  # a server that is up accepts a connection at once; the read timeout is separate

# RFC 9110 field names; a value may not hold CR, LF or NUL (header injection).
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_BAD_VALUE = re.compile(r"[\r\n\x00]")


class ErrorAnswer(NamedTuple):
    """A non-2xx answer, read whole: what a plugin's ``status_error`` turns into an llmswitch error."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    path: str


def _no_status_mapping(answer: ErrorAnswer) -> LLMSwitchError:
    from llmswitch.errors import BadResponseError

    return BadResponseError(f"the server answered HTTP {answer.status}", status_code=answer.status)


@dataclass
class Endpoint:
    """One target's server: base URL, headers, timeouts, and how its failures are described.

    ``server`` is the subject of every message (``OpenAI``, ``the server at http://...``);
    ``unreachable_remedy`` says how to start or reach it; ``status_error`` turns a non-2xx answer into the
    backend's error (the one piece of error handling that is wire format, so it stays in the plugin).
    """

    base_url: str
    profile: str
    backend: str
    server: str
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 120.0
    connect_timeout: float = CONNECT_TIMEOUT_S
    unreachable_remedy: str = ""
    status_error: Callable[[ErrorAnswer], LLMSwitchError] = _no_status_mapping

    def url(self, path: str) -> str:
        return f"{self.base_url.rstrip('/')}/{path.lstrip('/')}"

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or self.base_url

    def pool_key(self) -> tuple[Any, ...]:
        """Requests with equal keys share one connection pool (the headers hold the key, so keys never mix)."""
        return (self.base_url, tuple(sorted(self.headers.items())), self.timeout, self.connect_timeout)


def check_base_url(target: Target, base_url: str, example: str) -> str:
    """``base_url`` without a trailing slash; refused unless it is http(s)."""
    if not base_url.startswith(("http://", "https://")) or not urlsplit(base_url).hostname:
        raise InvalidOptionError(
            f"profile '{target.profile}': base_url {base_url!r} must start with http:// or https:// and name a host",
            remedy=f"for example {example}",
        )
    return base_url.rstrip("/")


def header_table(target: Target, option: str = "headers") -> dict[str, str]:
    """The profile's table of extra HTTP headers as strings, refused (not sent) when a name or value is
    not a valid header: a number or a string is fine, a table, a list, a bool or a line break is not."""
    raw = target.option(option) or {}
    if not isinstance(raw, Mapping):
        raise InvalidOptionError(f"profile '{target.profile}': {option} must be a table of strings",
                                 remedy=f'for example {option} = {{ "X-Title" = "llmswitch" }}')
    headers: dict[str, str] = {}
    for name, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise InvalidOptionError(
                f"profile '{target.profile}': header {name!r} must be a string, not {type(value).__name__}",
                remedy=f"quote the value in the profile's {option} table",
            )
        text = str(value)
        if not _HEADER_NAME.match(str(name)) or _BAD_VALUE.search(text):
            raise InvalidOptionError(
                f"profile '{target.profile}': {name!r} is not a valid HTTP header (a name is letters, digits "
                "and - _ ., and a value cannot hold a line break)",
                remedy=f"fix the {option} table of profile '{target.profile}'",
            )
        headers[str(name)] = text
    return headers


def with_profile_headers(target: Target, ours: Mapping[str, str], option: str = "headers") -> dict[str, str]:
    """``ours`` overridden by the profile's header table; names compare without case (HTTP's rule), so a
    proxy's own ``X-Api-Key`` or ``Authorization`` replaces the backend's instead of being sent beside it."""
    profile = header_table(target, option)
    overridden = {name.lower() for name in profile}
    return {**{name: value for name, value in ours.items() if name.lower() not in overridden}, **profile}
