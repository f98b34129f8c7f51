"""Reading a client's JSON body: typed fields, text content, and a clear 400 for anything else.

Both protocols read the same shapes (a string or a list of ``{"type": "text", "text": ...}`` parts, numbers,
stop sequences); a feature llmswitch cannot honour (images, tools, several choices) is refused with a sentence
naming it, never dropped: an answer that ignored part of the request would look like the model's fault.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

from llmswitch.serve.failures import GatewayRequestError


def parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise GatewayRequestError(f"the request body is not valid JSON ({error})") from None
    if not isinstance(body, dict):
        raise GatewayRequestError("the request body must be a JSON object")
    return body


def required_str(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise GatewayRequestError(f"'{name}' is required and must be a string", param=name)
    return value


def optional_number(body: Mapping[str, Any], name: str, kind: type = float, *, minimum: float | None = None) -> Any:
    """The number in ``body[name]`` (None when absent or null), of ``kind``, at least ``minimum`` if given."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise GatewayRequestError(f"'{name}' must be {'an integer' if kind is int else 'a number'}", param=name)
    # Python's JSON reader takes NaN, Infinity and 1e999; no backend does, so they are the client's mistake
    if kind is float and not (abs(value) <= sys.float_info.max):  # false for NaN too
        shown = json.dumps(value) if isinstance(value, float) else "an integer that large"
        raise GatewayRequestError(f"'{name}' must be a finite number, not {shown}", param=name)
    if minimum is not None and value < minimum:
        raise GatewayRequestError(f"'{name}' must be at least {minimum:g}, not {value!r}", param=name)
    return kind(value)


def optional_bool(body: Mapping[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise GatewayRequestError(f"'{name}' must be true or false", param=name)
    return value


def stop_sequences(value: Any, name: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise GatewayRequestError(f"'{name}' must be a string or a list of strings", param=name)


def text_of(content: Any, where: str) -> str:
    """The text of a message's content: a string, or a list of text parts (joined)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        pieces = []
        for part in content:
            if not isinstance(part, dict):
                raise GatewayRequestError(f"{where}: each content part must be an object")
            kind = part.get("type")
            if kind != "text":
                raise GatewayRequestError(
                    f"{where}: content of type '{kind}' is not supported by llmswitch serve (text only)")
            text = part.get("text")
            if not isinstance(text, str):
                raise GatewayRequestError(f"{where}: a text part needs a 'text' string")
            pieces.append(text)
        return "".join(pieces)
    raise GatewayRequestError(f"{where}: content must be a string or a list of text parts")


def refuse_unsupported(body: Mapping[str, Any], unsupported: Mapping[str, Any]) -> None:
    """Refuse fields llmswitch cannot honour, unless they hold their harmless default (``name -> default``)."""
    for name, harmless in unsupported.items():
        value = body.get(name)
        if value is None or value == harmless or (isinstance(harmless, tuple) and value in harmless):
            continue
        raise GatewayRequestError(f"'{name}' is not supported by llmswitch serve", param=name)
