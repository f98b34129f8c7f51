"""What the ollama backend declares: options, generation extras, the default endpoint and price table.

Plain data, importable without httpx (``llmswitch plugins`` and ``profiles show`` read it).
"""

from __future__ import annotations

from llmswitch.kit import BackendInfo, Crash, OptionSpec

NAME = "ollama"
BASE_URL_ENV = "OLLAMA_HOST"
DEFAULT_PORT = 11434
DEFAULT_BASE_URL = f"http://127.0.0.1:{DEFAULT_PORT}"
DEFAULT_MODEL = "llama3.2"
# Generous: the first request after a while loads the model into memory before the first byte comes back.
DEFAULT_TIMEOUT_S = 300.0

# Sampling settings that go into the request's ``options`` object, as Ollama names them.
OPTION_EXTRAS = (
    OptionSpec("num_ctx", "int", None, "context window in tokens (Ollama's default is small: often 2048-4096)"),
    OptionSpec("repeat_penalty", "float", None, "penalty for repeating tokens (1.0 = none)"),
    OptionSpec("repeat_last_n", "int", None, "how far back repeat_penalty looks (0 = off, -1 = num_ctx)"),
    OptionSpec("min_p", "float", None, "drop tokens less likely than min_p times the likeliest one"),
    OptionSpec("presence_penalty", "float", None, "penalty for tokens that already appeared"),
    OptionSpec("frequency_penalty", "float", None, "penalty growing with how often a token appeared"),
    OptionSpec("num_gpu", "int", None, "layers to offload to the GPU"),
    OptionSpec("num_thread", "int", None, "CPU threads to use"),
)
# Settings that sit at the top level of the request body.
TOP_LEVEL_EXTRAS = (
    OptionSpec("keep_alive", "str", None, 'how long the model stays loaded after the call: "5m", "1h", "-1" '
               '(forever), "0" (unload now)'),
    OptionSpec("think", "bool", None, "let a thinking model think first (its thoughts are not shown)"),
)

INFO = BackendInfo(
    name=NAME,
    summary="A local or remote Ollama server (/api/chat, no key)",
    default_model=DEFAULT_MODEL,
    key_env=None,
    key_required=False,
    base_url_env=BASE_URL_ENV,
    default_base_url=DEFAULT_BASE_URL,
    options=(
        OptionSpec("base_url", "str", None,
                   f"the server, e.g. http://gpu-box:{DEFAULT_PORT} (default {BASE_URL_ENV}, else {DEFAULT_BASE_URL})"),
        OptionSpec("timeout", "float", DEFAULT_TIMEOUT_S,
                   "seconds to wait for the answer to start (a model may need loading), and between pieces"),
        OptionSpec("headers", "table", None, "extra HTTP headers (e.g. for a proxy that wants Authorization)"),
    ),
    generation_extras=OPTION_EXTRAS + TOP_LEVEL_EXTRAS,
    prices=("llmswitch_ollama", "prices.toml"),
    profiles={"ollama": {"model": DEFAULT_MODEL, "description": "a local Ollama server"}},
    start_servers=((DEFAULT_PORT, f"Ollama: `ollama serve` (or open the Ollama app), or set base_url (or "
                                  f"{BASE_URL_ENV}) to where it runs"),),
    model_help="`ollama pull {model}` (`ollama list` shows the models you have)",
    crash_remedies={Crash.OUT_OF_MEMORY: "set a smaller num_ctx (e.g. 2048) or fewer num_gpu layers in the profile, "
                    "or use a smaller model, or a smaller quantization of {model}"},
)
