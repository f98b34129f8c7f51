"""The transformers backend: Hugging Face models in-process with torch, offline by default, no key.

``model`` is a local model directory, a model id already in the Hugging Face cache, or a GGUF file (which
transformers de-quantizes on load). Importing this module is cheap: torch and transformers are imported by
the first hook that needs a model, so ``llmswitch --help`` and ``llmswitch plugins`` never load them.

Layout: ``settings`` (options, where the model is; no torch), ``runtime`` (loading, device and dtype checks,
loaded models and their locks), ``prompts`` (chat template or transcript), ``generate`` (the worker thread
and the streamer), ``probe`` (the check in a child process), ``checks`` (health, for doctor).
"""

from __future__ import annotations

from collections.abc import Iterator

from llmswitch.kit import (
    BackendInfo,
    HealthReport,
    OptionSpec,
    Request,
    Response,
    StreamEvent,
    Target,
    TokenCount,
    hookimpl,
)
from llmswitch_transformers.settings import CHAT_FORMATS, DEVICES, DTYPES

INFO = BackendInfo(
    name="transformers",
    summary="Hugging Face transformers models in-process with torch (a model folder, the Hub cache, or a GGUF "
    "file; offline, no key)",
    default_model=None,
    key_env=None,
    key_required=False,
    options=(
        OptionSpec("device", "str", "auto", "where to run: auto (CUDA, else MPS, else CPU), "
                   + ", ".join(DEVICES[1:])),
        OptionSpec("dtype", "str", "auto", "weights' precision: auto (float32 on CPU, bfloat16/float16 on a GPU), "
                   "float32, bfloat16, float16", choices=DTYPES),
        OptionSpec("max_memory", "table", None,
                   'most memory per device, e.g. { "0" = "8GiB", cpu = "30GiB" } (layers past it go to the CPU)'),
        OptionSpec("threads", "int", None, "CPU threads (default: half the usable CPUs, at least 1)"),
        OptionSpec("trust_remote_code", "bool", False,
                   "run Python code shipped with the model (needed by some; it runs with your rights, so off "
                   "unless you have read it)"),
        OptionSpec("allow_download", "bool", False,
                   "download a model missing from the Hugging Face cache (off: nothing touches the network)"),
        OptionSpec("chat_format", "str", "auto", "auto (the tokenizer's chat template, else a Q:/A: transcript), "
                   "template, transcript", choices=CHAT_FORMATS),
    ),
    generation_extras=(
        OptionSpec("repetition_penalty", "float", None, "penalise repeated tokens (1.0 = off, 1.1 = light)"),
        OptionSpec("no_repeat_ngram_size", "int", None, "never repeat an n-gram of this many tokens (0 = off)"),
        OptionSpec("min_p", "float", None, "drop tokens less likely than min_p times the likeliest"),
    ),
    prices=("llmswitch_transformers", "prices.toml"),
)


@hookimpl
def llmswitch_backends() -> list[BackendInfo]:
    return [INFO]


@hookimpl
def complete(target: Target, request: Request) -> Response:
    from llmswitch_transformers import generate, runtime, settings

    return generate.complete(runtime.loaded_model(settings.load_settings(target)), request)


@hookimpl
def stream(target: Target, request: Request) -> Iterator[StreamEvent]:
    from llmswitch_transformers import generate, runtime, settings

    # Loading happens on the first next(), in whichever thread iterates (a UI's worker, not its event loop).
    yield from generate.stream(runtime.loaded_model(settings.load_settings(target)), request)


@hookimpl
def count_tokens(target: Target, request: Request) -> TokenCount:
    from llmswitch_transformers import prompts, runtime, settings

    loaded = settings.load_settings(target)
    prompt = prompts.render(runtime.tokenizer_for(loaded), loaded.chat_format, request)
    return TokenCount(len(prompt.token_ids), exact=True, method="the model's tokenizer")


@hookimpl
def health(target: Target, timeout: float, offline: bool) -> HealthReport:
    # (The module is not called ``health``: importing it would replace this hook on the package.)
    from llmswitch_transformers.checks import health_report

    return health_report(target, timeout)
