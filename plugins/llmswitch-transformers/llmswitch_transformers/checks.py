"""``doctor`` for a transformers profile: the libraries, the model files, the device, memory, a real generation.

The first checks read files and metadata only. The device check imports torch (to ask it what it sees), and
the generation runs in a child process (:mod:`llmswitch_transformers.probe`), so a load that runs out of
memory or crashes natively is a failed check with a remedy, not a dead ``doctor``. Nothing here touches the
network: a model that is not downloaded yet is reported as such, never fetched.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import struct
import time
from pathlib import Path

from llmswitch.kit import Check, CheckStatus, HealthReport, LLMSwitchError, Target, usable_cpus
from llmswitch_transformers.settings import INSTALL_REMEDY, WEIGHT_SUFFIXES, LoadSettings, load_settings

HEALTH_TOKENS = 8
MIN_PROBE_TIMEOUT_S = 120.0  # loading a model from a cold disk takes longer than a network check may
# Beyond the weights: activations, the KV cache of a short conversation, allocator slack.
MEMORY_OVERHEAD = 1.2


def health_report(target: Target, timeout: float) -> HealthReport:
    """Every check, in order; stops at the first one that makes the later ones meaningless."""
    started = time.perf_counter()
    checks: list[Check] = []
    metrics: dict[str, float] = {}

    def report() -> HealthReport:
        return HealthReport.from_checks(checks, latency_s=time.perf_counter() - started, **metrics)

    try:
        settings = load_settings(target)
    except LLMSwitchError as exc:
        checks.append(_libraries_check(gguf=False))
        checks.append(Check("model files", CheckStatus.FAIL, exc.message, exc.remedy))
        return report()
    checks.append(_libraries_check(gguf=settings.source.gguf_file is not None))
    files = _files_check(settings)
    checks.append(files)
    if checks[0].status is CheckStatus.FAIL or files.status is not CheckStatus.PASS:
        checks.append(Check("generation", CheckStatus.SKIP, "needs the libraries and the model files"))
        return report()
    try:
        device, dtype = _device_and_dtype(settings)
    except LLMSwitchError as exc:
        checks.append(Check("device", CheckStatus.FAIL, exc.message, exc.remedy))
        return report()
    checks.append(_device_check(settings, device, dtype))
    parameters = count_parameters(settings)
    if parameters:
        metrics["parameters"] = float(parameters)
        checks.append(_memory_check(settings, device, dtype, parameters))
    from llmswitch_transformers.probe import run_probe

    result = run_probe(settings, tokens=HEALTH_TOKENS, timeout=max(timeout, MIN_PROBE_TIMEOUT_S))
    if not result.ok:
        checks.append(Check("generation", CheckStatus.FAIL, result.detail, result.remedy))
        return report()
    for name, value in (("load_s", result.load_s), ("tokens_per_s", result.tokens_per_s)):
        if value is not None:
            metrics[name] = value
    checks.append(Check("generation", CheckStatus.PASS,
                        f"loaded in {result.load_s or 0:.2f} s, {result.tokens_per_s or 0:.1f} tokens/s on "
                        f"{result.device} ({result.dtype}, in a separate process)"))
    return report()


def _libraries_check(*, gguf: bool) -> Check:
    needed = ["torch", "transformers", "accelerate", *(["gguf"] if gguf else [])]
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        return Check("libraries", CheckStatus.FAIL, f"{', '.join(missing)} cannot be imported (not installed)",
                     INSTALL_REMEDY)
    return Check("libraries", CheckStatus.PASS, ", ".join(f"{name} {_version(name)}" for name in needed))


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "(unknown version)"


def _files_check(settings: LoadSettings) -> Check:
    source = settings.source
    if source.directory is None:
        return Check("model files", CheckStatus.WARN,
                     f"{source.hub_id} is not downloaded yet; the first chat downloads it (allow_download = true)",
                     remedy=f"download it now to check it: hf download {source.hub_id}")
    if source.gguf_path is not None:
        size = source.gguf_path.stat().st_size
        return Check("model files", CheckStatus.PASS, f"{source.gguf_path} ({size / 2**20:.0f} MiB, GGUF)")
    weights = [path for path in source.directory.iterdir() if path.suffix in WEIGHT_SUFFIXES]
    if not weights:
        return Check("model files", CheckStatus.FAIL, f"{source.directory} has config.json but no weights "
                     "(*.safetensors, *.bin)", remedy="copy or download the model's weight files there"
                     + ("" if settings.allow_download else " (allow_download = true lets llmswitch fetch them)"))
    size = sum(path.stat().st_size for path in weights)
    return Check("model files", CheckStatus.PASS,
                 f"{source.describe()}: config.json and {len(weights)} weight file(s), {size / 2**20:.0f} MiB")


def _device_and_dtype(settings: LoadSettings) -> tuple[str, str]:
    from llmswitch_transformers.runtime import check_max_memory, libraries, resolve_device, resolve_dtype

    torch, _ = libraries()
    device = resolve_device(settings, torch)
    dtype = resolve_dtype(settings, device, torch)
    check_max_memory(settings, device)
    return device, dtype


def _device_check(settings: LoadSettings, device: str, dtype: str) -> Check:
    detail = f"{device}, {dtype} (torch {_version('torch')})"
    if device != "cpu":
        return Check("device", CheckStatus.PASS, detail)
    cpus = usable_cpus()
    detail += f", {settings.threads} of {cpus} CPU threads"
    if settings.threads > cpus:
        return Check("device", CheckStatus.WARN, detail,
                     remedy=f"set threads to {max(1, cpus // 2)} or fewer: threads beyond the free cores wait for "
                     "each other and slow generation down")
    return Check("device", CheckStatus.PASS, detail)


def _memory_check(settings: LoadSettings, device: str, dtype: str, parameters: int) -> Check:
    from llmswitch_transformers.runtime import estimate_bytes, memory_remedy

    needed = int(estimate_bytes(parameters, dtype) * MEMORY_OVERHEAD)
    what = f"about {needed / 2**30:.2f} GiB for {parameters / 1e6:.0f}M parameters in {dtype}"
    if settings.max_memory:
        allowed = sum(size for _, size in settings.max_memory)
        if needed > allowed:
            return Check("memory", CheckStatus.FAIL, f"{what}, but max_memory allows {allowed / 2**30:.2f} GiB",
                         remedy="raise max_memory (add cpu = \"...GiB\" to let layers spill to the CPU), or "
                         + memory_remedy(settings))
        return Check("memory", CheckStatus.PASS, f"{what}, within max_memory ({allowed / 2**30:.2f} GiB)")
    free = free_memory(device)
    if free is None:
        return Check("memory", CheckStatus.PASS, f"{what} (free memory on {device} not measured)")
    if needed > free:
        return Check("memory", CheckStatus.WARN, f"{what}, but {device} has {free / 2**30:.2f} GiB free",
                     remedy=memory_remedy(settings))
    return Check("memory", CheckStatus.PASS, f"{what}; {free / 2**30:.2f} GiB free on {device}")


def free_memory(device: str) -> int | None:
    """Bytes free on the device: CUDA asks the driver; the CPU reads MemAvailable (Linux)."""
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    try:
        for line in Path("/proc/meminfo").read_text(encoding="ascii").splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def count_parameters(settings: LoadSettings) -> int | None:
    """Parameters in the weight files, read from their headers (no weights are loaded)."""
    source = settings.source
    try:
        if source.gguf_path is not None:
            from gguf import GGUFReader

            return sum(int(tensor.n_elements) for tensor in GGUFReader(source.gguf_path).tensors)
        if source.directory is None:
            return None
        files = sorted(source.directory.glob("*.safetensors"))
        return sum(_safetensors_parameters(path) for path in files) or None
    except (OSError, ValueError, ImportError, struct.error):
        return None


def _safetensors_parameters(path: Path) -> int:
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    total = 0
    for name, entry in header.items():
        if name != "__metadata__":
            count = 1
            for dimension in entry["shape"]:
                count *= int(dimension)
            total += count
    return total
