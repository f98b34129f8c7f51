"""The transformers backend: Hugging Face models in-process with torch, offline by default, no key.

``model`` is a local model directory, a model id already in the Hugging Face cache, or a GGUF file (which
transformers de-quantizes on load). Importing this module is cheap: torch and transformers are imported by
the first hook that needs a model, so ``llmswitch --help`` and ``llmswitch plugins`` never load them.

Layout: ``info`` (what the backend declares), ``settings`` (options, where the model is; no torch), ``runtime`` (loading, device and dtype checks,
loaded models and their locks), ``prompts`` (chat template or transcript), ``generate`` (the worker thread
and the streamer), ``probe`` (the check in a child process), ``checks`` (health, for doctor).
"""

from __future__ import annotations

from collections.abc import Iterator

from llmswitch.kit import (
    BackendInfo,
    HealthReport,
    Request,
    Response,
    StreamEvent,
    Target,
    TokenCount,
    hookimpl,
)
from llmswitch_transformers.info import INFO


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
