"""From a profile's options to the settings a model is loaded with, and which file that is.

Thread count: this machine class (2 cores, shared) decides the default. Measured with the embedded model
generating 64 tokens: idle, 2 threads gave 83 tokens/s and 1 thread 71; with the other core busy, 2 threads
fell to 13-33 tokens/s (llama.cpp's OpenMP workers spin-wait for a core that is taken) while 1 thread stayed
at 70. So the default is half the CPUs this process may use, at least 1: llama-cpp-python's own default,
one thread on two cores, and never more threads than cores when hyper-threads come in pairs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from llmswitch.kit import InvalidOptionError, ModelNotFoundError, Target, default_threads
from llmswitch_llamacpp.defaults import DEFAULT_DEMO, DEFAULT_N_BATCH, DEFAULT_N_CTX
from llmswitch_llamacpp.embedded import DEMO_MODELS, DemoModel, demo_for


@dataclass(frozen=True)
class LoadSettings:
    """Everything that decides how a model is loaded: equal settings share one loaded model."""

    model_path: Path
    n_ctx: int = DEFAULT_N_CTX
    n_threads: int = 1
    n_gpu_layers: int = 0
    n_batch: int = DEFAULT_N_BATCH
    chat_format: str = "auto"
    demo: DemoModel | None = None  # set when the file is one of the demo models a package ships
    model_name: str = DEFAULT_DEMO  # what answers report as their model
    format_reason: str | None = None  # why chat_format, when it is not the profile's own choice

    def file_key(self) -> tuple[object, ...]:
        """The model file as it is on disk now: a replaced or edited file is a different model."""
        try:
            stat = self.model_path.stat()
        except OSError:
            return (str(self.model_path),)
        return (str(self.model_path.resolve()), stat.st_size, stat.st_mtime_ns)

    def load_key(self) -> tuple[object, ...]:
        """What makes a loaded model reusable: the file and the load settings.

        The prompt format is not part of it: changing ``chat_format`` never reloads the weights.
        """
        return (*self.file_key(), self.n_ctx, self.n_threads, self.n_gpu_layers, self.n_batch)


def model_path_for(target: Target) -> tuple[Path, DemoModel | None]:
    """The GGUF file a target runs, and the demo model it is when it is one (found or assembled on first use)."""
    explicit = target.option("model_path")
    if explicit:
        return Path(str(explicit)).expanduser(), None
    demo = demo_for(target.model, explicit)
    if demo is not None:
        from llmswitch_llamacpp.embedded import demo_model_path

        return demo_model_path(demo.name), demo
    model = target.model
    if model.endswith(".gguf") or os.sep in model:
        return Path(model).expanduser(), None
    raise ModelNotFoundError(
        f"profile '{target.profile}' asks llama.cpp for model '{model}' but names no GGUF file",
        remedy=f"set model_path to the file, e.g. llmswitch profiles add {target.profile} --backend llamacpp "
        f"--model {model} --set model_path=/path/to/{model}.gguf --replace (or pass -m /path/to/file.gguf); "
        f"the built-in demo models are {' and '.join(repr(name) for name in DEMO_MODELS)}",
        backend="llamacpp",
    )


def load_settings(target: Target) -> LoadSettings:
    """Validate the numeric options and find the model file."""
    n_ctx = int(target.option("n_ctx", DEFAULT_N_CTX))
    n_threads = int(target.option("n_threads", 0)) or default_threads()
    n_gpu_layers = int(target.option("n_gpu_layers", 0))
    n_batch = int(target.option("n_batch", DEFAULT_N_BATCH))
    for name, value, low in (("n_ctx", n_ctx, 16), ("n_threads", n_threads, 1), ("n_batch", n_batch, 1)):
        if value < low:
            raise InvalidOptionError(
                f"profile '{target.profile}': {name} must be at least {low}, not {value}",
                remedy=f"set {name} to a positive number (or remove it for the default)",
            )
    if n_gpu_layers < -1:
        raise InvalidOptionError(
            f"profile '{target.profile}': n_gpu_layers must be -1 (all), 0 (none) or a layer count",
        )
    path, demo = model_path_for(target)
    # A profile that only sets model_path (keeping the built-in local's model name) runs another model: name
    # it after its file rather than claim it is the demo model.
    name = target.model if demo or (target.model and target.model not in DEMO_MODELS) else path.stem
    chat_format, format_reason = str(target.option("chat_format", "auto")), None
    if demo and chat_format == "auto" and demo.chat_format != "auto":
        chat_format, format_reason = demo.chat_format, demo.format_reason
    return LoadSettings(
        model_path=path,
        n_ctx=n_ctx,
        n_threads=n_threads,
        n_gpu_layers=n_gpu_layers,
        n_batch=n_batch,
        chat_format=chat_format,
        demo=demo,
        model_name=name or (demo.name if demo else path.stem),
        format_reason=format_reason,
    )
