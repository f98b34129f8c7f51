"""What the anthropic backend declares: its options, key variable, default endpoint and price table.

Plain data, importable without any HTTP library (``llmswitch plugins`` and ``profiles show`` read it).
"""

from __future__ import annotations

from llmswitch.kit import BackendInfo, BatchLimits, OptionSpec

NAME = "anthropic"
KEY_ENV = "ANTHROPIC_API_KEY"
BASE_URL_ENV = "ANTHROPIC_BASE_URL"
DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_MODEL = "claude-sonnet-5-5"
DEFAULT_TIMEOUT_S = 120.0
# The Messages API requires max_tokens; this is used when neither the profile nor the command line sets it.
# Not smaller: current models think by default, and thinking tokens count against it.
DEFAULT_MAX_TOKENS = 4096
KEYS_PAGE = "https://console.anthropic.com/settings/keys"
API_VERSION = "2023-06-01"  # the anthropic-version header the Messages API is documented with
# When models reach end of life (Anthropic's deprecation table, as data: doctor warns before the date).
RETIRED_MODELS = {
    "claude-opus-4-5": "January 22nd, 2027",
    "claude-opus-4-5-20251101": "January 22nd, 2027",
    "claude-sonnet-4-5": "November 30th, 2026",
    "claude-sonnet-4-5-20250929": "November 30th, 2026",
}
STATUS_PAGE = "https://status.anthropic.com"

# https://docs.anthropic.com/en/docs/build-with-claude/batch-processing: 100,000 requests or 256 MB per batch.
BATCH_LIMITS = BatchLimits(max_requests=100_000, max_bytes=256 * 1024 * 1024)

INFO = BackendInfo(
    name=NAME,
    summary="Anthropic's Claude models through the Messages API",
    default_model=DEFAULT_MODEL,
    key_env=KEY_ENV,
    base_url_env=BASE_URL_ENV,
    default_base_url=DEFAULT_BASE_URL,
    options=(
        OptionSpec("base_url", "str", None, f"API root without /v1 (default {BASE_URL_ENV}, else {DEFAULT_BASE_URL})"),
        OptionSpec("api_key", "str", None, f"the API key (better: leave it in {KEY_ENV})", secret=True),
        OptionSpec("api_key_env", "str", None, f"the variable that holds the key (default {KEY_ENV})"),
        OptionSpec("timeout", "float", DEFAULT_TIMEOUT_S, "seconds to wait for an answer to start, and between pieces"),
        OptionSpec("headers", "table", None, "extra HTTP headers sent with every request (a table of strings)"),
        OptionSpec("anthropic_version", "str", None, f"the anthropic-version header (default {API_VERSION})"),
        OptionSpec(
            "count_with_api", "bool", True,
            "count tokens with the (free) /v1/messages/count_tokens endpoint; false: estimate offline",
        ),
    ),
    prices=("llmswitch_anthropic", "prices.toml"),
    price_catalog_providers=("anthropic",),  # LiteLLM's catalogue
    profiles={"anthropic": {"model": DEFAULT_MODEL, "description": "Anthropic's API"}},
    key_help=f"at {KEYS_PAGE} (Anthropic keys start with sk-ant-)",
    batch_limits=BATCH_LIMITS,
)
