"""Text that came from a model, a server or a file, made safe to show on a terminal.

A terminal obeys control characters and escape sequences in whatever it prints: OSC 52 writes the clipboard,
OSC 0 sets the window title, CSI 2J clears the screen, a carriage return or backspaces overwrite what was
shown. A model's answer (or an error page a server sends back) must not be able to do any of that, so every
face (the CLI, the REPL, the TUI, ``profiles``) shows such text through :func:`neutralize` when it goes to a
terminal. The raw text is kept everywhere else: in ``--json``, in the history, and when the output is piped.

What :func:`neutralize` does, character by character (so it is the same however a stream is split):

- newline and tab are kept: they are plain text;
- a carriage return is dropped: its only effect on a terminal is to let later text overwrite earlier text
  (``\\r\\n`` line endings still end lines);
- every other C0 control character (ESC included) becomes its visible Unicode "control picture"
  (ESC -> U+241B, BEL -> U+2407), DEL becomes U+2421, and the C1 controls U+0080-U+009F (which some terminals
  read as ESC-sequences: U+009B is a CSI) become ``<U+009B>``.

So an escape sequence is shown as inert text (``␛]52;c;...␇``), not obeyed, and nothing is silently lost.
"""

from __future__ import annotations

import re
from typing import IO, Any

# Everything below U+0020 except tab (\x09) and newline (\x0a), plus DEL and the C1 controls.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code == 0x0D:
        return ""
    if code < 0x20:
        return chr(0x2400 + code)  # the Unicode control pictures: ␀ ... ␟ (␛ for ESC)
    if code == 0x7F:
        return "\u2421"  # ␡
    return f"<U+{code:04X}>"


def neutralize(text: str) -> str:
    """``text`` with every control character except newline and tab made visible (or, for ``\\r``, dropped)."""
    if _CONTROL.search(text) is None:  # the common case: one scan, no copy
        return text
    return _CONTROL.sub(_visible, text)


_JSON_UNESCAPED = re.compile("[\x7f-\x9f]")  # json.dumps(ensure_ascii=False) escapes C0, not DEL and C1


def json_for_display(document: str, stream: IO[Any] | None) -> str:
    """A JSON text as it may be written to ``stream``: on a terminal, DEL and the C1 controls (which JSON
    leaves raw) are written as ``\\u009b`` escapes, so the document decodes to the same raw values."""
    if not is_terminal(stream) or _JSON_UNESCAPED.search(document) is None:
        return document
    return _JSON_UNESCAPED.sub(lambda match: f"\\u{ord(match.group()):04x}", document)


def is_terminal(stream: IO[Any] | None) -> bool:
    """Whether ``stream`` is a terminal (a closed or odd stream is not)."""
    if stream is None:
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def for_display(text: str, stream: IO[Any] | None) -> str:
    """``text`` as it may be written to ``stream``: neutralized on a terminal, raw when piped or redirected."""
    return neutralize(text) if is_terminal(stream) else text


__all__ = ["for_display", "is_terminal", "json_for_display", "neutralize"]
