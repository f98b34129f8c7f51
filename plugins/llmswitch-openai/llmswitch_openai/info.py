"""What the ``openai`` backend declares: its options, generation extras, presets and price table.

Pure data and the standard library: this module is imported at start-up for ``llmswitch plugins``.
"""

from __future__ import annotations

from llmswitch.kit import BackendInfo, BatchLimits, Crash, OptionSpec
from llmswitch_openai.presets import PRESETS

OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_TIMEOUT_S = 120.0

OPTIONS = (
    OptionSpec(
        "base_url",
        "str",
        None,
        "the OpenAI-compatible endpoint, usually ending in /v1 (default: OPENAI_BASE_URL, else OpenAI's API)",
    ),
    OptionSpec("api_key", "str", None, "the API key itself (prefer api_key_env)", secret=True),
    OptionSpec(
        "api_key_env",
        "str",
        None,
        "the environment variable holding the key; a custom base_url only gets a key when this names one",
    ),
    OptionSpec("organization", "str", None, "OpenAI organization id, sent as OpenAI-Organization"),
    OptionSpec("project", "str", None, "OpenAI project id, sent as OpenAI-Project"),
    OptionSpec("headers", "table", None, 'extra HTTP headers, e.g. {"X-Title" = "llmswitch"}'),
    OptionSpec("timeout", "float", DEFAULT_TIMEOUT_S, "seconds to wait for each read from the server"),
    OptionSpec(
        "extra_body",
        "table",
        None,
        "extra request fields for server-specific settings, e.g. {repetition_penalty = 1.1} for vLLM",
    ),
    OptionSpec(
        "include_usage",
        "bool",
        True,
        "ask for token usage in streams (stream_options); servers that refuse it are retried without",
    ),
)

# Generation settings beyond the common ones, accepted as ``-o NAME VALUE`` or in a profile.
GENERATION_EXTRAS = (
    OptionSpec("frequency_penalty", "float", description="penalise tokens by how often they appeared (-2..2)"),
    OptionSpec("presence_penalty", "float", description="penalise tokens that appeared at all (-2..2)"),
    OptionSpec(
        "reasoning_effort",
        "str",
        description="reasoning models: how hard to think",
        choices=("minimal", "low", "medium", "high"),
    ),
    OptionSpec("repetition_penalty", "float", description="vLLM / llama.cpp servers: repetition penalty"),
    OptionSpec("min_p", "float", description="vLLM / llama.cpp servers: min-p sampling"),
)

# https://platform.openai.com/docs/guides/batch: at most 50,000 requests and 200 MB per batch input file.
BATCH_LIMITS = BatchLimits(max_requests=50_000, max_bytes=200 * 1024 * 1024)

INFO = BackendInfo(
    name="openai",
    summary="OpenAI and every OpenAI-compatible server (vLLM, llama.cpp, LM Studio, Groq, OpenRouter, ...)",
    options=OPTIONS,
    default_model=DEFAULT_MODEL,
    key_env="OPENAI_API_KEY",
    key_required=True,
    base_url_env="OPENAI_BASE_URL",
    default_base_url=OPENAI_BASE_URL,
    generation_extras=GENERATION_EXTRAS,
    prices=("llmswitch_openai", "prices.toml"),
    presets=PRESETS,
    # LiteLLM's catalogue: api.openai.com's models (presets for other servers keep their own prices).
    price_catalog_providers=("openai", "text-completion-openai"),
    profiles={"openai": {"model": "gpt-5-mini", "description": "OpenAI's API"}},
    key_help="at https://platform.openai.com/api-keys (and that the organization or project is the right one)",
    # The servers people run locally that speak this protocol, by their usual port.
    start_servers=(
        (8000, "vLLM: `vllm serve MODEL --port 8000` (older versions: "
               "`python -m vllm.entrypoints.openai.api_server --model MODEL --port 8000`)"),
        (8080, "the llama.cpp server: `llama-server -m /path/to/model.gguf --port 8080`"),
        (11434, "Ollama: `ollama serve` (or open the Ollama app), with base_url http://127.0.0.1:11434/v1"),
    ),
    batch_limits=BATCH_LIMITS,
    # A model missing from a server the profile points at, and a server out of memory: how the usual servers
    # are told to serve it, or to use less.
    served_model_help="ask for a model the server serves (`curl {base_url}/models` lists them), or start it with "
    "this one (vLLM: `vllm serve {model}`; llama.cpp: `llama-server -m FILE --alias {model}`)",
    crash_remedies={Crash.OUT_OF_MEMORY: "restart the server with less memory: vLLM `--max-model-len 2048` (or a "
                    "lower `--gpu-memory-utilization`); llama.cpp server fewer `--n-gpu-layers` or a smaller "
                    "`--ctx-size`"},
)
