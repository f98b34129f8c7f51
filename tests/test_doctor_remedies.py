"""The core's remedies: one for every case in the users' troubleshooting guides."""

from __future__ import annotations

import pytest

from llmswitch import errors, remedies
from llmswitch.secrets import Secret
from llmswitch.types import BackendInfo, Crash, Target


def installed(name: str) -> BackendInfo:
    """The backend's own declaration: the remedies below come from data the plugins declare."""
    from llmswitch.plugins import get_registry

    return get_registry().backend(name).info


OPENAI, ANTHROPIC, OLLAMA, LLAMACPP = (installed(name) for name in ("openai", "anthropic", "ollama", "llamacpp"))


def target(info: BackendInfo, *, base_url: str | None = None, model: str = "m", key: str | None = None,
           **options: object) -> Target:
    return Target(profile="p", backend=info.name, model=model, options=options, info=info,
                  base_url=base_url or info.default_base_url, key_variable=info.key_env,
                  api_key=Secret(key, f"env:{info.key_env}") if key else None)


@pytest.mark.parametrize(
    ("text", "problem", "detail"),
    [
        ("CUDA out of memory. Tried to allocate 2.00 GiB", "out_of_memory", None),
        ("No module named 'vllm'", "module_missing", "vllm"),
        ("ModuleNotFoundError: No module named 'llama_cpp.llama'", "module_missing", "llama_cpp.llama"),
        ("the subprocess died with signal 4 (SIGILL)", "illegal_instruction", None),
        ("Illegal instruction (core dumped)", "illegal_instruction", None),
        ("Model file not found: models/qwen.gguf", "model_file_missing", None),
        ("[Errno 2] No such file or directory: '/models/q.bin'", "model_file_missing", None),
        # What a typed error says by its class is not guessed from words (the error carries it).
        ("OPENAI_API_KEY not provided", None, None),
        ("Error: 401 Unauthorized", None, None),
        ("[Errno 111] Connection refused", None, None),
        ("model 'x' not found, try pulling it first", None, None),
        ("read timed out", None, None),
        ("429 Rate Limit", None, None),
    ],
)
def test_crashes_are_classified_and_nothing_else(text: str, problem: str | None, detail: str | None) -> None:
    found = remedies.classify(text)
    if problem is None:
        assert found is None
    else:
        assert found == (problem, detail)


def test_key_not_set_names_the_variable() -> None:
    error = errors.MissingKeyError("p", "OPENAI_API_KEY")
    assert "export OPENAI_API_KEY=" in remedies.remedy_for_error(error, target(OPENAI))  # its own remedy
    assert remedies.key_missing(target(OPENAI)).startswith("export OPENAI_API_KEY=... (or put OPENAI_API_KEY=...")


def test_key_rejected_points_at_the_providers_key_page_and_masks_the_key() -> None:
    key = "sk-proj-rejected-0000-wxyz"
    openai = remedies.remedy_for_error(errors.AuthError("401"), target(OPENAI, key=key))
    assert openai == ("the server rejected the key sk-…wxyz (from env:OPENAI_API_KEY): check it is copied whole, "
                      "not revoked and meant for this server, at https://platform.openai.com/api-keys (and that "
                      "the organization or project is the right one)")
    anthropic = remedies.remedy_for_error(errors.AuthError("401"), target(ANTHROPIC, key="sk-ant-0000000-wxyz"))
    assert "console.anthropic.com" in anthropic and "start with sk-ant-" in anthropic
    proxy = remedies.remedy_for_error(errors.AuthError("401"), target(ANTHROPIC, key="sk-ant-0000000-wxyz",
                                                                       base_url="http://127.0.0.1:4000"))
    assert "anthropic.com" not in proxy and "whoever runs the server" in proxy
    assert key not in openai


@pytest.mark.parametrize(
    ("url", "first"),
    [
        ("http://127.0.0.1:8000/v1", "vLLM: `vllm serve MODEL --port 8000`"),
        ("http://localhost:8080/v1", "the llama.cpp server: `llama-server -m /path/to/model.gguf --port 8080`"),
        ("http://127.0.0.1:11434/v1", "Ollama: `ollama serve`"),
    ],
)
def test_connection_refused_names_the_likely_server_first(url: str, first: str) -> None:
    remedy = remedies.remedy_for_error(errors.UnreachableError("refused"), target(OPENAI, base_url=url))
    assert remedy.startswith(f"nothing listens at {url}: start the server, e.g. {first}")
    for other in ("vllm serve", "llama-server", "ollama serve"):
        assert other in remedy


def test_connection_refused_for_ollama_and_for_a_hosted_api() -> None:
    ollama = remedies.remedy_for_error(errors.UnreachableError("refused"), target(OLLAMA))
    assert ollama.startswith("nothing listens at http://127.0.0.1:11434: start the server, e.g. Ollama: `ollama serve`")
    hosted = remedies.remedy_for_error(errors.UnreachableError("refused"), target(OPENAI))
    assert hosted.startswith("cannot reach https://api.openai.com/v1: check the network connection")


def test_model_not_found_pulls_with_ollama_and_lists_for_servers() -> None:
    assert remedies.remedy_for_error(errors.ModelNotFoundError("x"), target(OLLAMA, model="qwen3")) == (
        "`ollama pull qwen3` (`ollama list` shows the models you have)")
    served = remedies.remedy_for_error(errors.ModelNotFoundError("x"),
                                       target(OPENAI, base_url="http://127.0.0.1:8000/v1", model="q"))
    assert "`curl http://127.0.0.1:8000/v1/models` lists them" in served
    hosted = remedies.remedy_for_error(errors.ModelNotFoundError("x"), target(OPENAI, model="gpt-9"))
    assert "llmswitch prices --backend openai" in hosted


def test_out_of_memory_lowers_gpu_layers_or_context() -> None:
    local = remedies.remedy_for_text("CUDA out of memory", target(LLAMACPP))
    assert local == ("lower n_gpu_layers (e.g. 20 instead of 30) or n_ctx (e.g. 2048), or use a smaller "
                     "quantization (Q4_K_M instead of Q8_0)")
    server = remedies.remedy_for_text("out of memory", target(OPENAI, base_url="http://127.0.0.1:8000/v1"))
    assert server is not None and "--max-model-len 2048" in server and "--n-gpu-layers" in server


@pytest.mark.parametrize(
    ("module", "command"),
    [
        ("openai", "pip install openai"),
        ("anthropic", "pip install anthropic"),
        ("vllm", "pip install vllm"),
        ("llama_cpp", "pip install llama-cpp-python"),
        ("some_sdk.sub", "pip install some-sdk"),
    ],
)
def test_module_not_installed_names_the_distribution(module: str, command: str) -> None:
    error = errors.PluginError(f"plugin x raised an unexpected error in health: ModuleNotFoundError: "
                               f"No module named '{module}'", remedy="this is a bug in x")
    assert remedies.remedy_for_error(error, None).startswith(command)


def test_a_missing_plugin_module_names_the_plugin_distribution() -> None:
    remedy = remedies.module_missing("llmswitch_ollama")
    assert remedy.startswith("pip install 'llmswitch[ollama]'") and "llmswitch-ollama" in remedy  # extra, then dist


def test_illegal_instruction_gives_the_rebuild_flags_the_plugin_declares() -> None:
    error = errors.BadResponseError("the model process died: Illegal instruction")
    remedy = remedies.remedy_for_error(error, target(LLAMACPP))
    assert remedy == LLAMACPP.crash_remedies[Crash.ILLEGAL_INSTRUCTION]
    assert remedy.startswith("the llama.cpp library was compiled for CPU instructions this machine lacks")
    assert 'CMAKE_ARGS="-DGGML_NATIVE=OFF' in remedy and "pip install --force-reinstall" in remedy
    assert "llama-cpp-python" in remedy and "-DGGML_AVX2=OFF" in remedy
    # A SIGILL names no library: a target whose backend declares nothing, or none at all, gets it too.
    bare = BackendInfo(name="bare", summary="")
    assert remedies.remedy_for_error(error, target(bare)) == remedy
    assert remedies.remedy_for_text("Illegal instruction (core dumped)", None) == remedy


def test_a_crash_the_backend_does_not_declare_gets_generic_words() -> None:
    """Out of memory and a missing model file are the failing backend's own business: another's words
    (llama.cpp's n_gpu_layers) would mislead, so a backend that declares none gets the core's generic ones."""
    local = BackendInfo(name="bare", summary="", model_option="weights")
    oom = remedies.remedy_for_text("MemoryError", target(local))
    assert oom == "the model does not fit in memory: use a smaller model or a shorter context, or close other programs"
    served = remedies.remedy_for_text("out of memory", target(BackendInfo(name="s", summary=""),
                                                               base_url="http://127.0.0.1:9000/v1"))
    assert served is not None and served.startswith("the server at http://127.0.0.1:9000/v1 ran out of memory")
    missing = remedies.remedy_for_text("no such file", target(local, weights="/m/w.bin"))
    assert missing == "check that the model file /m/w.bin exists (`ls -l /m/w.bin`), or point weights at a model " \
                      "file you have"
    assert remedies.remedy_for_text("no such file", target(local)) == \
        "check that the model file exists (the profile's weights)"
    for text in (oom, served, missing):
        assert "n_gpu_layers" not in text and "gguf" not in text


def test_the_plugins_declarations_are_what_doctor_says() -> None:
    """The words come from each backend's INFO: llamacpp's model file and memory settings, openai's servers."""
    assert remedies.remedy_for_text("model file: no such file", target(LLAMACPP, model_path="/m/q.gguf")) == (
        "check that the model file /m/q.gguf exists (`ls -l /m/q.gguf`), or point model_path at a .gguf file you "
        "have")
    # With no model_path the profile runs the demo model: no file to name, so the generic words.
    assert remedies.remedy_for_text("no such file", target(LLAMACPP)) == \
        "check that the model file exists (the profile's model_path)"
    ollama = remedies.remedy_for_text("out of memory", target(OLLAMA, model="qwen3"))
    assert ollama is not None and "num_ctx" in ollama and "quantization of qwen3" in ollama
    transformers = remedies.remedy_for_text("torch.OutOfMemoryError: CUDA out of memory",
                                            target(installed("transformers")))
    assert transformers is not None and transformers.startswith('use a smaller dtype (dtype = "bfloat16" or "float16")')
    assert "max_memory" in transformers and "n_gpu_layers" not in transformers


def test_rate_limit_says_how_long_to_wait() -> None:
    remedy = remedies.remedy_for_error(errors.RateLimitError("429", retry_after=7), target(OPENAI))
    assert remedy.startswith("wait 7s and try again")


def test_unrecognised_failures_still_get_a_next_step() -> None:
    assert "LLMSWITCH_DEBUG=1" in remedies.remedy_for_error(errors.BadResponseError("weird"), None)
    assert remedies.remedy_for_text("something odd", None) is None


def test_a_backend_without_declared_help_still_gets_a_next_step() -> None:
    bare = BackendInfo(name="bare", summary="", key_env="BARE_KEY", default_base_url="http://127.0.0.1:9999/v1")
    refused = remedies.remedy_for_error(errors.UnreachableError("refused"), target(bare))
    assert refused.startswith("nothing listens at http://127.0.0.1:9999/v1: start the server")
    rejected = remedies.remedy_for_error(errors.AuthError("401"), target(bare, key="k-000000000wxyz"))
    assert "with whoever runs the server" in rejected
