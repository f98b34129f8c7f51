"""Loaded models, once per process, each with a lock; and the checks that need torch (device, dtype).

torch and transformers are imported here, by the first hook that needs a model, never at start-up.
A model and its tokenizer are loaded once and shared by every turn (REPL, TUI); a generation holds the
model's lock from its first token to its last, because ``generate`` on one model object is not meant to
run twice at once. ``count_tokens`` needs only the tokenizer and loads nothing else.

Every load passes ``local_files_only`` unless the profile allows downloads, so transformers never reaches
the network on its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from llmswitch.kit import (
    BackendError,
    BadResponseError,
    LLMSwitchError,
    ModelNotFoundError,
    UnsupportedOptionError,
)
from llmswitch_transformers.info import MEMORY_REMEDY
from llmswitch_transformers.settings import INSTALL_REMEDY, LoadSettings

CUDA_BUILD_REMEDY = (
    "install a torch build with CUDA: pip install --force-reinstall torch --index-url "
    "https://download.pytorch.org/whl/cu126 (pick the CUDA version your driver supports: nvidia-smi shows it); "
    "or set device = \"cpu\""
)
_DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass
class LoadedModel:
    """A model and its tokenizer, with what we learnt loading them."""

    model: Any
    tokenizer: Any
    settings: LoadSettings
    device: str
    dtype: str
    load_s: float
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def context_length(self) -> int | None:
        value = getattr(self.model.config, "max_position_embeddings", None)
        return int(value) if isinstance(value, int) and value > 0 else None


_models: dict[tuple[object, ...], LoadedModel] = {}
_tokenizers: dict[tuple[object, ...], Any] = {}
_registry_lock = threading.Lock()


def libraries() -> tuple[ModuleType, ModuleType]:
    """Import torch and transformers, quietly: their progress bars and notices would mix with the answer."""
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise BackendError(f"the transformers backend cannot import {exc.name or exc}: {exc}",
                           remedy=INSTALL_REMEDY, backend="transformers") from None
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    _silence_gguf_progress()
    return torch, transformers


def _silence_gguf_progress() -> None:
    """transformers' GGUF loader draws a tqdm bar that no verbosity setting turns off: give it a silent one."""
    from functools import partial

    from huggingface_hub.utils import disable_progress_bars

    disable_progress_bars()
    try:
        from tqdm.auto import tqdm
        from transformers import modeling_gguf_pytorch_utils as gguf_loader
    except ImportError:  # an older transformers without GGUF support, or no tqdm: nothing to silence
        return
    gguf_loader.tqdm = partial(tqdm, disable=True)  # type: ignore[attr-defined]


def resolve_device(settings: LoadSettings, torch: ModuleType) -> str:
    """The device to run on; a device that is not there is refused with the reason, never replaced."""
    asked = settings.device
    if asked == "auto":
        if torch.cuda.is_available():
            return "cuda:0"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    if asked.startswith("cuda"):
        if torch.version.cuda is None:
            raise UnsupportedOptionError(
                f"device = {asked!r}, but this torch ({torch.__version__}) was built without CUDA",
                remedy=CUDA_BUILD_REMEDY)
        if not torch.cuda.is_available():
            raise UnsupportedOptionError(
                f"device = {asked!r}, but torch sees no CUDA device (no driver, or CUDA_VISIBLE_DEVICES hides it)",
                remedy="check `nvidia-smi` and CUDA_VISIBLE_DEVICES, or set device = \"cpu\"")
        index = int(asked.partition(":")[2] or 0)
        count = torch.cuda.device_count()
        if index >= count:
            raise UnsupportedOptionError(
                f"device = {asked!r}, but there {'is' if count == 1 else 'are'} only {count} CUDA "
                f"device{'s' if count != 1 else ''} (cuda:0 to cuda:{count - 1})",
                remedy="pick one of them (CUDA_VISIBLE_DEVICES renumbers them from 0)")
        return f"cuda:{index}"
    if asked == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_built():
            raise UnsupportedOptionError("device = 'mps', but this torch was built without MPS (Apple silicon only)",
                                         remedy="set device = \"cpu\" (or \"cuda\" on an NVIDIA machine)")
        if not mps.is_available():
            raise UnsupportedOptionError("device = 'mps', but MPS is not available on this Mac (macOS 12.3+ on "
                                         "Apple silicon is needed)", remedy="set device = \"cpu\"")
    return asked


def resolve_dtype(settings: LoadSettings, device: str, torch: ModuleType) -> str:
    """float32 on a CPU, bfloat16 on a GPU that has it, else float16; an explicit choice is checked."""
    if settings.dtype == "auto":
        if device.startswith("cuda"):
            return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        return "float16" if device == "mps" else "float32"
    if settings.dtype == "bfloat16" and device.startswith("cuda") and not torch.cuda.is_bf16_supported():
        raise UnsupportedOptionError(
            f"dtype = 'bfloat16', but {torch.cuda.get_device_name(device)} has no bfloat16 support",
            remedy="set dtype = \"float16\" (or \"auto\")")
    return settings.dtype


def check_max_memory(settings: LoadSettings, device: str) -> None:
    """A memory limit for a device the model will not use cannot be honoured: refuse it."""
    for key, _ in settings.max_memory:
        if key.isdigit() and not device.startswith("cuda"):
            raise UnsupportedOptionError(
                f"max_memory limits GPU {key}, but the model runs on {device}",
                remedy="remove the GPU entries from max_memory, or set device = \"cuda\"")
        if key == "mps" and device != "mps":
            raise UnsupportedOptionError(f"max_memory limits mps, but the model runs on {device}",
                                         remedy="remove mps from max_memory")


def estimate_bytes(parameters: int, dtype: str) -> int:
    return parameters * _DTYPE_BYTES.get(dtype, 4)


def loaded_model(settings: LoadSettings) -> LoadedModel:
    """The model for these settings, loading it on first use."""
    key = settings.load_key()
    model = _models.get(key)
    if model is not None:
        return model
    with _registry_lock:
        model = _models.get(key)
        if model is None:
            model = _models[key] = load(settings)
    return model


def tokenizer_for(settings: LoadSettings) -> Any:
    """The tokenizer alone (for counting): the loaded model's, or loaded by itself without the weights."""
    model = _models.get(settings.load_key())
    if model is not None:
        return model.tokenizer
    key = (settings.source, settings.trust_remote_code, settings.allow_download)
    with _registry_lock:
        tokenizer = _tokenizers.get(key)
        if tokenizer is None:
            libraries()
            tokenizer = _tokenizers[key] = _guarded(settings, lambda: _load_tokenizer(settings))
    return tokenizer


def unload_all() -> None:
    """Forget every loaded model (tests, and applications that want the memory back)."""
    with _registry_lock:
        _models.clear()
        _tokenizers.clear()


def load(settings: LoadSettings) -> LoadedModel:
    """Load the tokenizer and the model on the checked device and dtype (also used by the probe)."""
    torch, transformers = libraries()
    device = resolve_device(settings, torch)
    dtype = resolve_dtype(settings, device, torch)
    check_max_memory(settings, device)
    started = time.perf_counter()

    def load_both() -> tuple[Any, Any]:
        options = _hub_options(settings)
        # The configuration first: a model that needs its own code is refused here, before anything else.
        options["config"] = transformers.AutoConfig.from_pretrained(settings.source.location, **options)
        tokenizer = _load_tokenizer(settings)
        options["dtype"] = getattr(torch, dtype)
        if settings.max_memory:
            # accelerate places the layers within the limits (GPU first, then the CPU).
            options["device_map"] = "auto"
            options["max_memory"] = {int(key) if key.isdigit() else key: size for key, size in settings.max_memory}
        model = transformers.AutoModelForCausalLM.from_pretrained(settings.source.location, **options)
        if not settings.max_memory:
            model.to(device)
        model.eval()
        return tokenizer, model

    tokenizer, model = _guarded(settings, load_both)
    return LoadedModel(model=model, tokenizer=tokenizer, settings=settings, device=device, dtype=dtype,
                       load_s=time.perf_counter() - started)


def _hub_options(settings: LoadSettings) -> dict[str, Any]:
    options: dict[str, Any] = {"trust_remote_code": settings.trust_remote_code,
                               "local_files_only": not settings.allow_download}
    if settings.source.gguf_file:
        options["gguf_file"] = settings.source.gguf_file
    return options


def _load_tokenizer(settings: LoadSettings) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(settings.source.location, **_hub_options(settings))


@contextmanager
def _hub_offline_unless_allowed(settings: LoadSettings) -> Iterator[None]:
    """Hold huggingface_hub offline for a load that may not download.

    ``local_files_only`` keeps transformers from fetching files, but huggingface_hub still reaches the Hub
    for other things on the way (its user-agent detection fetches a registry of "agent harnesses" on the
    first request it builds). Its offline switch, ``HF_HUB_OFFLINE``, is read at each call from
    ``huggingface_hub.constants``, so it is set there for the duration of the load. Callers hold
    ``_registry_lock`` (or are the probe's own process), so loads never race on it.
    """
    from huggingface_hub import constants

    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = bool(before or not settings.allow_download)
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before


def _guarded(settings: LoadSettings, action: Any) -> Any:
    """Run a load (offline unless allowed) and turn what transformers and torch raise into errors with remedies."""
    try:
        with _hub_offline_unless_allowed(settings):
            return action()
    except LLMSwitchError:
        raise
    except Exception as exc:
        raise explain_load_failure(exc, settings) from None


def explain_load_failure(exc: BaseException, settings: LoadSettings) -> LLMSwitchError:
    """One table from what a load raised to what it means and what to do (the probe uses it too)."""
    text = f"{type(exc).__name__}: {exc}"
    lowered = text.lower()
    where = settings.source.describe()
    if "trust_remote_code" in lowered or "custom code" in lowered:
        return UnsupportedOptionError(
            f"{where} needs its own Python code to load, and the profile does not trust remote code",
            remedy="read the model's code first: trust_remote_code = true runs it on this machine with your "
            "rights. If you trust it, set trust_remote_code = true in the profile",
        )
    if is_out_of_memory(lowered):
        return BackendError(f"not enough memory to load {where}: {_first_line(text)}",
                            remedy=memory_remedy(settings), backend="transformers")
    if "gguf" in lowered and "not supported" in lowered:
        return UnsupportedOptionError(
            f"transformers cannot load {where}: {_first_line(str(exc))}",
            remedy="run this GGUF with the llamacpp backend (backend = \"llamacpp\", model_path = the file), or "
            "use the model's original (safetensors) release with this backend",
        )
    if isinstance(exc, OSError) or "does not appear to have" in lowered or "offline" in lowered:
        download = ("" if settings.allow_download else
                    "; the profile does not allow downloads, so nothing was downloaded (set allow_download = true "
                    "to fetch missing files from the Hugging Face Hub)")
        return ModelNotFoundError(f"cannot load {where}: {_first_line(str(exc))}",
                                  remedy=f"check that the model's files are all there{download}",
                                  backend="transformers")
    if isinstance(exc, (KeyError, ValueError)) and ("model_type" in lowered or "unrecognized" in lowered):
        return BadResponseError(
            f"this transformers does not know the model in {where}: {_first_line(str(exc))}",
            remedy="upgrade it (pip install --upgrade transformers), or set trust_remote_code = true if the "
            "model ships its own code and you trust it",
            backend="transformers",
        )
    return BadResponseError(f"transformers could not load {where}: {_first_line(text)}",
                            remedy="check the model files (`llmswitch doctor` tests a load in a separate process)",
                            backend="transformers")


def is_out_of_memory(lowered: str) -> bool:
    return any(words in lowered for words in ("out of memory", "outofmemoryerror", "cannot allocate",
                                               "memoryerror", "not enough memory", "offload_folder"))


def memory_remedy(settings: LoadSettings) -> str:
    return MEMORY_REMEDY.replace("{dtype_now}", f"; now {settings.dtype}")


def _first_line(text: str) -> str:
    line = next((part.strip() for part in text.splitlines() if part.strip()), text)
    return line[:400]
