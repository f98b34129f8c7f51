"""Every bundled backend against the plugin contract (llmswitch.testing.conformance), as a plugin author runs it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import llmswitch_anthropic
import llmswitch_echo
import llmswitch_llamacpp
import llmswitch_ollama
import llmswitch_openai
import llmswitch_transformers
import pytest

from llmswitch.testing.conformance import BackendContract, HTTPBackendContract
from llmswitch.testing.server import LocalServer
from tests.plugins.test_llamacpp_support import _demo_file
from tests.servers.anthropic_server import anthropic_server
from tests.servers.ollama_server import ollama_server
from tests.servers.openai_server import openai_server


class TestEchoContract(BackendContract):
    plugin = llmswitch_echo
    backend = "echo"


class TestOpenAIContract(HTTPBackendContract):
    plugin = llmswitch_openai
    backend = "openai"

    def server(self) -> LocalServer:
        return openai_server()

    def profile(self, url: str | None) -> dict[str, Any]:
        return {"base_url": f"{url}/v1", "model": "test-model", "timeout": 5.0}


class TestAnthropicContract(HTTPBackendContract):
    plugin = llmswitch_anthropic
    backend = "anthropic"

    def server(self) -> LocalServer:
        return anthropic_server()

    def profile(self, url: str | None) -> dict[str, Any]:
        return {"base_url": url, "model": "claude-haiku-4-5", "timeout": 5.0}


class TestOllamaContract(HTTPBackendContract):
    plugin = llmswitch_ollama
    backend = "ollama"

    def server(self) -> LocalServer:
        return ollama_server()

    def profile(self, url: str | None) -> dict[str, Any]:
        return {"base_url": url, "model": "llama3.2", "timeout": 5.0}


@pytest.mark.slow
class TestLlamacppContract(BackendContract):
    plugin = llmswitch_llamacpp
    backend = "llamacpp"
    settings = {"max_tokens": 8}

    def profile(self, url: str | None) -> dict[str, Any]:
        return {"model": "smollm2-135m-instruct", "model_path": str(_demo_file("smollm2-135m-instruct"))}


@pytest.mark.slow
class TestTransformersContract(BackendContract):
    plugin = llmswitch_transformers
    backend = "transformers"
    settings = {"max_tokens": 8}

    @pytest.fixture(scope="class")
    def tiny_model(self, tmp_path_factory: pytest.TempPathFactory) -> Path:
        from tests.plugins.tiny_transformers import build

        return build(tmp_path_factory.mktemp("contract-model"))["chat"]

    @pytest.fixture(autouse=True)
    def model_folder(self, tiny_model: Path) -> None:
        self.folder = tiny_model

    def profile(self, url: str | None) -> dict[str, Any]:
        return {"model": str(self.folder)}
