"""What to do about a failure: the core's remedies, in generic words, filled with what the backends declare.

Plugins attach their own remedies to the checks and errors they report, and theirs win. When one does not
(or a plugin crashed), ``doctor`` asks :func:`remedy_for_error` / :func:`remedy_for_text` here. They cover
every case in the users' troubleshooting guides: a key not set (which variable), a key rejected, connection
refused, model not found, a timeout, a rate limit, out of memory, a module not installed (which distribution to
pip-install), a model file missing, and an illegal-instruction crash (the rebuild flags).

The core names no backend (``tests/test_core_names_no_backend.py`` holds it to that). What is particular to a
backend is data its ``BackendInfo`` declares: where a key comes from (``key_help``), how a server is started
(``start_servers``), what to do about a missing model (``model_help``, ``served_model_help``), which
distribution provides a module it imports (``requirements``) and its own words for a crash (``crash_remedies``:
the SIGILL rebuild flags, the settings that use less memory, the model file). A missing module or a SIGILL
names no backend, so for those every installed backend's declarations are read (plain data its ``INFO`` holds:
reading it imports nothing the registry has not imported already).

Why text is still read at all: a typed error says what went wrong by its class (``AuthError``,
``UnreachableError``, ``ModelNotFoundError``, ...), so nothing here guesses those from words any more; a plugin
that wants the core's remedy for them raises the error (from ``health`` too). What has no type is a crash: an
``ImportError``, a native library killed by SIGILL, an allocation that failed, a file that is not there, reaching
the core as a ``PluginError``'s or a failed check's message. Only those four are recognised in text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from llmswitch import errors
from llmswitch.types import Crash

if TYPE_CHECKING:
    from llmswitch.types import BackendInfo, Target

MODULE_MISSING = "module_missing"

# The crashes recognised in text, in order: the first pattern that matches names the problem.
_CRASH_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (Crash.ILLEGAL_INSTRUCTION, re.compile(r"illegal instruction|sigill|signal 4\b|(?:code|status) -4\b", re.I)),
    (MODULE_MISSING, re.compile(r"no module named '?([\w.]+)'?", re.I)),
    (Crash.OUT_OF_MEMORY, re.compile(r"out of memory|\boom\b|cannot allocate|failed to allocate|memoryerror"
                                     r"|insufficient memory|not enough memory", re.I)),
    (Crash.MODEL_FILE_MISSING, re.compile(r"model file.*(?:not found|no such file|missing|does not exist)"
                                          r"|no such file", re.I)),
)


def classify(text: str) -> tuple[str, str | None] | None:
    """Name the crash a message describes (and the module, for a missing one), or None."""
    for problem, pattern in _CRASH_PATTERNS:
        match = pattern.search(text)
        if match:
            return problem, (match.group(1) if match.groups() else None)
    return None


def remedy_for_error(error: errors.LLMSwitchError, target: Target | None, *, timeout: float | None = None) -> str:
    """The error's own remedy, else the core's for its class (or, for a crash, for what its message says)."""
    crash = classify(error.message)
    if isinstance(error, errors.PluginError) and crash:
        # A plugin crashed with something we recognise (ImportError, MemoryError, SIGILL): our remedy
        # beats the generic "this is a bug in the plugin".
        return crash_remedy(crash[0], crash[1], target)
    if error.remedy:
        return error.remedy
    typed = remedy_for_class(error, target, timeout)
    if typed:
        return typed
    if crash:
        return crash_remedy(crash[0], crash[1], target)
    return "run again with LLMSWITCH_DEBUG=1 for details, and report it if it looks like a bug"


def remedy_for_class(error: errors.LLMSwitchError, target: Target | None, timeout: float | None) -> str | None:
    """The core's remedy for an error whose class says the problem outright, or None."""
    if isinstance(error, errors.MissingKeyError):
        return key_missing(target)
    if isinstance(error, errors.AuthError):
        return key_rejected(target)
    if isinstance(error, errors.UnreachableError):
        return connection_refused(target)
    if isinstance(error, errors.ModelNotFoundError):
        return model_not_found(target)
    if isinstance(error, errors.BackendTimeoutError):
        return timed_out(target, timeout)
    if isinstance(error, errors.RateLimitError):
        return rate_limited(error.retry_after)
    return None


def remedy_for_text(text: str, target: Target | None) -> str | None:
    """A remedy for a check a plugin failed without one, when its detail describes a crash."""
    found = classify(text)
    return crash_remedy(found[0], found[1], target) if found else None


def crash_remedy(problem: str, detail: str | None, target: Target | None) -> str:
    """What to do about a crash :func:`classify` named."""
    if problem == MODULE_MISSING:
        return module_missing(detail or "", target)
    if problem == Crash.ILLEGAL_INSTRUCTION:
        return illegal_instruction(target)
    if problem == Crash.OUT_OF_MEMORY:
        return out_of_memory(target)
    return model_file_missing(target)


# ---- the remedies ---------------------------------------------------------------------------------------


def key_missing(target: Target | None) -> str:
    variable = (target.key_variable if target is not None else None) or "the API key variable"
    return (f"export {variable}=... (or put {variable}=... in a .env file in this directory, pass --api-key, "
            "or name another variable with api_key_env in the profile)")


def key_rejected(target: Target | None) -> str:
    key = target.api_key if target is not None else None
    which = f"the key {key.masked} (from {key.source})" if key is not None else "the key"
    info = target.info if target is not None else None
    if info is not None and info.key_help and not _custom_url(target):
        where = info.key_help  # the provider's own key page, as its backend declares it
    else:
        where = "with whoever runs the server"
    return f"the server rejected {which}: check it is copied whole, not revoked and meant for this server, {where}"


def connection_refused(target: Target | None) -> str:
    url = target.base_url if target is not None else None
    if url and not _is_local(url):
        return f"cannot reach {url}: check the network connection, any proxy (HTTPS_PROXY), and the profile's base_url"
    servers = target.info.start_servers if target is not None and target.info is not None else ()
    if not servers:
        return f"nothing listens at {url or 'the server address'}: start the server, then check the profile's " \
               "base_url matches its address and port"
    port = urlsplit(url).port if url else None
    ordered = sorted(servers, key=lambda server: server[0] != port)  # the one on the profile's port first
    hints = "; ".join(hint for _port, hint in ordered)
    return f"nothing listens at {url or 'the server address'}: start the server, e.g. {hints}; " \
           "then check the profile's base_url matches its address and port"


def model_not_found(target: Target | None) -> str:
    model = target.model if target is not None else "MODEL"
    info = target.info if target is not None else None
    custom = _custom_url(target)
    if target is not None and info is not None and custom and info.served_model_help:
        return info.served_model_help.format(model=model, base_url=target.base_url)
    if info is not None and info.model_help:
        return info.model_help.format(model=model)
    if target is not None and custom:
        return f"ask for a model the server at {target.base_url} serves, or start the server with {model!r}"
    backend = target.backend if target is not None else "BACKEND"
    return (f"check the model name ({model!r}); `llmswitch prices --backend {backend}` lists the models "
            "llmswitch knows, and your key's project must have access to it")


def timed_out(target: Target | None, timeout: float | None) -> str:
    within = f" within {timeout:g}s" if timeout else ""
    where = f" at {target.base_url}" if target is not None and target.base_url else ""
    return (f"no answer{within}: the server{where} may be overloaded, stuck or still loading the model; "
            "check it, or allow longer with --timeout")


def rate_limited(retry_after: float | None) -> str:
    wait = f"wait {retry_after:g}s and try again" if retry_after else "wait a little and try again"
    return f"{wait}; if it keeps happening you have passed your plan's quota: check your usage and limits " \
           "with the provider"


def module_missing(module: str, target: Target | None = None) -> str:
    """``pip install`` the distribution that provides ``module``: as a backend declares it, else its own name."""
    top = module.split(".")[0]
    if top.startswith("llmswitch_"):
        from llmswitch.plugins import install_hint

        return install_hint(top[len("llmswitch_"):])
    requirement = next((r for info in _declarations(target) for r in info.requirements if r.module == top), None)
    if requirement is None:
        return f"pip install {top.replace('_', '-')}"
    note = f" ({requirement.note})" if requirement.note else ""
    return f"pip install {requirement.distribution}{note}"


def illegal_instruction(target: Target | None) -> str:
    """The failing backend's rebuild instructions; a crash that names no library gets every backend's."""
    own = _declared(target.info if target is not None else None, Crash.ILLEGAL_INSTRUCTION, target)
    if own:
        return own
    remedies = dict.fromkeys(text for info in _declarations(None)
                             if (text := _declared(info, Crash.ILLEGAL_INSTRUCTION, target)))
    if remedies:
        return "; or ".join(remedies)
    return ("a native library was compiled for CPU instructions this machine lacks: reinstall it built for this "
            "CPU (from source, e.g. `pip install --force-reinstall --no-binary :all: PACKAGE`)")


def out_of_memory(target: Target | None) -> str:
    info = target.info if target is not None else None
    own = _declared(info, Crash.OUT_OF_MEMORY, target)
    if own:
        return own
    if info is not None and target is not None and not target.base_url and not info.default_base_url:
        return "the model does not fit in memory: use a smaller model or a shorter context, or close other programs"
    if target is not None and target.base_url:
        return f"the server at {target.base_url} ran out of memory: restart it with a smaller model or a shorter " \
               "context, or give it more memory"
    return "the model does not fit in memory: use a smaller model or a shorter context, or free memory"


def model_file_missing(target: Target | None) -> str:
    info = target.info if target is not None else None
    own = _declared(info, Crash.MODEL_FILE_MISSING, target)
    if own:
        return own
    option = info.model_option if info is not None else None
    where = target.option(option) if target is not None and option else None
    if where:
        return f"check that the model file {where} exists (`ls -l {where}`), or point {option} at a model file " \
               "you have"
    return f"check that the model file exists (the profile's {option})" if option else \
        "check that the model file the profile names exists"


# ---- what the backends declare ----------------------------------------------------------------------------


def _declarations(target: Target | None) -> Iterator[BackendInfo]:
    """The failing target's backend first, then every installed one (the registry is loaded once a process)."""
    from llmswitch.plugins import get_registry

    own = target.info if target is not None else None
    if own is not None:
        yield own
    for handle in get_registry().backends.values():
        if handle.info is not own:
            yield handle.info


def _declared(info: BackendInfo | None, crash: Crash, target: Target | None) -> str | None:
    """The backend's own remedy for ``crash``, placeholders filled; None when it declares none (or it needs the
    model file and the profile names none)."""
    text = info.crash_remedies.get(crash) if info is not None else None
    if not text or info is None:
        return None
    if "{model_file}" in text:
        model_file = target.option(info.model_option) if target is not None and info.model_option else None
        if not model_file:
            return None
        text = text.replace("{model_file}", str(model_file))
    return text.replace("{model}", target.model if target is not None else "MODEL")


def _custom_url(target: Target | None) -> bool:
    if target is None or not target.base_url:
        return False
    info = target.info
    return info is None or not info.is_own_url(target.base_url)


def _is_local(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in ("localhost", "127.0.0.1", "::1", "0.0.0.0") or host.endswith(".local")
