"""Read a GGUF file's header in pure Python: metadata and tensor table, without loading the model.

``health`` uses this to say what a file is (architecture, context length, quantisation, size) and whether
it is whole, before anything native runs; the prompt format is chosen from the same metadata. Large arrays
(the vocabulary) are skipped, not kept: only their element type and length are recorded.

Layout (GGUF v2 and v3, little-endian): magic ``GGUF``, version u32, tensor count u64, metadata count u64,
the key/value pairs, one info record per tensor (name, dims, type, offset), padding to ``general.alignment``,
then the tensor data.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
# Arrays longer than this are summarised instead of kept (a vocabulary has 32k-262k strings).
KEEP_ARRAY_ITEMS = 64

# Metadata value types: code -> struct format (strings and arrays are handled apart).
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9

# ggml tensor types: code -> (elements per block, bytes per block), to compute where the data must end.
GGML_BLOCKS: dict[int, tuple[int, int]] = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 9: (32, 36),
    10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210), 15: (256, 292),
    16: (256, 66), 17: (256, 74), 18: (256, 98), 19: (256, 50), 20: (32, 18), 21: (256, 110),
    22: (256, 82), 23: (256, 136), 24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8),
    29: (256, 56), 30: (1, 2), 34: (256, 54), 35: (256, 66), 39: (32, 17),
}

# general.file_type -> the quantisation name people know (llama.cpp's LLAMA_FTYPE_MOSTLY_*).
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S",
    12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K",
    19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL",
    26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16",
    36: "TQ1_0", 37: "TQ2_0", 38: "MXFP4_MOE",
}


class GGUFError(Exception):
    """The file is not a usable GGUF file. ``kind`` is one of missing, unreadable, not_gguf, unsupported,
    truncated, corrupt; ``remedy`` says what to do."""

    def __init__(self, kind: str, message: str, remedy: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.remedy = remedy


@dataclass(frozen=True)
class ArraySummary:
    """A metadata array too long to keep: its element type code and length."""

    item_type: int
    length: int


@dataclass(frozen=True)
class GGUFInfo:
    """What a GGUF header says, plus what the file on disk holds."""

    path: Path
    version: int
    metadata: dict[str, Any]
    tensor_count: int
    file_size: int
    data_offset: int
    expected_size: int | None  # None when a tensor type is unknown to this reader
    unknown_tensor_types: tuple[int, ...] = field(default=())

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))

    @property
    def name(self) -> str | None:
        value = self.metadata.get("general.name")
        return str(value) if value else None

    @property
    def context_length(self) -> int | None:
        value = self.metadata.get(f"{self.architecture}.context_length")
        return int(value) if isinstance(value, int) else None

    @property
    def quantisation(self) -> str:
        code = self.metadata.get("general.file_type")
        if not isinstance(code, int):
            return "unknown"
        return FILE_TYPES.get(code, f"type {code}")

    @property
    def chat_template(self) -> str | None:
        value = self.metadata.get("tokenizer.chat_template")
        return value if isinstance(value, str) and value.strip() else None

    @property
    def size_label(self) -> str | None:
        value = self.metadata.get("general.size_label")
        return str(value) if value else None

    def describe(self) -> str:
        """One line for ``doctor``: 'gemma3 (Gemma 3 270m, 270M), Q4_K_M, context 32768, 241.4 MiB'."""
        about = ", ".join(part for part in (self.name, self.size_label) if part)
        context = f"context {self.context_length}" if self.context_length else "context unknown"
        head = f"{self.architecture} ({about})" if about else self.architecture
        return f"{head}, {self.quantisation}, {context}, {format_size(self.file_size)}"


def format_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover - the loop always returns


class _Reader:
    """A cursor over the mapped file that turns running off the end into a 'truncated' error."""

    def __init__(self, buffer: mmap.mmap | bytes, path: Path) -> None:
        self.buffer = buffer
        self.size = len(buffer)
        self.offset = 0
        self.path = path

    def _need(self, count: int) -> None:
        if count < 0 or self.offset + count > self.size:
            raise GGUFError(
                "truncated",
                f"{self.path} is truncated: its header runs past the end of the file ({self.size} bytes)",
                "the download or copy was cut short; fetch the file again",
            )

    def unpack(self, fmt: str) -> Any:
        size = struct.calcsize("<" + fmt)
        self._need(size)
        (value,) = struct.unpack_from("<" + fmt, self.buffer, self.offset)
        self.offset += size
        return value

    def skip(self, count: int) -> None:
        self._need(count)
        self.offset += count

    def string(self) -> str:
        length = self.unpack("Q")
        if length > 1 << 30:
            raise _corrupt(self.path, f"a string of {length} bytes at offset {self.offset}")
        self._need(length)
        raw = bytes(self.buffer[self.offset : self.offset + length])
        self.offset += length
        return raw.decode("utf-8", errors="replace")

    def value(self, type_code: int) -> Any:
        if type_code in _SCALARS:
            return self.unpack(_SCALARS[type_code])
        if type_code == _STRING:
            return self.string()
        if type_code == _ARRAY:
            item_type = self.unpack("I")
            length = self.unpack("Q")
            if length <= KEEP_ARRAY_ITEMS:
                return [self.value(item_type) for _ in range(length)]
            self.skip_array(item_type, length)
            return ArraySummary(item_type, length)
        raise _corrupt(self.path, f"unknown metadata value type {type_code} at offset {self.offset - 4}")

    def skip_array(self, item_type: int, length: int) -> None:
        if item_type in _SCALARS:
            self.skip(struct.calcsize("<" + _SCALARS[item_type]) * length)
        elif item_type == _STRING:
            for _ in range(length):
                self.skip(self.unpack("Q"))
        else:
            for _ in range(length):
                self.value(item_type)


def _corrupt(path: Path, what: str) -> GGUFError:
    return GGUFError("corrupt", f"{path} has a damaged GGUF header: {what}", "fetch the file again")


def read_gguf(path: str | os.PathLike[str]) -> GGUFInfo:
    """Parse the header of ``path``; raise :class:`GGUFError` saying what is wrong and what to do."""
    path = Path(path)
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise GGUFError("missing", f"{path} does not exist", "check model_path, or download the model") from None
    except IsADirectoryError:
        raise GGUFError("unreadable", f"{path} is a directory", "set model_path to the .gguf file itself") from None
    except OSError as exc:
        raise GGUFError("unreadable", f"cannot read {path}: {exc.strerror}", "check the file's permissions") from None
    with handle:
        file_size = os.fstat(handle.fileno()).st_size
        if file_size == 0:
            raise GGUFError("not_gguf", f"{path} is empty", "fetch the model file again")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            return _parse(_Reader(mapped, path), path, file_size)


def _parse(reader: _Reader, path: Path, file_size: int) -> GGUFInfo:
    head = bytes(reader.buffer[:4])
    if head != MAGIC:
        raise GGUFError(
            "not_gguf",
            f"{path} is not a GGUF file (it starts with {head!r}, not {MAGIC!r})",
            "llama.cpp needs a .gguf file: download a GGUF build of the model, or convert it with llama.cpp's "
            "convert_hf_to_gguf.py",
        )
    reader.skip(4)
    version = reader.unpack("I")
    if version not in (2, 3):
        hint = "it looks big-endian" if version > 0xFFFF else f"version {version}"
        raise GGUFError(
            "unsupported",
            f"{path} is a GGUF file this reader does not support ({hint})",
            "use a current little-endian GGUF file (version 3); re-convert it with a recent llama.cpp",
        )
    tensor_count = reader.unpack("Q")
    kv_count = reader.unpack("Q")
    if kv_count > 1_000_000 or tensor_count > 10_000_000:
        raise _corrupt(path, f"{kv_count} metadata entries and {tensor_count} tensors")
    metadata: dict[str, Any] = {}
    for _ in range(kv_count):
        key = reader.string()
        metadata[key] = reader.value(reader.unpack("I"))

    data_end_relative = 0
    unknown: set[int] = set()
    for _ in range(tensor_count):
        reader.string()  # the tensor's name
        n_dims = reader.unpack("I")
        if n_dims > 8:
            raise _corrupt(path, f"a tensor with {n_dims} dimensions")
        elements = 1
        for _ in range(n_dims):
            elements *= reader.unpack("Q")
        type_code = reader.unpack("I")
        offset = reader.unpack("Q")
        block = GGML_BLOCKS.get(type_code)
        if block is None:
            unknown.add(type_code)
            data_end_relative = max(data_end_relative, offset)
        else:
            per_block, block_bytes = block
            data_end_relative = max(data_end_relative, offset + elements // per_block * block_bytes)

    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0:
        alignment = DEFAULT_ALIGNMENT
    data_offset = -(-reader.offset // alignment) * alignment
    expected = None if unknown else data_offset + data_end_relative
    info = GGUFInfo(path, version, metadata, tensor_count, file_size, data_offset, expected, tuple(sorted(unknown)))
    # Unknown types give only a lower bound (the last tensor's start); that still catches most truncation.
    must_reach = expected if expected is not None else data_offset + data_end_relative
    if file_size < must_reach:
        raise GGUFError(
            "truncated",
            f"{path} is truncated: its tensors need {must_reach} bytes but the file has {file_size} "
            f"({100 * file_size / must_reach:.0f}%)",
            "the download or copy was cut short; fetch the file again",
        )
    return info
