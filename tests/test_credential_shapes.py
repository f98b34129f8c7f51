"""llmswitch.secrets function by function: how credentials are recognised in headers, URLs, settings and free
text, and exactly how each is shown. Exact values, so a mutant that shows one more character fails."""

from __future__ import annotations

import base64

import pytest

from llmswitch.secrets import (
    excerpt,
    header_credential,
    is_secret_header,
    looks_like_a_key,
    mask_header,
    redact,
    remember_secret,
    secret_values,
    shown_setting,
    url_credentials,
)

LONG = "sk-abcdefghijklmnop"


@pytest.mark.parametrize("value, credential", [
    ("Bearer sk-abc", "sk-abc"), ("  Basic  dXNlcjpwYXNz ", "dXNlcjpwYXNz"), ("token abc", "abc"),
    ("BEARER x y", "x y"), ("sk-abc", "sk-abc"), ("apikey k", "k"), ("key k2", "k2"),
])
def test_the_credential_in_a_header_value_drops_the_scheme_word(value: str, credential: str) -> None:
    assert header_credential(value) == credential


def test_a_secret_header_is_shown_with_its_scheme_and_the_credential_masked() -> None:
    assert mask_header(f"Bearer {LONG}") == "Bearer sk-…mnop"
    assert mask_header(f"  Bearer {LONG}  ") == "Bearer sk-…mnop"
    assert mask_header(LONG) == "sk-…mnop"
    assert mask_header("Bearer short") == "Bearer ………"


@pytest.mark.parametrize("name, secret", [
    ("Authorization", True), ("proxy-authorization", True), ("Cookie", True), ("set-cookie", True),
    ("apikey", True), ("X-Api-Key", True), ("api-key", True), ("x_auth_token", True), ("X-Secret", True),
    ("password", True), (" Authorization ", True), ("X-Keyboard", False), ("Content-Type", False),
    ("tokenizer", False), ("X-Request-Id", False),
])
def test_secret_headers_are_known_by_name(name: str, secret: bool) -> None:
    assert is_secret_header(name) is secret


def test_url_credentials_are_the_user_info_its_parts_its_basic_form_and_secret_parameters() -> None:
    found = url_credentials("https://user:s3cretpassword@host/v1?key=AIzaXYZ123&model=x&api_key=")
    assert found == ["user:s3cretpassword", "user", "s3cretpassword",
                     base64.b64encode(b"user:s3cretpassword").decode(), "AIzaXYZ123"]
    encoded = url_credentials("https://us%40er:p%3Ass@h/")
    assert encoded[-1] == base64.b64encode(b"us@er:p:ss").decode()  # what a client sends, decoded first
    assert url_credentials(" https://only-token@h/?sig=abc&access_token=def ") == [
        "only-token", "only-token", base64.b64encode(b"only-token").decode(), "abc", "def"]
    assert url_credentials("https://host/v1?model=x") == []
    assert url_credentials("http://[::1") == []  # not a URL: nothing, never an exception


@pytest.mark.parametrize("value, is_key", [
    ("OPENAI_API_KEY", False), ("", False), ("   ", False), (" OPENAI_API_KEY ", False),
    ("sk-abc", True), ("AIzaSyAbc", True), ("gsk_x", True), ("my-key", True), ("has space", True),
    ("ABCDEFGHIJKLMNOPQRST", False), ("abcdefghijklmnopq", False), ("ABCDEFGH12345678XYZ", False),
    ("abcdefgh12345678xyz", True), ("abcdefgh1234567", False), ("X_abcdefgh12345678", True),
])
def test_a_key_in_api_key_env_is_told_from_a_variable_name(value: str, is_key: bool) -> None:
    assert looks_like_a_key(value) is is_key


def test_secret_values_finds_every_credential_in_a_profile() -> None:
    values = {"api_key": "k1", "token": "t1", "api_key_env": "sk-live-123", "base_url": "https://u:p@h",
              "model": "m", "headers": {"Authorization": "Bearer abc", "X-Trace": "zzz", "X-Api-Key": 12345},
              "n": 3}
    found = secret_values(values, {"token"})
    assert found[:7] == ["k1", "t1", "sk-live-123", "u:p", "u", "p", base64.b64encode(b"u:p").decode()]
    assert sorted(found[7:]) == ["12345", "Bearer abc", "abc"]
    assert secret_values({"api_key_env": "OPENAI_API_KEY", "api_key": 5, "headers": "not a table"}) == []
    assert secret_values({"prefix": "https://plain/host"}) == []


def test_shown_setting_masks_credentials_and_redacts_the_rest() -> None:
    assert shown_setting("api_key", LONG) == "sk-…mnop"
    assert shown_setting("token", LONG, {"token"}) == "sk-…mnop"
    assert shown_setting("token", LONG) == LONG  # not declared secret, not remembered: shown as written
    assert shown_setting("api_key_env", LONG) == "sk-…mnop"
    assert shown_setting("api_key_env", "OPENAI_API_KEY") == "OPENAI_API_KEY"
    assert shown_setting("base_url", "https://user:pw@host/v1?key=abcdefghijklmn") == "https://…@host/v1?key=ab…klmn"
    assert shown_setting("headers", {"Authorization": f"Bearer {LONG}", "X-Trace": "t", "X-Url": "https://a:b@h"}) \
        == {"Authorization": "Bearer sk-…mnop", "X-Trace": "t", "X-Url": "https://…@h"}
    assert shown_setting("stop", ["https://u:p@h", 3]) == ["https://…@h", 3]
    assert shown_setting("n", 5) == 5 and shown_setting("other", {"a": "b"}) == {"a": "b"}


def test_redact_masks_known_secrets_longest_first_and_urls_by_shape() -> None:
    remember_secret("abcdef123456")
    remember_secret("abcdef123456789")
    assert redact("key abcdef123456789 and abcdef123456") == "key ab…6789 and ab…3456"
    assert redact("see https://me:pw@h/x?token=zzzzzzzzzzzzzz&a=1") == "see https://…@h/x?token=zz…zzzz&a=1"
    assert redact("a=b and https://h/path") == "a=b and https://h/path"


def test_an_excerpt_is_decoded_masked_then_cut() -> None:
    remember_secret("abcdef123456789")
    assert excerpt(b"abc\xff", 10) == "abc\ufffd"
    assert excerpt("x" * 20, 5) == "xxxxx…" and excerpt("x" * 5, 5) == "xxxxx"
    assert excerpt(b"key=abcdef123456789 trailing", 10) == "key=ab…678…"  # masked before the cut
