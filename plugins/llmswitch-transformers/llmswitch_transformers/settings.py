"""From a profile's options to the settings a model is loaded with, and where the model is.

Nothing here imports torch or transformers: a profile's mistakes (a bad device name, a model that is not
there) are reported before anything heavy is loaded, and ``doctor`` can say what is missing even when torch
is not installed.

Offline by default: ``model`` is looked up on disk and in the Hugging Face cache only. Downloading from the
Hub happens only when the profile sets ``allow_download = true``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from llmswitch.kit import BackendError, InvalidOptionError, ModelNotFoundError, Target, default_threads
from llmswitch_transformers.info import DEVICES, DTYPES

_DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(?::\d+)?)$")
_MEMORY_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)?\s*$", re.I)
_MEMORY_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
                 "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
TORCH_PIN = "torch==2.13.0"
INSTALL_REMEDY = (
    f"pip install {TORCH_PIN} transformers accelerate gguf  (CPU; for an NVIDIA GPU add "
    "--index-url https://download.pytorch.org/whl/cu126 for torch), or pip install llmswitch-transformers"
)


@dataclass(frozen=True)
class ModelSource:
    """Where the weights are: a directory (local or a Hub cache snapshot), a Hub id to download, or a GGUF file.

    ``location`` is what ``from_pretrained`` is given; ``gguf_file`` names the file inside it for GGUF.
    ``directory`` is the folder on disk, None only for a Hub id that is not downloaded yet.
    """

    location: str
    directory: Path | None
    gguf_file: str | None = None
    hub_id: str | None = None

    @property
    def gguf_path(self) -> Path | None:
        return self.directory / self.gguf_file if self.directory is not None and self.gguf_file else None

    def describe(self) -> str:
        if self.gguf_path is not None:
            return str(self.gguf_path)
        if self.hub_id and self.directory is not None:
            return f"{self.hub_id} (Hugging Face cache: {self.directory})"
        return self.location


@dataclass(frozen=True)
class LoadSettings:
    """Everything that decides how a model is loaded: equal settings share one loaded model."""

    source: ModelSource
    device: str = "auto"
    dtype: str = "auto"
    max_memory: tuple[tuple[str, int], ...] = ()  # (device key, bytes), sorted
    threads: int = 1
    trust_remote_code: bool = False
    allow_download: bool = False
    chat_format: str = "auto"
    model_name: str = ""

    def load_key(self) -> tuple[object, ...]:
        """What makes a loaded model reusable. Threads and the prompt format never reload the weights."""
        return (self.source, _stamp(self.source), self.device, self.dtype, self.max_memory,
                self.trust_remote_code, self.allow_download)


def _stamp(source: ModelSource) -> tuple[object, ...]:
    """The files as they are on disk now: a replaced model is a different model."""
    path = source.gguf_path or (source.directory / "config.json" if source.directory else None)
    try:
        stat = path.stat() if path is not None else None
    except OSError:
        return ()
    return (stat.st_size, stat.st_mtime_ns) if stat is not None else ()


def load_settings(target: Target) -> LoadSettings:
    """Validate every option and find the model; raises with a remedy for anything wrong."""
    where = f"profile '{target.profile}'"
    device = str(target.option("device", "auto")).strip().lower()
    if not _DEVICE_PATTERN.match(device):
        raise InvalidOptionError(f"{where}: device must be one of {', '.join(DEVICES)}, not {device!r}",
                                 remedy="e.g. --set device=cuda:0 (or remove device to pick the best one present)")
    dtype = str(target.option("dtype", "auto"))
    if dtype not in DTYPES:
        raise InvalidOptionError(f"{where}: dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    threads = int(target.option("threads", 0) or 0) or default_threads()
    if threads < 1:
        raise InvalidOptionError(f"{where}: threads must be at least 1, not {threads}",
                                 remedy="remove threads for the default (half the usable CPUs)")
    allow_download = bool(target.option("allow_download", False))
    source = locate_model(target, allow_download=allow_download)
    return LoadSettings(
        source=source,
        device=device,
        dtype=dtype,
        max_memory=parse_max_memory(target.option("max_memory"), where),
        threads=threads,
        trust_remote_code=bool(target.option("trust_remote_code", False)),
        allow_download=allow_download,
        chat_format=str(target.option("chat_format", "auto")),
        model_name=source.hub_id or (Path(source.gguf_file).stem if source.gguf_file else Path(source.location).name),
    )


def parse_max_memory(value: object, where: str) -> tuple[tuple[str, int], ...]:
    """``{"0" = "8GiB", cpu = "30GiB"}`` -> (("0", bytes), ("cpu", bytes)); a bare number means GiB."""
    if not value:
        return ()
    if not isinstance(value, dict):
        raise InvalidOptionError(f"{where}: max_memory must be a table of device = size",
                                 remedy='e.g. max_memory = { "0" = "8GiB", cpu = "30GiB" }')
    limits: dict[str, int] = {}
    for raw_key, raw_size in value.items():
        key = str(raw_key).strip().lower()
        key = key[len("cuda:"):] if key.startswith("cuda:") else key
        if not (key.isdigit() or key in ("cpu", "mps")):
            raise InvalidOptionError(
                f"{where}: max_memory has device {raw_key!r}; devices are GPU numbers (0, 1, ...), cpu or mps",
                remedy='e.g. max_memory = { "0" = "8GiB", cpu = "30GiB" }')
        limits[key] = _bytes(raw_size, f"{where}: max_memory.{raw_key}")
    return tuple(sorted(limits.items()))


def _bytes(size: object, where: str) -> int:
    if isinstance(size, (int, float)) and not isinstance(size, bool) and size > 0:
        return int(size * 2**30)  # as the seeds' GPU_MAX_MEMORY=8.0: gigabytes
    match = _MEMORY_PATTERN.match(str(size)) if isinstance(size, str) else None
    if match is None or float(match.group(1)) <= 0:
        raise InvalidOptionError(f"{where} must be a size such as \"8GiB\", \"500MB\" or a number of GiB, "
                                 f"not {size!r}")
    return int(float(match.group(1)) * _MEMORY_UNITS[(match.group(2) or "GIB").upper()])


def locate_model(target: Target, *, allow_download: bool) -> ModelSource:
    """A local directory, a GGUF file, or a Hub id found in the cache (downloaded only when allowed)."""
    model = (target.model or "").strip()
    if not model:
        raise InvalidOptionError(
            f"profile '{target.profile}' names no model for the transformers backend",
            remedy="set model to a model directory, a .gguf file, or a Hugging Face model id you have "
            "downloaded, e.g. --model ~/models/Qwen2.5-0.5B-Instruct",
        )
    path = Path(model).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise InvalidOptionError(
                f"profile '{target.profile}': {path} is a file but not a GGUF model",
                remedy="point model at the model's directory (with config.json) or at a .gguf file",
            )
        return ModelSource(str(path.parent), path.parent, gguf_file=path.name)
    if path.is_dir():
        return _directory_source(path, target.profile)
    if _looks_like_path(model):
        raise ModelNotFoundError(
            f"profile '{target.profile}': there is no model at {path} (no such file or directory)",
            remedy="check the path, or point model at a model directory, a .gguf file or a Hugging Face id",
            backend="transformers",
        )
    return _hub_source(model, target.profile, allow_download)


def _looks_like_path(model: str) -> bool:
    return model.startswith(("/", ".", "~")) or model.lower().endswith(".gguf") or model.count("/") > 1 \
        or os.sep != "/" and os.sep in model


def _directory_source(path: Path, profile: str) -> ModelSource:
    if (path / "config.json").is_file():
        return ModelSource(str(path), path)
    ggufs = sorted(child.name for child in path.glob("*.gguf"))
    if len(ggufs) == 1:
        return ModelSource(str(path), path, gguf_file=ggufs[0])
    if ggufs:
        raise InvalidOptionError(
            f"profile '{profile}': {path} holds {len(ggufs)} GGUF files ({', '.join(ggufs[:4])})",
            remedy=f"set model to the one you want, e.g. --model {path / ggufs[0]}",
        )
    raise ModelNotFoundError(
        f"profile '{profile}': {path} is not a transformers model (no config.json, no .gguf file)",
        remedy="point model at the folder that holds config.json and the weights (*.safetensors), or at a "
        ".gguf file",
        backend="transformers",
    )


def hub_cache_dir() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def _hub_source(model_id: str, profile: str, allow_download: bool) -> ModelSource:
    """Look ``model_id`` up in the Hugging Face cache without touching the network."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        raise BackendError("cannot look in the Hugging Face cache: huggingface_hub is not installed",
                           remedy=INSTALL_REMEDY, backend="transformers") from None

    cached = try_to_load_from_cache(model_id, "config.json")
    if isinstance(cached, str):
        return ModelSource(model_id, Path(cached).parent, hub_id=model_id)
    if allow_download:
        return ModelSource(model_id, None, hub_id=model_id)
    raise ModelNotFoundError(
        f"model '{model_id}' is not in the Hugging Face cache ({hub_cache_dir()}), and profile '{profile}' "
        "does not allow downloads, so nothing was downloaded",
        remedy=f"set allow_download = true in the profile to let llmswitch download it from the Hugging Face Hub "
        f"(llmswitch profiles add {profile} --backend transformers --model {model_id} --set allow_download=true "
        f"--replace), or download it yourself (hf download {model_id}), or point model at a local directory or "
        ".gguf file",
        backend="transformers",
    )
