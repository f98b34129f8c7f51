"""The llamacpp backend: GGUF models in-process with llama.cpp, offline, no key.

With no ``model_path`` it runs a tiny demo model that a package ships (SmolLM2-135M-Instruct, or Gemma 3 270M by
name: see ``embedded``), so ``llmswitch chat --profile local "Say hello"`` works on a fresh machine. Importing this module
is cheap: llama-cpp-python is imported by the first hook that needs it.

Layout: ``defaults`` (the constants ``INFO`` declares), ``settings`` (options to load settings, the model
file), ``embedded`` (the demo models), ``gguf`` (header reader), ``prompts`` (chat formats), ``runtime`` (loaded models and their locks),
``generate`` (the token loop), ``preflight`` + ``probe`` (the crash-safe check in a child process),
``checks`` (health, for doctor).
"""

from __future__ import annotations

from collections.abc import Iterator

from llmswitch.kit import (
    BackendInfo,
    Crash,
    HealthReport,
    OptionSpec,
    Request,
    Requirement,
    Response,
    StreamEvent,
    Target,
    TokenCount,
    hookimpl,
)
from llmswitch_llamacpp.defaults import (
    DEFAULT_DEMO,
    DEFAULT_N_BATCH,
    DEFAULT_N_CTX,
    FORMATS,
    GPU_BUILD,
    ILLEGAL_INSTRUCTION_REMEDY,
    LLAMA_DISTRIBUTION,
    MODEL_FILE_REMEDY,
    OUT_OF_MEMORY_REMEDY,
)


def demo_notice(target: Target) -> str | None:
    """The first chat's note about the demo model (see ``embedded.demo_notice``); importing ``embedded`` only
    for a llamacpp profile keeps every other profile's start-up from paying for it."""
    from llmswitch_llamacpp.embedded import demo_notice as notice

    return notice(target)


INFO = BackendInfo(
    name="llamacpp",
    summary="GGUF models in-process with llama.cpp (offline, no key; a tiny demo model until you set model_path)",
    default_model=DEFAULT_DEMO,
    key_env=None,
    key_required=False,
    options=(
        OptionSpec("model_path", "path", None, f"the GGUF file to run (default: the tiny demo model {DEFAULT_DEMO})"),
        OptionSpec("n_ctx", "int", DEFAULT_N_CTX, "context window in tokens (prompt + answer)"),
        OptionSpec("n_threads", "int", None, "CPU threads (default: half the usable CPUs, at least 1)"),
        OptionSpec("n_gpu_layers", "int", 0, "layers to offload to a GPU build (-1 = all, 0 = CPU only)"),
        OptionSpec("n_batch", "int", DEFAULT_N_BATCH, "prompt tokens evaluated per batch"),
        OptionSpec("chat_format", "str", "auto",
                   "prompt format: auto (GGUF chat template, else by model family), template, transcript, "
                   "chatml, gemma, llama-3", choices=FORMATS),
        OptionSpec("seed", "int", None, "default sampling seed (default: random)"),
    ),
    generation_extras=(
        OptionSpec("repeat_penalty", "float", 1.0, "penalise repeated tokens (1.0 = off)"),
    ),
    prices=("llmswitch_llamacpp", "prices.toml"),
    notice=demo_notice,
    model_option="model_path",  # the file run; `model` is only a label for it
    profiles={"local": {
        "model": DEFAULT_DEMO,
        "description": "a tiny demo model (llama.cpp, offline); for real answers point it at a GGUF file: "
        "llmswitch profiles add local --backend llamacpp --model my-model --set model_path=/path/to/model.gguf "
        "--replace",
    }},
    requirements=(Requirement("llama_cpp", LLAMA_DISTRIBUTION, note=GPU_BUILD),),
    crash_remedies={
        Crash.ILLEGAL_INSTRUCTION: ILLEGAL_INSTRUCTION_REMEDY,
        Crash.OUT_OF_MEMORY: OUT_OF_MEMORY_REMEDY,
        Crash.MODEL_FILE_MISSING: MODEL_FILE_REMEDY,
    },
)


@hookimpl
def llmswitch_backends() -> list[BackendInfo]:
    return [INFO]


@hookimpl
def complete(target: Target, request: Request) -> Response:
    from llmswitch_llamacpp import generate, runtime, settings

    loaded = settings.load_settings(target)
    return generate.complete(runtime.loaded_model(loaded), loaded, target, request)


@hookimpl
def stream(target: Target, request: Request) -> Iterator[StreamEvent]:
    from llmswitch_llamacpp import generate, runtime, settings

    # Loading happens on the first next(), in whichever thread iterates (a UI's worker, not its event loop);
    # a failure there reaches the caller as the stream's error, with nothing lost.
    loaded = settings.load_settings(target)
    yield from generate.stream(runtime.loaded_model(loaded), loaded, target, request)


@hookimpl
def count_tokens(target: Target, request: Request) -> TokenCount:
    from llmswitch_llamacpp import generate, runtime, settings

    loaded = settings.load_settings(target)
    _, tokens = generate.prompt_for(runtime.vocabulary(loaded), loaded, request)
    return TokenCount(len(tokens), exact=True, method="llama.cpp tokenizer")


@hookimpl
def health(target: Target, timeout: float, offline: bool) -> HealthReport:
    # (The module is not called ``health``: importing it would replace this hook on the package.)
    from llmswitch_llamacpp.checks import health_report

    return health_report(target, timeout)
