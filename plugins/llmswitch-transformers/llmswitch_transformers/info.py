"""What the transformers backend declares (its options, as data): read at every start-up, so it imports
nothing but the contract."""

from __future__ import annotations

from llmswitch.kit import BackendInfo, Crash, OptionSpec

DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
DTYPES = ("auto", "float32", "bfloat16", "float16")
CHAT_FORMATS = ("auto", "template", "transcript")
# What to do when the model does not fit: the runtime's remedy ({dtype_now} becomes the dtype in use), and the
# one doctor gives for an out-of-memory crash it sees only as text.
MEMORY_REMEDY = (
    'use a smaller dtype (dtype = "bfloat16" or "float16"{dtype_now}), cap each device with max_memory (e.g. '
    'max_memory = { "0" = "8GiB", cpu = "30GiB" }) so the rest goes to the CPU, or a shorter context (a new '
    "conversation, a lower max_tokens); or a smaller model"
)

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
    crash_remedies={Crash.OUT_OF_MEMORY: MEMORY_REMEDY.replace("{dtype_now}", "")},
)
