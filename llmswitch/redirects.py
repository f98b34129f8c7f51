"""Redirects are never followed: a backend reports where the server pointed instead of going there.

Following a 301/302/303/307/308 re-sends the request's headers (HTTP clients drop ``Authorization`` across
origins, but not ``x-api-key`` or the profile's own headers) and, for 307 and 308, its body, which holds the
prompt. A base URL is a choice the user made about where keys and prompts go (see
:mod:`llmswitch.key_policy`); a server cannot change it. So no backend follows any redirect, to another
origin or not: every HTTP plugin (through :mod:`llmswitch.kit`, or its SDK's response) hands the answer to
:func:`redirect_error`, which names the new address and the base URL that would reach it, for the user to
set if they trust it.
"""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

from llmswitch.errors import RedirectError
from llmswitch.secrets import redact_url


def is_redirect(status: int) -> bool:
    """True for the statuses HTTP clients follow (3xx)."""
    return 300 <= status < 400


def suggested_base_url(request_url: str, location: str, base_url: str | None) -> str:
    """The base URL that would reach the same endpoint at the new address.

    A request to ``<base>/chat/completions`` redirected to ``<new>/chat/completions`` suggests ``<new>``;
    when the new address does not end the same way, its origin is the best guess.
    """
    target = urljoin(request_url, location)
    request_path = urlsplit(request_url).path
    base_path = urlsplit(base_url).path.rstrip("/") if base_url else ""
    endpoint_part = request_path[len(base_path):] if request_path.startswith(base_path) else ""
    new = urlsplit(target)
    if endpoint_part and new.path.endswith(endpoint_part):
        return f"{new.scheme}://{new.netloc}{new.path[: len(new.path) - len(endpoint_part)]}".rstrip("/")
    return f"{new.scheme}://{new.netloc}"


def redirect_error(
    *,
    status: int,
    location: str | None,
    request_url: str,
    base_url: str | None,
    server: str,
    profile: str,
    backend: str,
) -> RedirectError:
    """The error for a redirect that was not followed: where it led, and the base URL to set to go there."""
    if not location:
        return RedirectError(
            f"{server} answered with a redirect (HTTP {status}) without saying where to; it was not followed",
            remedy=f"check base_url in profile '{profile}': it should be the API's own address",
            status_code=status, backend=backend, location=None,
        )
    target = urljoin(request_url, location)
    suggestion = suggested_base_url(request_url, location, base_url)
    return RedirectError(
        f"{server} redirected to {redact_url(target)} (HTTP {status}); llmswitch does not follow redirects, so "
        "neither the key nor the prompt was sent there",
        remedy=f"set base_url to {redact_url(suggestion)} in profile '{profile}' if you trust it",
        status_code=status, backend=backend, location=target,
    )
