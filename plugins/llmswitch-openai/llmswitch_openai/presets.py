"""Named presets for the servers people point this backend at: ``preset = "groq"`` in a profile.

Each preset is plain profile values; the profile's own keys win over them. Hosted services name the
variable holding their key (so that key, and never ``OPENAI_API_KEY``, is sent to them). Local servers name
no variable: they work without a key, and a key is only sent when the profile sets ``api_key_env``. Local
servers serve whatever model they were started with, so their presets name no model: set ``model``, or let
the "model not found" message list what the server has.
"""

from __future__ import annotations

from typing import Any

# Servers you run yourself cost nothing per token; say so rather than "unknown". (A LiteLLM proxy is not
# here: it forwards to paid providers.)
_SELF_HOSTED: dict[str, Any] = {"price_input_per_mtok": 0.0, "price_output_per_mtok": 0.0}

PRESETS: dict[str, dict[str, Any]] = {
    # ---- hosted OpenAI-compatible APIs --------------------------------------------------------------
    "groq": {
        "base_url": "https://api.groq.com/openai/v1",
        "api_key_env": "GROQ_API_KEY",
        "model": "llama-3.3-70b-versatile",
        "description": "Groq's OpenAI-compatible API",
    },
    "together": {
        "base_url": "https://api.together.xyz/v1",
        "api_key_env": "TOGETHER_API_KEY",
        "model": "meta-llama/Llama-3.3-70B-Instruct-Turbo",
        "description": "Together AI's OpenAI-compatible API",
    },
    "openrouter": {
        "base_url": "https://openrouter.ai/api/v1",
        "api_key_env": "OPENROUTER_API_KEY",
        "model": "openai/gpt-4o-mini",
        "description": "OpenRouter (many providers behind one OpenAI-compatible API)",
    },
    "deepseek": {
        "base_url": "https://api.deepseek.com/v1",
        "api_key_env": "DEEPSEEK_API_KEY",
        "model": "deepseek-chat",
        "description": "DeepSeek's API",
    },
    "mistral": {
        "base_url": "https://api.mistral.ai/v1",
        "api_key_env": "MISTRAL_API_KEY",
        "model": "mistral-small-latest",
        "description": "Mistral's API (OpenAI-compatible chat completions)",
    },
    "fireworks": {
        "base_url": "https://api.fireworks.ai/inference/v1",
        "api_key_env": "FIREWORKS_API_KEY",
        "model": "accounts/fireworks/models/llama-v3p1-8b-instruct",
        "description": "Fireworks AI's OpenAI-compatible API",
    },
    # ---- servers you run yourself --------------------------------------------------------------------
    "vllm": {
        "base_url": "http://127.0.0.1:8000/v1",
        "description": "a vLLM server (`vllm serve MODEL`, port 8000)",
        **_SELF_HOSTED,
    },
    "llamacpp-server": {
        "base_url": "http://127.0.0.1:8080/v1",
        "description": "llama.cpp's llama-server (`llama-server -m FILE.gguf`, port 8080)",
        **_SELF_HOSTED,
    },
    "llama-cpp-python": {
        "base_url": "http://127.0.0.1:8000/v1",
        "description": "llama-cpp-python's server (`python -m llama_cpp.server --model FILE.gguf`, port 8000)",
        **_SELF_HOSTED,
    },
    "lmstudio": {
        "base_url": "http://127.0.0.1:1234/v1",
        "description": "LM Studio's local server (Developer tab, port 1234)",
        **_SELF_HOSTED,
    },
    "ollama-openai": {
        "base_url": "http://127.0.0.1:11434/v1",
        "model": "llama3.2",
        "description": "Ollama through its OpenAI-compatible endpoint (port 11434)",
        **_SELF_HOSTED,
    },
    "instructlab": {
        "base_url": "http://127.0.0.1:8000/v1",
        "description": "InstructLab's server (`ilab model serve`, port 8000)",
        **_SELF_HOSTED,
    },
    "litellm": {
        "base_url": "http://127.0.0.1:4000/v1",
        "description": "a LiteLLM proxy (`litellm --model MODEL`, port 4000); set api_key_env for a virtual key",
    },
}
