"""The ``openai`` backend: OpenAI's API and every server that speaks its chat-completions protocol.

This module only declares the backend; the modules that talk HTTP (through :mod:`llmswitch.kit`) load on the
first call, so ``llmswitch --help`` and ``llmswitch plugins`` stay fast.

    [profiles.fast]
    backend = "openai"
    preset = "groq"                      # base_url, api_key_env and model of a known service

    [profiles.vllm]
    backend = "openai"
    base_url = "http://127.0.0.1:8000/v1"
    model = "Qwen/Qwen2.5-7B-Instruct"
    extra_body = { repetition_penalty = 1.05 }
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from llmswitch import kit
from llmswitch.kit import (
    BackendInfo,
    BatchAnswer,
    HealthReport,
    ProviderJob,
    Request,
    Response,
    StreamEvent,
    Target,
    TokenCount,
    hookimpl,
)

__version__ = "0.1.0"


@hookimpl
def llmswitch_backends() -> list[BackendInfo]:
    from llmswitch_openai.info import INFO

    return [INFO]


@hookimpl
def complete(target: Target, request: Request) -> Response:
    from llmswitch_openai import calls

    return calls.complete(target, request)


@hookimpl
async def acomplete(target: Target, request: Request) -> Response:
    from llmswitch_openai import calls

    return await calls.acomplete(target, request)


@hookimpl
def stream(target: Target, request: Request) -> Iterator[StreamEvent]:
    from llmswitch_openai import calls

    return calls.stream(target, request)


@hookimpl
def astream(target: Target, request: Request) -> AsyncIterator[StreamEvent]:
    from llmswitch_openai import calls

    return calls.astream(target, request)


@hookimpl
def astream_batches(target: Target, request: Request) -> AsyncIterator[Sequence[StreamEvent]]:
    from llmswitch_openai import calls

    return calls.astream_batches(target, request)


@hookimpl
def count_tokens(target: Target, request: Request) -> TokenCount:
    from llmswitch_openai import tokens

    return tokens.count_tokens(target.model, request)


@hookimpl
def health(target: Target, timeout: float, offline: bool) -> HealthReport:
    from llmswitch_openai import checks  # not "health": that name is this hook

    return kit.run_checks(checks.health(target, timeout, offline))


@hookimpl
async def ahealth(target: Target, timeout: float, offline: bool) -> HealthReport:
    from llmswitch_openai import checks

    return await kit.arun_checks(checks.health(target, timeout, offline))


# ---- the provider's batch service (``llmswitch batch --via provider``) ----------------------------------------


@hookimpl
def batch_line(target: Target, custom_id: str, request: Request) -> dict[str, Any]:
    from llmswitch_openai import batches

    return batches.batch_line(target, custom_id, request)


@hookimpl
def batch_submit(target: Target, lines: Sequence[dict[str, Any]]) -> ProviderJob:
    from llmswitch_openai import batches

    return batches.batch_submit(target, lines)


@hookimpl
def batch_retrieve(target: Target, job_id: str) -> ProviderJob:
    from llmswitch_openai import batches

    return batches.batch_retrieve(target, job_id)


@hookimpl
def batch_results(target: Target, job_id: str) -> Iterator[BatchAnswer]:
    from llmswitch_openai import batches

    return batches.batch_results(target, job_id)


@hookimpl
def batch_cancel(target: Target, job_id: str) -> ProviderJob:
    from llmswitch_openai import batches

    return batches.batch_cancel(target, job_id)
