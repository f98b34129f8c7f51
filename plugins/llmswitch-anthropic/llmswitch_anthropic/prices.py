"""The price table shipped with the plugin (``prices.toml``), read from the package, never the network."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

from llmswitch.config import parse_toml


@lru_cache(maxsize=1)
def load_prices() -> dict[str, Any]:
    """``{"meta": {...}, "models": {name: {input_per_mtok, output_per_mtok, ...}}}``."""
    text = resources.files("llmswitch_anthropic").joinpath("prices.toml").read_text(encoding="utf-8")
    return parse_toml(text, "llmswitch_anthropic/prices.toml")
