"""Per-key rate limits and budgets of ``llmswitch serve``, with the official openai and anthropic SDKs as clients
(retries off, so each refusal is seen as it is sent). The limits are the router's (``llmswitch.router.limits``)
and the budgets the ledger's, applied to a gateway key; keys stay in the file as hashes only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
import tomli_w

from llmswitch.errors import ConfigError
from llmswitch.ledger import Ledger, LedgerEntry
from llmswitch.serve.keys import GatewayKeys, hash_key
from tests.servers.gateway import RunningGateway, reset_upstream
from tests.servers.http import LocalServer
from tests.servers.openai_server import openai_server

ALICE, BOB = "lsw-alice-key-0123456789", "lsw-bob-key-0123456789"
PRICED = {"price_input_per_mtok": 1000.0, "price_output_per_mtok": 1000.0}  # $0.001 a token: budgets bite fast


@pytest.fixture(scope="module")
def shared_upstream() -> Iterator[LocalServer]:
    with openai_server() as running:
        yield running


@pytest.fixture
def upstream(shared_upstream: LocalServer) -> LocalServer:
    return reset_upstream(shared_upstream, tokens=4)


def write_config(config_file: Path, upstream: LocalServer, alice: dict[str, Any],
                 **profile: Any) -> None:
    document = {
        "serve": {"keys": [{"name": "alice", "hash": hash_key(ALICE), **alice},
                           {"name": "bob", "hash": hash_key(BOB)}]},
        "profiles": {
            "up": {"backend": "openai", "model": "test-model", "base_url": f"{upstream.url}/v1",
                   "api_key": "sk-upstream-0123456789abcdef", "timeout": 10.0, "max_retries": 0, **PRICED,
                   **profile},
            "slow-echo": {"backend": "echo", "chunk_size": 1, "delay": 0.1},
        },
    }
    config_file.write_text(tomli_w.dumps(document))


def openai_client(gateway: RunningGateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0, timeout=20)


def anthropic_client(gateway: RunningGateway, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0, timeout=20)


def ask_openai(gateway: RunningGateway, key: str, model: str = "up", **extra: Any) -> str:
    answer = openai_client(gateway, key).chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}], **extra)
    return answer.choices[0].message.content or ""


def ask_anthropic(gateway: RunningGateway, key: str, model: str = "up", prompt: str = "hi") -> str:
    message = anthropic_client(gateway, key).messages.create(
        model=model, max_tokens=20, messages=[{"role": "user", "content": prompt}])
    return message.content[0].text  # type: ignore[union-attr]


def test_a_keys_rpm_is_a_429_with_retry_after_in_both_protocols_and_other_keys_go_on(
        config_file: Path, upstream: LocalServer) -> None:
    write_config(config_file, upstream, {"rpm": 2})
    with RunningGateway() as gateway:
        assert ask_openai(gateway, ALICE) and ask_anthropic(gateway, ALICE)
        with pytest.raises(openai.RateLimitError) as from_openai:
            ask_openai(gateway, ALICE)
        error = from_openai.value
        assert error.status_code == 429 and error.code == "rate_limit_exceeded"
        assert "gateway key 'alice' is at its rpm limit (2 requests a minute)" in error.message
        assert 1 <= int(error.response.headers["retry-after"]) <= 60
        with pytest.raises(anthropic.RateLimitError) as from_anthropic:
            ask_anthropic(gateway, ALICE)
        body = from_anthropic.value.body
        assert isinstance(body, dict) and body["type"] == "error"
        assert body["error"]["type"] == "rate_limit_error" and "rpm" in body["error"]["message"]
        assert int(from_anthropic.value.response.headers["retry-after"]) >= 1
        for _ in range(3):  # bob's key has no limit, and alice's window is hers alone
            assert ask_openai(gateway, BOB)
    assert len(upstream.state.requests) == 5  # the refused calls never went upstream
    with Ledger() as ledger:
        keys = [row.gateway_key for row in ledger.entries()]
    assert keys == ["alice", "alice", "bob", "bob", "bob"]


def test_a_keys_max_concurrent_refuses_a_second_call_while_one_streams(config_file: Path,
                                                                       upstream: LocalServer) -> None:
    write_config(config_file, upstream, {"max_concurrent": 1})
    with RunningGateway() as gateway:
        client = openai_client(gateway, ALICE)
        stream = client.chat.completions.create(
            model="slow-echo", messages=[{"role": "user", "content": "a b c d e f g h"}], stream=True)
        first = next(iter(stream))  # the first answer is under way: alice's one place is taken
        assert first.choices
        with pytest.raises(openai.RateLimitError, match="max_concurrent limit"):
            ask_openai(gateway, ALICE, model="echo")
        with pytest.raises(anthropic.RateLimitError):
            ask_anthropic(gateway, ALICE, model="echo")
        assert ask_openai(gateway, BOB, model="echo") == "hi"
        rest = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        assert (first.choices[0].delta.content or "") + rest == "a b c d e f g h"
        assert ask_openai(gateway, ALICE, model="echo") == "hi"  # the place was given back


def test_a_keys_tpm_reserves_the_calls_tokens(config_file: Path, upstream: LocalServer) -> None:
    write_config(config_file, upstream, {"tpm": 60})
    with RunningGateway() as gateway:
        assert ask_openai(gateway, ALICE, max_tokens=40)  # reserves 1 + 4 + 40, settled at the 5 + 4 used
        assert ask_openai(gateway, ALICE, max_tokens=40)
        with pytest.raises(openai.RateLimitError, match="tpm limit"):
            ask_openai(gateway, ALICE, max_tokens=200)


def spend(name: str, usd: float) -> None:
    with Ledger() as ledger:
        ledger.append(LedgerEntry("up", "openai", "test-model", 10, 10, usd, 0.1, gateway_key=name))


def test_a_key_over_its_budget_is_refused_before_anything_is_sent_and_others_are_not(
        config_file: Path, upstream: LocalServer) -> None:
    write_config(config_file, upstream, {"budget_usd_per_day": 1.0})
    spend("alice", 0.99)  # a call on 'up' could cost up to (input + 20 output tokens) x $0.001
    spend(None, 5.0)  # type: ignore[arg-type]  # calls made without a key count toward no key's budget
    with RunningGateway() as gateway:
        with pytest.raises(openai.RateLimitError) as from_openai:
            ask_openai(gateway, ALICE, max_tokens=20)
        message = from_openai.value.message
        assert "gateway key 'alice' has spent $0.9900 of its $1.00 daily budget" in message
        assert "[serve] keys" in message  # the remedy: who can raise it, and where
        resets = int(from_openai.value.response.headers["retry-after"])
        assert 0 < resets <= 25 * 3600  # until local midnight
        with pytest.raises(anthropic.RateLimitError) as from_anthropic:
            ask_anthropic(gateway, ALICE)
        assert "daily budget" in from_anthropic.value.body["error"]["message"]  # type: ignore[index]
        assert ask_openai(gateway, BOB, max_tokens=20)
    assert len(upstream.state.requests) == 1  # only bob's


def test_a_keys_budget_counts_what_its_calls_cost(config_file: Path, upstream: LocalServer) -> None:
    write_config(config_file, upstream, {"budget_usd_per_month": 0.025})
    with RunningGateway() as gateway:
        assert ask_openai(gateway, ALICE, max_tokens=10)  # worst case ~ $0.015; each spends $0.008
        assert ask_openai(gateway, ALICE, max_tokens=10)
        with pytest.raises(openai.RateLimitError, match="monthly budget"):
            ask_openai(gateway, ALICE, max_tokens=10)
    with Ledger() as ledger:
        assert ledger.spend("alice", 0, "gateway_key") == pytest.approx(2 * 0.008)


def test_an_answer_in_the_response_cache_is_served_to_a_key_over_budget(config_file: Path,
                                                                        upstream: LocalServer) -> None:
    write_config(config_file, upstream, {"budget_usd_per_day": 1.0}, cache=True, budget_usd_per_day=1.0)
    with RunningGateway() as gateway:
        first = ask_openai(gateway, BOB, max_tokens=20)  # bob asks first: the answer is stored
        spend("alice", 1.0)
        spend_profile = LedgerEntry("up", "openai", "test-model", 1, 1, 1.0, 0.1)
        with Ledger() as ledger:
            ledger.append(spend_profile)  # the profile's own budget is spent too
        assert ask_openai(gateway, ALICE, max_tokens=20) == first  # a hit costs $0: served all the same
        with pytest.raises(anthropic.RateLimitError, match="daily budget"):
            ask_anthropic(gateway, ALICE, prompt="something new")  # a request the cache does not hold is refused
    assert len(upstream.state.requests) == 1
    with Ledger() as ledger:
        assert [(row.gateway_key, row.outcome, row.cost_usd) for row in ledger.entries()][-1] == ("alice", "cached",
                                                                                                 0.0)


def test_key_tables_are_checked_and_keep_only_hashes() -> None:
    keys = GatewayKeys.load({"serve": {"keys": [hash_key("plain"), {"name": "alice", "hash": hash_key(ALICE),
                                                                     "rpm": 5, "budget_usd_per_day": 2}]}}, {})
    assert keys.accepts("plain") and keys.accepts(ALICE) and not keys.accepts(BOB)
    assert keys.named[hash_key(ALICE)].settings == {"rpm": 5, "budget_usd_per_day": 2.0}
    assert keys.identify("plain") not in keys.named  # a key without a table has no name and no limits
    bad = [
        ({"name": "alice", "hash": ALICE}, "a key in clear"),
        ({"name": "alice", "hash": hash_key(ALICE), "rpn": 5}, "did you mean 'rpm'?"),
        ({"name": "alice", "hash": hash_key(ALICE), "rpm": 0}, "'rpm' must be at least 1, not 0"),
        ({"name": "alice", "hash": hash_key(ALICE), "tpm": "lots"}, "'tpm' must be an integer"),
        ({"hash": hash_key(ALICE)}, "needs a 'name'"),
    ]
    for entry, expected in bad:
        with pytest.raises(ConfigError) as caught:
            GatewayKeys.load({"serve": {"keys": [entry]}}, {})
        assert expected in caught.value.message + (caught.value.remedy or "")
        assert ALICE not in caught.value.message + (caught.value.remedy or "")
    with pytest.raises(ConfigError, match="names 'a' twice"):
        GatewayKeys.load({"serve": {"keys": [{"name": "a", "hash": hash_key("1")},
                                             {"name": "a", "hash": hash_key("2")}]}}, {})


@pytest.mark.parametrize("malformed", ["sha256:zz", "sha256:9f86d081...", hash_key(ALICE)[:-1],
                                       hash_key(ALICE) + "0", hash_key(ALICE)[:-1] + "g"])
def test_a_hash_that_could_never_match_is_refused_naming_the_entry(malformed: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    places = [
        ({"serve": {"keys": [hash_key(BOB), malformed]}}, {}, "[serve] keys[1]"),
        ({"serve": {"keys": [{"name": "alice", "hash": malformed}]}}, {}, "[serve] keys[0] ('alice')"),
        ({}, {"LLMSWITCH_SERVE_KEYS": f"lsw-plain, {malformed}"}, "LLMSWITCH_SERVE_KEYS entry 2"),
    ]
    for document, environ, where in places:
        with pytest.raises(ConfigError) as caught:
            GatewayKeys.load(document, environ)
        assert f"{where}: {malformed!r} is not a whole key hash" in caught.value.message
        assert "64 hex digits" in caught.value.message
        assert "llmswitch serve --new-key" in (caught.value.remedy or "")
    from tests.helpers import run_cli

    monkeypatch.setenv("LLMSWITCH_SERVE_KEYS", malformed)
    outcome = run_cli("serve", "--host", "0.0.0.0", "--port", "0")
    assert outcome.exit_code == 2, outcome  # refused before it listens: no gateway that nobody can use
    assert "is not a whole key hash" in outcome.stderr and "gateway keys: required" not in outcome.stderr


def test_new_key_beside_a_broken_hash_names_it_and_writes_nothing(config_file: Path) -> None:
    from tests.helpers import run_cli

    written = f'[serve]\nkeys = ["{hash_key(BOB)}", "sha256:9f86d081..."]\n'
    config_file.write_text(written)
    outcome = run_cli("serve", "--new-key")
    assert outcome.exit_code == 2, outcome
    assert "[serve] keys[1]: 'sha256:9f86d081...' is not a whole key hash" in outcome.stderr
    assert "remove that entry" in outcome.stderr and outcome.stdout == ""  # no key shown that was not stored
    assert config_file.read_text() == written


def test_an_upper_case_hash_is_read_in_lower_case() -> None:
    upper = "SHA256:" + hash_key(ALICE).removeprefix("sha256:").upper()
    for document, environ in (({"serve": {"keys": [upper]}}, {}),
                              ({"serve": {"keys": [{"name": "alice", "hash": upper, "rpm": 3}]}}, {}),
                              ({}, {"LLMSWITCH_SERVE_KEYS": upper})):
        keys = GatewayKeys.load(document, environ)
        assert keys.accepts(ALICE) and not keys.accepts(BOB)
    assert keys.identify(ALICE) == hash_key(ALICE)
    named = GatewayKeys.load({"serve": {"keys": [{"name": "alice", "hash": upper, "rpm": 3}]}}, {})
    assert named.named[named.identify(ALICE)].name == "alice"  # type: ignore[index]


def test_a_failed_call_gives_its_place_back(config_file: Path, upstream: LocalServer) -> None:
    write_config(config_file, upstream, {"max_concurrent": 1})
    with RunningGateway() as gateway:
        upstream.state.scenario = "server_error"
        for _ in range(3):  # each would find the place taken if a failure kept it
            with pytest.raises(openai.InternalServerError):
                ask_openai(gateway, ALICE, stream=True)
        upstream.state.scenario = "ok"
        assert ask_openai(gateway, ALICE) != ""
