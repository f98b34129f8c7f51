"""One rendering of an error for every face: the sentence, the remedy, keys masked, never a traceback."""

from __future__ import annotations

from llmswitch.errors import AuthError, describe
from llmswitch.secrets import remember_secret


def test_an_error_is_its_sentence_and_its_remedy_with_keys_masked() -> None:
    remember_secret("sk-describe-0123456789abcdef")
    error = AuthError("key sk-describe-0123456789abcdef was rejected", remedy="set OPENAI_API_KEY")
    assert describe(error) == "error: key sk-…cdef was rejected\nhint: set OPENAI_API_KEY"
    assert describe(error, hint_indent="  ").endswith("\n  hint: set OPENAI_API_KEY")
    assert describe(AuthError("no remedy")) == "error: no remedy"


def test_anything_else_is_an_unexpected_failure_to_report() -> None:
    text = describe(ZeroDivisionError("division by zero"))
    assert text.startswith("error: unexpected failure: ZeroDivisionError: division by zero\nhint: ")
    assert "LLMSWITCH_DEBUG=1" in text and "Traceback" not in text
