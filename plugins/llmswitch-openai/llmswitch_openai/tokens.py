"""Counting input tokens: exact with tiktoken when the model's encoding is already on disk, else an estimate.

tiktoken downloads an encoding the first time it is asked for one, and re-downloads a cached file whose
checksum does not match. llmswitch never fetches a tokenizer, so before asking tiktoken for an encoding
this module finds tiktoken's cache file itself and checks its SHA-256; only a file that tiktoken will
accept as it is gets used. Everything else is an estimate marked ``exact=False``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from llmswitch.types import Request, TokenCount

_BLOB = "https://openaipublic.blob.core.windows.net/encodings/"

# Each encoding's file, as tiktoken names it, and the checksum tiktoken verifies (tiktoken_ext.openai_public).
ENCODING_FILES: dict[str, tuple[str, str]] = {
    "o200k_base": (_BLOB + "o200k_base.tiktoken", "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"),
    "cl100k_base": (_BLOB + "cl100k_base.tiktoken", "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"),
}

# OpenAI's chat format: every message costs its text plus about three tokens of framing, and the reply is
# primed with three more (the figures of OpenAI's own counting recipe).
TOKENS_PER_MESSAGE = 3
TOKENS_FOR_REPLY = 3


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
    """The tiktoken encoding, loaded only from a verified file on disk; None when it is not there."""
    if name in _loaded:
        return _loaded[name]
    if cached_encoding_file(name) is None:
        return None
    try:
        import tiktoken

        encoding = tiktoken.get_encoding(name)
    except Exception:  # tiktoken broken or the file replaced since the check: count by estimate instead
        return None
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
