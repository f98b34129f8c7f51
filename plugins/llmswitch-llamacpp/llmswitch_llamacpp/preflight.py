"""Run the one-token probe in a child process, explain how it failed, and remember when it passed.

A llama-cpp-python built natively on a CPU that advertises AMX dies with SIGILL at the first matrix product,
taking the whole process (and the user's terminal session state) with it. So before the first in-process
load of a model with a given build, the same load runs in a child (:mod:`llmswitch_llamacpp.probe`). A pass
is remembered in the cache dir, keyed by the llama-cpp-python version, its native libraries (size and mtime,
so a rebuild with other flags is probed again), the model file and the settings that decide memory use.
Failures are not remembered: the next attempt probes again, and gets the same explanation if nothing changed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from llmswitch.kit import (
    BackendError,
    BackendTimeoutError,
    BadResponseError,
    ModelNotFoundError,
    last_json_object,
)
from llmswitch_llamacpp.defaults import (  # the remedies live beside INFO, which declares them too
    INSTALL_REMEDY,
    LLAMA_DISTRIBUTION,
    LLAMA_VERSION,
    PORTABLE_CMAKE_ARGS,
    REBUILD_REMEDY,
    TESTED_VERSIONS,
)
from llmswitch_llamacpp.settings import LoadSettings

PROBE_TIMEOUT_S = 180.0
UPGRADE_COMMAND = (
    f'CMAKE_ARGS="{PORTABLE_CMAKE_ARGS}" pip install --upgrade --no-deps --no-cache-dir --no-binary '
    f'{LLAMA_DISTRIBUTION} "{LLAMA_DISTRIBUTION}<0.4"'
)
_UNKNOWN_ARCHITECTURE = re.compile(r"unknown model architecture: '([^']*)'")
_MEMORY_WORDS = (
    "out of memory", "failed to allocate", "cannot allocate", "unable to allocate", "bad_alloc",
    "alloc_buffer: failed", "not enough memory", "cudamalloc failed", "failed to create llama_context",
    "failed to initialize the context", "memoryerror",
)


@dataclass(frozen=True)
class ProbeResult:
    """What the child process reported, or how it died, with a remedy when it did not pass."""

    ok: bool
    kind: str  # ok, illegal_instruction, out_of_memory, crashed, load_failed, not_installed, timeout
    detail: str
    remedy: str | None = None
    load_s: float | None = None
    tokens_per_s: float | None = None
    tokens: int = 0
    build: str | None = None  # llama.cpp's own version and commit, as the child process found them


def probe_command(settings: LoadSettings, tokens: int = 1) -> list[str]:
    return [
        sys.executable, "-m", "llmswitch_llamacpp.probe", str(settings.model_path),
        "--n-ctx", str(settings.n_ctx), "--n-threads", str(settings.n_threads),
        "--n-gpu-layers", str(settings.n_gpu_layers), "--n-batch", str(settings.n_batch),
        "--tokens", str(tokens),
    ]  # fmt: skip


def run_probe(
    settings: LoadSettings,
    *,
    tokens: int = 1,
    timeout: float = PROBE_TIMEOUT_S,
    command: list[str] | None = None,
) -> ProbeResult:
    """Load the model and generate ``tokens`` tokens in a child process; never raises for a crash."""
    try:
        completed = subprocess.run(
            command or probe_command(settings, tokens),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return ProbeResult(
            False, "timeout", f"loading the model and generating one token took longer than {timeout:.0f} s",
            remedy="a model this size may need longer on this machine: try again, or use a smaller model or "
            "quantisation",
        )
    stdout = completed.stdout.decode("utf-8", errors="replace")
    stderr = completed.stderr.decode("utf-8", errors="replace")
    if completed.returncode < 0:
        return explain_signal(-completed.returncode, stderr, settings)
    payload = last_json_object(stdout)
    build = str(payload["build"]) if payload and payload.get("build") else None
    if completed.returncode == 0 and payload and payload.get("ok"):
        return ProbeResult(
            True, "ok", "generated a token",
            load_s=_number(payload.get("load_s")), tokens_per_s=_number(payload.get("tokens_per_s")),
            tokens=int(_number(payload.get("tokens")) or 0), build=build,
        )  # fmt: skip
    if payload and payload.get("kind") == "not_installed":
        return ProbeResult(False, "not_installed", f"llama-cpp-python cannot be imported: {payload.get('error')}",
                           remedy=INSTALL_REMEDY)
    if payload:
        explained = explain_load_error(str(payload.get("error")), str(payload.get("log") or ""), settings, build)
        return dataclasses.replace(explained, build=build)
    tail = _tail(stderr) or _tail(stdout) or "no output"
    return ProbeResult(False, "crashed", f"the check exited with status {completed.returncode}: {tail}",
                       remedy="run `llmswitch doctor` for details; try another build of llama-cpp-python or "
                       "another model file")


def explain_signal(number: int, stderr: str, settings: LoadSettings) -> ProbeResult:
    """Turn the signal that killed the child into a sentence and a remedy."""
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    tail = _tail(stderr)
    if number == getattr(signal, "SIGILL", 4):
        return ProbeResult(
            False, "illegal_instruction",
            "llama.cpp crashed with an illegal instruction (SIGILL): this llama-cpp-python was compiled for CPU "
            "features this processor does not have (a native build on a CPU that advertises AMX or AVX-512 "
            "does this)",
            remedy=REBUILD_REMEDY,
        )  # fmt: skip
    if number == getattr(signal, "SIGKILL", 9) or _mentions_memory(stderr):
        return ProbeResult(False, "out_of_memory",
                           f"llama.cpp was killed by {name} while loading the model, most likely out of memory"
                           + (f" ({tail})" if tail else ""),
                           remedy=memory_remedy(settings))
    return ProbeResult(
        False, "crashed", f"llama.cpp crashed with {name} while loading or running the model"
        + (f": {tail}" if tail else ""),
        remedy="the model file may be damaged or of an architecture this llama.cpp does not know: check it with "
        "`llmswitch doctor`, fetch it again, or try another build of llama-cpp-python",
    )  # fmt: skip


def explain_load_error(error: str, log: str, settings: LoadSettings, build: str | None = None) -> ProbeResult:
    """A load that failed cleanly: out of memory, an architecture this llama.cpp does not know, or a file it
    cannot use, with llama.cpp's own words."""
    detail = error + (f" (llama.cpp said: {_tail(log, 3)})" if log.strip() else "")
    if _mentions_memory(error + "\n" + log):
        return ProbeResult(False, "out_of_memory", f"llama.cpp could not allocate memory for the model: {detail}",
                           remedy=memory_remedy(settings))
    unknown = _UNKNOWN_ARCHITECTURE.search(error + "\n" + log)
    if unknown:
        return ProbeResult(
            False, "unknown_architecture",
            f"this llama.cpp does not know the model architecture '{unknown.group(1)}' of {settings.model_path} "
            f"(llama-cpp-python {installed_version() or 'unknown version'}"
            + (f", llama.cpp {build}" if build else "") + "): the model is newer than the library",
            remedy=f"upgrade llama-cpp-python, whose every release carries a newer llama.cpp: {UPGRADE_COMMAND} "
            "(in a checkout of llmswitch: LLAMA_CPP_VERSION=<newest> bash scripts/llama-wheel.sh builds that "
            "wheel); if the newest release does not know it either, llama.cpp does not support this model yet",
        )  # fmt: skip
    return ProbeResult(
        False, "load_failed", f"llama.cpp could not load {settings.model_path}: {detail}",
        remedy="check that the file is a whole GGUF model of an architecture llama-cpp-python "
        f"{installed_version() or LLAMA_VERSION} supports (`llmswitch doctor` reads its header); fetch it again "
        "if it is damaged",
    )  # fmt: skip


def installed_version() -> str | None:
    """The installed llama-cpp-python's version, from its metadata (nothing is imported)."""
    import importlib.metadata

    try:
        return importlib.metadata.version(LLAMA_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None


def is_tested(version: str) -> bool:
    """Whether a llama-cpp-python version lies in the range the tests have passed on."""

    def key(text: str) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", text)[:3])

    return key(TESTED_VERSIONS[0]) <= key(version) <= key(TESTED_VERSIONS[-1])


def memory_remedy(settings: LoadSettings) -> str:
    steps = [f"a smaller context (n_ctx, now {settings.n_ctx})"]
    if settings.n_gpu_layers:
        steps.insert(0, f"fewer GPU layers (n_gpu_layers, now {settings.n_gpu_layers})")
    steps.append("a smaller model or quantisation")
    return "use " + ", ".join(steps) + "; or close other programs to free memory"


def error_for(result: ProbeResult) -> BackendError:
    """The exception ``chat`` raises when the probe did not pass."""
    error_type = BackendTimeoutError if result.kind == "timeout" else BadResponseError
    return error_type(result.detail, remedy=result.remedy, backend="llamacpp")


def check_file(settings: LoadSettings) -> None:
    """Read the GGUF header first: a missing, foreign or truncated file gets its own plain message."""
    from llmswitch_llamacpp.gguf import GGUFError, read_gguf

    try:
        read_gguf(settings.model_path)
    except GGUFError as error:
        error_type = ModelNotFoundError if error.kind == "missing" else BadResponseError
        remedy = error.remedy + ("; or set the profile's model_path to an existing .gguf file"
                                 if error.kind == "missing" else "")
        raise error_type(error.message, remedy=remedy, backend="llamacpp") from None


# ---- remembering passes -------------------------------------------------------------------------------


def probe_key(settings: LoadSettings) -> str | None:
    """Identify the build, the model file and the memory settings; None when llama-cpp-python is absent."""
    import importlib.metadata
    import importlib.util

    try:
        version = importlib.metadata.version(LLAMA_DISTRIBUTION)
        spec = importlib.util.find_spec("llama_cpp")
    except (importlib.metadata.PackageNotFoundError, ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    libraries = []
    for location in spec.submodule_search_locations:
        lib_dir = Path(location) / "lib"
        for library in sorted(lib_dir.glob("*")) if lib_dir.is_dir() else []:
            stat = library.stat()
            libraries.append((library.name, stat.st_size, stat.st_mtime_ns))
    try:
        model = settings.model_path.stat()
    except OSError:
        return None
    identity = {
        "llama_cpp": version,
        "python": sys.executable,
        "libraries": libraries,
        "model": [str(settings.model_path.resolve()), model.st_size, model.st_mtime_ns],
        "memory": [settings.n_ctx, settings.n_gpu_layers, settings.n_batch],
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]


def _memory_file(key: str) -> Path:
    from llmswitch.kit import cache_dir

    return cache_dir() / "llamacpp" / "probes" / f"{key}.json"


def remembered_pass(settings: LoadSettings) -> bool:
    key = probe_key(settings)
    return key is not None and _memory_file(key).is_file()


def remember_pass(settings: LoadSettings, result: ProbeResult) -> None:
    key = probe_key(settings)
    if key is None or not result.ok:
        return
    path = _memory_file(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps({"model": str(settings.model_path), "load_s": result.load_s,
                                         "tokens_per_s": result.tokens_per_s}), encoding="utf-8")
        os.replace(temporary, path)
    except OSError:
        pass  # an unwritable cache only costs a probe next time


def ensure_safe(settings: LoadSettings) -> None:
    """Probe in a child before the first in-process load with this build, model and memory settings."""
    if remembered_pass(settings):
        return
    check_file(settings)
    result = run_probe(settings)
    if not result.ok:
        raise error_for(result)
    remember_pass(settings, result)


# ---- helpers -------------------------------------------------------------------------------------------


def _mentions_memory(text: str) -> bool:
    lowered = text.lower()
    return any(word in lowered for word in _MEMORY_WORDS)


def _tail(text: str, lines: int = 2) -> str:
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return " / ".join(kept[-lines:])[-400:]


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None
