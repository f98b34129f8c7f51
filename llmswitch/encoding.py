"""Text that should be UTF-8 and is not: the policy, stated here.

- from a server, an answer (every HTTP backend, streamed or whole) must be UTF-8: bytes that are not are a
  :class:`~llmswitch.errors.BadResponseError` naming the server (:mod:`llmswitch.kit.decoders`), the text before
  them kept, never text the model did not write. What is only shown in a message (an error body, an excerpt)
  is replaced (U+FFFD); :func:`server_json` parses JSON bytes that way.
- from the user (piped stdin, a command-line argument): replaced, with a warning saying so, since the user
  can fix the input (:func:`decode_input`, :func:`repair_argument`). Reading stdin as bytes also makes the
  locale's encoding irrelevant: a strict or non-UTF-8 locale cannot make reading fail.
"""

from __future__ import annotations

import json
from typing import Any

REPLACEMENT = "\ufffd"


def decode_input(data: bytes) -> tuple[str, bool]:
    """User input as text, and whether invalid UTF-8 had to be replaced (a leading BOM is dropped)."""
    try:
        return data.decode("utf-8-sig"), False
    except UnicodeDecodeError:
        return data.decode("utf-8-sig", "replace"), True


def repair_argument(text: str) -> tuple[str, bool]:
    """A command-line argument as valid text: Python keeps bytes that are not UTF-8 in argv as lone
    surrogates, which nothing downstream can store or send; they become U+FFFD."""
    try:
        text.encode("utf-8")
        return text, False
    except UnicodeEncodeError:
        pass
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that is no escaped byte (from the Python API, not a shell)
        raw = text.encode("utf-8", "replace")
    return raw.decode("utf-8", "replace"), True


def server_json(data: bytes) -> Any:
    """JSON bytes from a server, parsed; invalid UTF-8 in them becomes U+FFFD. Raises ValueError if the bytes
    are not JSON at all."""
    return json.loads(data.decode("utf-8-sig", "replace"))


__all__ = ["REPLACEMENT", "decode_input", "repair_argument", "server_json"]
