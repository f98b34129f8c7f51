"""One exception tree for everything that can go wrong, each error carrying a remedy.

    LLMSwitchError
    ├── ConfigError                  exit 2: the user's input or files are wrong
    │   ├── ConfigSyntaxError        a TOML file does not parse (names file, line, column)
    │   ├── ProfileNotFoundError     suggests close names
    │   ├── UnknownBackendError      says which plugins are installed and what to install
    │   ├── InvalidOptionError       unknown option or wrong type
    │   ├── MissingKeyError          names the variable to set
    │   └── UnsupportedOptionError   a setting the backend cannot honour
    ├── PluginError                  exit 1: a plugin failed to load or raised something unexpected
    ├── BudgetExceededError          exit 1: refused before anything was sent
    └── BackendError                 exit 1: the backend failed
        ├── AuthError                401/403: key missing or rejected
        ├── RateLimitError           429 (any BackendError carries ``retry_after`` when the server said)
        ├── ModelNotFoundError       the model is not served
        ├── UnreachableError         connection refused or reset, DNS, ...
        ├── BackendTimeoutError      no answer in time
        ├── RedirectError            the server redirected elsewhere (never followed); names where
        ├── BatchExpiredError        a provider's batch job ended before running a request (and
        │                            BatchCancelledError, BatchNotAnsweredError)
        └── BadResponseError         5xx, garbage, a stream cut off, a native crash

The CLI and the TUI turn these into messages in one place (:func:`describe`); plugins raise them with a
message that says what happened and a remedy that says what to do.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


class LLMSwitchError(Exception):
    """Base of every error llmswitch reports. ``remedy`` says what to do, in one or two sentences."""

    exit_code = 1
    kind = "error"

    def __init__(self, message: str, *, remedy: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy

    def __str__(self) -> str:
        """The message with every credential this process knows masked (``sk-…abcd``): a plugin may have put
        a key into it, and ``str(error)`` is what a library caller prints or logs."""
        from llmswitch.secrets import redact

        return redact(self.message)

    def as_dict(self) -> dict[str, Any]:
        """The error as JSON output carries it (``--json``, batch records): kind, message, remedy, redacted."""
        from llmswitch.secrets import redact

        payload: dict[str, Any] = {"kind": self.kind, "message": redact(self.message)}
        if self.remedy:
            payload["remedy"] = redact(self.remedy)
        return payload


class ConfigError(LLMSwitchError):
    """The configuration or the command line is wrong."""

    exit_code = 2
    kind = "config"


class ConfigSyntaxError(ConfigError):
    """A TOML file does not parse."""

    kind = "config_syntax"

    def __init__(self, path: str, line: int | None, column: int | None, detail: str) -> None:
        where = f"{path}, line {line}, column {column}" if line else path
        super().__init__(
            f"cannot read {where}: {detail}",
            remedy=f"fix the TOML at {where} (or move the file away to start from the built-in profiles)",
        )
        self.path = path
        self.line = line
        self.column = column


class ProfileNotFoundError(ConfigError):
    """No profile of that name."""

    kind = "profile_not_found"

    def __init__(self, name: str, known: Sequence[str], *, chosen_by: str | None = None) -> None:
        suggestions = close_matches(name, known)
        if suggestions:
            remedy = "did you mean " + " or ".join(f"'{s}'" for s in suggestions) + "?"
        else:
            remedy = "known profiles: " + ", ".join(known) if known else "add one with `llmswitch profiles add`"
        remedy += " (`llmswitch profiles list` shows them all)"
        # The default can come from LLMSWITCH_PROFILE or the file's default_profile: say which named it.
        named_by = f" (the default, from {chosen_by})" if chosen_by and chosen_by != "built-in" else ""
        super().__init__(f"no profile named '{name}'{named_by}", remedy=remedy)
        self.name = name
        self.suggestions = suggestions


class UnknownBackendError(ConfigError):
    """A profile names a backend that no loaded plugin provides."""

    kind = "unknown_backend"


class InvalidOptionError(ConfigError):
    """An option is unknown to the backend or has the wrong type."""

    kind = "invalid_option"


class MissingKeyError(ConfigError):
    """The backend needs an API key and none was found."""

    kind = "missing_key"

    def __init__(self, profile: str, variable: str) -> None:
        super().__init__(
            f"profile '{profile}' needs an API key and {variable} is not set",
            remedy=f"export {variable}=... (or put {variable}=... in a .env file here, "
            f"or pass --api-key)",
        )
        self.profile = profile
        self.variable = variable


class UnsupportedOptionError(ConfigError):
    """A generation setting the backend cannot honour; reported instead of silently dropped."""

    kind = "unsupported_option"


class PluginError(LLMSwitchError):
    """A plugin could not be loaded, or raised something that is not an LLMSwitchError."""

    kind = "plugin"

    def __init__(self, message: str, *, plugin: str | None = None, remedy: str | None = None) -> None:
        super().__init__(message, remedy=remedy)
        self.plugin = plugin


class InternalError(LLMSwitchError):
    """Something raised what no part of llmswitch expects (a bug), kept as a result where one is owed: a batch
    line that hit it is a failed line, never a missing one."""

    kind = "internal"

    @classmethod
    def of(cls, error: BaseException) -> InternalError:
        return cls(f"unexpected failure: {type(error).__name__}: {error}",
                   remedy=f"report this bug ({UNEXPECTED_REMEDY})")


class BudgetExceededError(LLMSwitchError):
    """A call was refused because its estimate would pass the profile's budget. ``retry_after``: seconds until
    the budget's period starts again, when known (a gateway sends it as ``Retry-After``)."""

    kind = "budget"
    retry_after: float | None = None


class BackendError(LLMSwitchError):
    """The backend failed. ``status_code`` is the HTTP status when there was one; ``retry_after`` the seconds the
    server asked to wait before trying again (``Retry-After`` or ``retry-after-ms``, on a 429, 503, 529 or any
    other status), None when it did not say.

    ``retryable`` overrides the router's reading of the error (:func:`llmswitch.router.policy.verdict`):
    False for a failure that a retry cannot fix although its status usually can (a 429 for an account out
    of quota), True for one that a retry fixes although its status says otherwise; None leaves it to the
    error's type and status."""

    kind = "backend"

    def __init__(
        self,
        message: str,
        *,
        remedy: str | None = None,
        status_code: int | None = None,
        backend: str | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, remedy=remedy)
        self.status_code = status_code
        self.backend = backend
        self.retryable = retryable
        self.retry_after = retry_after

    def as_dict(self) -> dict[str, Any]:
        payload = super().as_dict()
        if self.retry_after is not None:
            payload["retry_after"] = self.retry_after
        return payload


class AuthError(BackendError):
    kind = "auth"


class RateLimitError(BackendError):
    kind = "rate_limited"


class BatchExpiredError(BackendError):
    """A provider's batch job ended before it ran this request (its completion window passed)."""

    kind = "expired"

    def __init__(self, message: str, **kwargs: object) -> None:
        kwargs.setdefault("remedy", "--retry-failed asks it again (line by line, or in a new job with --via "
                                    "provider)")
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class BatchCancelledError(BatchExpiredError):
    """A provider's batch job was cancelled before it ran this request."""

    kind = "cancelled"


class BatchNotAnsweredError(BatchExpiredError):
    """A provider's batch job ended without reporting this request at all (the job failed as a whole)."""

    kind = "not_answered"


class ModelNotFoundError(BackendError):
    kind = "model_not_found"


class UnreachableError(BackendError):
    kind = "unreachable"


class BackendTimeoutError(BackendError):
    kind = "timeout"


class RedirectError(BackendError):
    """The server answered with a redirect, which is never followed (it would re-send the key and the
    prompt): ``location`` is where it pointed (None when it did not say)."""

    kind = "redirected"

    def __init__(self, message: str, *, location: str | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.location = location


class BadResponseError(BackendError):
    kind = "bad_response"


class ContextLengthError(BadResponseError):
    """The conversation (with ``max_tokens`` of answer) does not fit the model's context window. A route moves
    on to a member with a larger window (:mod:`llmswitch.router.plan`); retrying the same model cannot help."""

    kind = "context_length"


def nothing_understood(
    server: str, count: int, unit: str, first: str | bytes, expected: str, *, backend: str, remedy: str
) -> BadResponseError:
    """A stream none of whose ``count`` parts the backend understood: say what arrived instead of an empty
    answer. ``unit`` names a part (``line``, ``event``), ``expected`` what none of them was."""
    from llmswitch.secrets import redact

    text = first.decode("utf-8", "replace") if isinstance(first, bytes) else first
    text = " ".join(text.split())
    sample = redact(text if len(text) <= 100 else text[:99] + "…")
    parts = f"{count} {unit}{'s' if count != 1 else ''}"
    return BadResponseError(f"{server} sent {parts}, none of them {expected}; the first: {sample!r}",
                            remedy=remedy, backend=backend)


UNEXPECTED_REMEDY = "run again with LLMSWITCH_DEBUG=1 for the traceback, and report it"


def describe(error: BaseException, *, hint_indent: str = "") -> str:
    """An error as the user reads it: ``error: message`` and, when there is one, ``hint: remedy`` on the next
    line (after ``hint_indent``). Keys are masked; anything but an :class:`LLMSwitchError` is a bug, named as
    an unexpected failure with the way to report it. Never a traceback."""
    from llmswitch.secrets import redact

    if isinstance(error, LLMSwitchError):
        message, remedy = error.message, error.remedy
    else:
        message, remedy = f"unexpected failure: {type(error).__name__}: {error}", UNEXPECTED_REMEDY
    text = f"error: {redact(message)}"
    if remedy:
        text += f"\n{hint_indent}hint: {redact(remedy)}"
    return text


def without_secrets(error: LLMSwitchError) -> LLMSwitchError:
    """The same error with every credential this process knows masked in its message and remedy: a server
    may quote the key it was sent in its error body, and a plugin may quote the server."""
    from llmswitch.secrets import redact

    error.message = redact(error.message)
    error.args = (error.message, *error.args[1:])
    if error.remedy:
        error.remedy = redact(error.remedy)
    return error


def close_matches(word: str, candidates: Iterable[str], limit: int = 3) -> list[str]:
    """Names that look like ``word``: typos, and prefixes such as ``claud`` for ``claude``."""
    import difflib

    pool = list(candidates)
    found = difflib.get_close_matches(word, pool, n=limit, cutoff=0.65)  # 0.6 offered openai for nope; rpn still finds rpm
    for name in pool:
        if len(found) >= limit:
            break
        if name not in found and word and (name.startswith(word) or word.startswith(name)):
            found.append(name)
    return found
