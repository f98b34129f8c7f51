"""What to do about a failure: the core's remedies for the problems users meet most.

Plugins attach their own remedies to the checks and errors they report, and theirs win. When one does not
(or a plugin crashed), ``doctor`` asks :func:`remedy_for_error` / :func:`remedy_for_text` here. They cover
every case in the users' troubleshooting guides: a key not set (which variable), a key rejected, connection
refused, model not found, out of memory, a module not installed (which distribution to pip-install), and an
illegal-instruction crash (the rebuild flags).

The core names no backend: where a key comes from, how a server is started and how a missing model is
fetched are data the backend declares (``BackendInfo.key_help``, ``start_servers``, ``model_help``). A typed
error says what went wrong by its class; message text is read only for what has no type: a plugin that
crashed (a missing module, SIGILL, out of memory) and a health check a plugin failed without a remedy.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from llmswitch import errors

if TYPE_CHECKING:
    from llmswitch.types import Target

# Import name -> the distribution that provides it, where they differ (otherwise the names are the same).
MODULE_DISTRIBUTIONS = {
    "llama_cpp": "llama-cpp-python",
    "yaml": "pyyaml",
    "dotenv": "python-dotenv",
    "google": "google-genai",
}

ILLEGAL_INSTRUCTION_REMEDY = (
    "the llama.cpp library was compiled for CPU instructions this machine lacks (AVX2, AVX-512, FMA): "
    "rebuild it for this CPU with `CMAKE_ARGS=\"-DGGML_NATIVE=OFF -DGGML_AVX512=OFF\" pip install "
    "--force-reinstall --no-cache-dir llama-cpp-python` (on a CPU without AVX2 also add "
    "-DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF)"
)

# Order matters: the first pattern that matches names the problem.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("illegal_instruction", re.compile(r"illegal instruction|sigill|signal 4\b|(?:code|status) -4\b", re.I)),
    ("module_missing", re.compile(r"no module named '?([\w.]+)'?", re.I)),
    ("out_of_memory", re.compile(r"out of memory|\boom\b|cannot allocate|failed to allocate|memoryerror"
                                 r"|insufficient memory|not enough memory", re.I)),
    ("connection_refused", re.compile(r"connection refused|errno 111|connecterror|failed to establish"
                                      r"|cannot connect|could not connect|connection reset", re.I)),
    ("timeout", re.compile(r"timed out|timeout", re.I)),
    ("rate_limited", re.compile(r"\b429\b|rate.?limit", re.I)),
    ("key_rejected", re.compile(r"\b401\b|\b403\b|unauthori[sz]ed|forbidden|invalid[ _-]?api[ _-]?key"
                                r"|incorrect api key|authentication|x-api-key", re.I)),
    ("model_file_missing", re.compile(r"model file|\.gguf\b.*(?:not found|no such file|missing)"
                                      r"|no such file", re.I)),
    ("model_not_found", re.compile(r"model_not_found|model .*(?:not found|does not exist|not served)"
                                   r"|unknown model|no such model|\b404\b", re.I)),
)


# Problems that show up as a crash (in any error class) rather than as a typed backend error.
_CRASHES = ("module_missing", "illegal_instruction", "out_of_memory", "model_file_missing")

# Error classes whose kind says the problem outright (the first that matches wins).
_ERROR_PROBLEMS: tuple[tuple[type[errors.LLMSwitchError], str], ...] = (
    (errors.MissingKeyError, "key_missing"),
    (errors.AuthError, "key_rejected"),
    (errors.UnreachableError, "connection_refused"),
    (errors.ModelNotFoundError, "model_not_found"),
    (errors.BackendTimeoutError, "timeout"),
    (errors.RateLimitError, "rate_limited"),
)


def classify(text: str) -> tuple[str, str | None] | None:
    """Name the problem a message describes (and the module, for a missing one), or None."""
    for problem, pattern in _PATTERNS:
        match = pattern.search(text)
        if match:
            return problem, (match.group(1) if match.groups() else None)
    return None


def remedy_for_error(error: errors.LLMSwitchError, target: Target | None, *, timeout: float | None = None) -> str:
    """The error's own remedy, else the core's for its class (or, for a crash, for what its message says)."""
    found = classify(error.message)
    crash = found if found and found[0] in _CRASHES else None
    if isinstance(error, errors.PluginError) and crash:
        # A plugin crashed with something we recognise (ImportError, MemoryError, SIGILL): our remedy
        # beats the generic "this is a bug in the plugin".
        return _remedy(crash[0], crash[1], target, timeout=timeout) or error.remedy or ""
    if error.remedy:
        return error.remedy
    problem: str | None = next((name for kind, name in _ERROR_PROBLEMS if isinstance(error, kind)), None)
    detail = None
    if problem is None and crash:
        problem, detail = crash
    remedy = _remedy(problem, detail, target, timeout=timeout, retry_after=error.retry_after if isinstance(error, errors.RateLimitError) else None)
    return remedy or "run again with LLMSWITCH_DEBUG=1 for details, and report it if it looks like a bug"


def remedy_for_text(text: str, target: Target | None, *, timeout: float | None = None) -> str | None:
    """A remedy for a check a plugin failed without one, from what its detail describes."""
    found = classify(text)
    if not found:
        return None
    return _remedy(found[0], found[1], target, timeout=timeout)


def _remedy(problem: str | None, detail: str | None, target: Target | None, *, timeout: float | None = None,
            retry_after: float | None = None) -> str | None:
    if problem == "key_missing":
        return key_missing(target)
    if problem == "key_rejected":
        return key_rejected(target)
    if problem == "connection_refused":
        return connection_refused(target)
    if problem == "model_not_found":
        return model_not_found(target)
    if problem == "out_of_memory":
        return out_of_memory(target)
    if problem == "module_missing":
        return module_missing(detail or "")
    if problem == "illegal_instruction":
        return ILLEGAL_INSTRUCTION_REMEDY
    if problem == "timeout":
        return timed_out(target, timeout)
    if problem == "rate_limited":
        wait = f"wait {retry_after:g}s and try again" if retry_after else "wait a little and try again"
        return f"{wait}; if it keeps happening you have passed your plan's quota: check your usage and limits " \
               "with the provider"
    if problem == "model_file_missing":
        where = target.option("model_path") if target is not None else None
        return (f"check that the model file {where} exists (`ls -l {where}`)" if where else
                "check that the model file exists (the profile's model_path)") + \
            ", or point model_path at a .gguf file you have"
    return None


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
    if target is not None and target.info is not None and target.info.model_help:
        return target.info.model_help.format(model=model)
    if target is not None and _custom_url(target):
        return (f"ask for a model the server serves (`curl {target.base_url}/models` lists them), or start it "
                f"with this one (vLLM: `vllm serve {model}`; llama.cpp: `llama-server -m FILE --alias {model}`)")
    backend = target.backend if target is not None else "BACKEND"
    return (f"check the model name ({model!r}); `llmswitch prices --backend {backend}` lists the models "
            "llmswitch knows, and your key's project must have access to it")


def out_of_memory(target: Target | None) -> str:
    local = "lower n_gpu_layers (e.g. 20 instead of 30) or n_ctx (e.g. 2048), or use a smaller quantization " \
            "(Q4_K_M instead of Q8_0)"
    server = "restart the server with less memory: vLLM `--max-model-len 2048` (or a lower " \
             "`--gpu-memory-utilization`); llama.cpp server fewer `--n-gpu-layers` or a smaller `--ctx-size`"
    if target is not None and target.info is not None and not target.base_url and not target.info.default_base_url:
        return local  # the model runs in this process
    if target is not None and _custom_url(target):
        return server
    return f"{local}; for a server: {server}"


def module_missing(module: str) -> str:
    top = module.split(".")[0]
    if top.startswith("llmswitch_"):
        from llmswitch.plugins import install_hint

        return install_hint(top[len("llmswitch_"):])
    dist = MODULE_DISTRIBUTIONS.get(top, top.replace("_", "-"))
    hint = f"pip install {dist}"
    if top == "llama_cpp":
        hint += " (a GPU build: CMAKE_ARGS=\"-DGGML_CUDA=on\" pip install llama-cpp-python)"
    return hint


def timed_out(target: Target | None, timeout: float | None) -> str:
    within = f" within {timeout:g}s" if timeout else ""
    where = f" at {target.base_url}" if target is not None and target.base_url else ""
    return (f"no answer{within}: the server{where} may be overloaded, stuck or still loading the model; "
            "check it, or allow longer with --timeout")


def _custom_url(target: Target | None) -> bool:
    if target is None or not target.base_url:
        return False
    info = target.info
    return info is None or not info.is_own_url(target.base_url)


def _is_local(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in ("localhost", "127.0.0.1", "::1", "0.0.0.0") or host.endswith(".local")
