"""`llmswitch prices update`: a maintained table in LiteLLM's format, served over a real socket, validated,
compared with the prices in use and stored; the order profile > updated table > shipped table; ages shown."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pytest

from llmswitch.config import PRICE_CATALOG_FILE as CATALOG_FILE
from llmswitch.plugins import get_registry
from llmswitch.price_catalog import MAX_PRICE_PER_MTOK, CatalogError, convert_catalog
from llmswitch.pricing import STALE_AFTER_DAYS, clear_cache, lookup, price_for
from tests.helpers import run_cli, write_config
from tests.servers.http import LocalServer, ProtocolHandler, refused_port

PROVIDERS = {"openai": ("openai",), "anthropic": ("anthropic",)}


def catalog(**overrides: Any) -> dict[str, Any]:
    """A small table in LiteLLM's format: per-token USD prices, limits, providers, modes."""
    table: dict[str, Any] = {
        "sample_spec": {"input_cost_per_token": 0.0, "max_input_tokens": "max input tokens, if the provider says",
                        "litellm_provider": "one of https://docs.litellm.ai/docs/providers", "mode": "one of: chat"},
        "gpt-4o-mini": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 1.5e-07,
                        "output_cost_per_token": 6e-07, "cache_read_input_token_cost": 7.5e-08,
                        "input_cost_per_token_batches": 7.5e-08, "output_cost_per_token_batches": 3e-07,
                        "max_input_tokens": 128000, "max_output_tokens": 16384},
        "gpt-5.1": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 1.25e-06,
                    "output_cost_per_token": 1e-05, "max_input_tokens": 272000, "max_output_tokens": 128000},
        "anthropic/claude-tiny-9": {"litellm_provider": "anthropic", "mode": "chat", "input_cost_per_token": 1e-06,
                                    "output_cost_per_token": 5e-06},
        "text-embedding-3-small": {"litellm_provider": "openai", "mode": "embedding", "input_cost_per_token": 2e-08},
        "groq/llama-3.3-70b": {"litellm_provider": "groq", "mode": "chat", "input_cost_per_token": 5.9e-07,
                               "output_cost_per_token": 7.9e-07},
    }
    table.update(overrides)
    return table


class CatalogHandler(ProtocolHandler):
    """Serves the table at /prices.json the way a static file host does; counts what it was asked."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.read_json()
        scenario = self.state.scenario
        if scenario == "500":
            self.send_json(500, {"error": "down"})
            return
        body = self.state.options["body"]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Any:
    with LocalServer(CatalogHandler) as running:
        running.state.options["body"] = json.dumps(catalog()).encode()
        yield running


@pytest.fixture(autouse=True)
def fresh_tables() -> Any:
    clear_cache()
    yield
    clear_cache()


def stored(hermetic: Path) -> Path:
    return hermetic / "data" / CATALOG_FILE


def info(name: str) -> Any:
    return get_registry().backend(name).info


# ---- update over a real socket -----------------------------------------------------------------------------


def test_update_from_a_url_stores_the_table_and_prices_use_it_first(server: Any, hermetic: Path) -> None:
    assert lookup(info("openai"), "gpt-5.1").known is False  # not in the shipped table
    result = run_cli("prices", "update", "--from", f"{server.url}/prices.json")
    assert result.exit_code == 0, result
    assert [r.path for r in server.state.requests] == ["/prices.json"]
    assert "added (openai" in result.stdout and "gpt-5.1" in result.stdout
    assert "claude-tiny-9" in result.stdout  # the "anthropic/" prefix is the provider's, not the model's
    document = json.loads(stored(hermetic).read_text())
    assert set(document["backends"]) == {"openai", "anthropic"}
    openai = document["backends"]["openai"]["models"]
    assert "text-embedding-3-small" not in openai and "groq/llama-3.3-70b" not in openai
    assert openai["gpt-4o-mini"] == {"input_per_mtok": 0.15, "output_per_mtok": 0.6, "cached_input_per_mtok": 0.075,
                                     "batch_input_per_mtok": 0.075, "batch_output_per_mtok": 0.3,
                                     "context_window": 128000, "max_output": 16384}

    price = lookup(info("openai"), "gpt-5.1")
    assert (price.input_per_mtok, price.output_per_mtok, price.context_window) == (1.25, 10.0, 272000)
    assert price.source == f"openai updated price table ({dt.date.today().isoformat()})"
    assert price.age_days() == 0
    snapshot = lookup(info("openai"), "gpt-5.1-2025-11-13")  # a dated snapshot prices like its alias
    assert snapshot.input_per_mtok == 1.25
    assert not price.batch.known  # the table gives gpt-5.1 no batch price: unknown, never the standard one
    assert price_for(info("openai"), "gpt-4o-mini").batch.input_per_mtok == 0.075


def test_a_profile_price_wins_over_the_updated_table(server: Any) -> None:
    assert run_cli("prices", "update", "--from", f"{server.url}/prices.json").exit_code == 0
    price = price_for(info("openai"), "gpt-5.1", {"price_input_per_mtok": 2.0})
    assert (price.input_per_mtok, price.output_per_mtok) == (2.0, 10.0)
    assert price.source.startswith("profile + openai updated price table")
    whole = price_for(info("openai"), "gpt-5.1", {"price_input_per_mtok": 2.0, "price_output_per_mtok": 3.0})
    assert whole.source == "profile" and whole.date is None


def test_a_model_the_update_does_not_list_keeps_its_shipped_price(server: Any) -> None:
    shipped = lookup(info("openai"), "gpt-4.1")
    assert shipped.known and "updated" not in shipped.source
    assert run_cli("prices", "update", "--from", f"{server.url}/prices.json").exit_code == 0
    assert lookup(info("openai"), "gpt-4.1") == shipped


def test_the_second_update_says_what_changed_and_what_is_gone(server: Any) -> None:
    assert run_cli("prices", "update", "--from", f"{server.url}/prices.json").exit_code == 0
    table = catalog()
    table["gpt-5.1"] = {**table["gpt-5.1"], "output_cost_per_token": 1.2e-05}
    del table["anthropic/claude-tiny-9"]
    server.state.options["body"] = json.dumps(table).encode()
    result = run_cli("prices", "update", "--from", f"{server.url}/prices.json", "--json")
    assert result.exit_code == 0, result
    report = json.loads(result.stdout)
    assert report["added"] == {}
    assert report["changed"] == [{"backend": "openai", "model": "gpt-5.1", "field": "output_per_mtok",
                                  "old": 10.0, "new": 12.0}]
    assert report["removed"] == {"anthropic": ["claude-tiny-9"]}
    text = run_cli("prices", "update", "--from", f"{server.url}/prices.json", "--dry-run")
    assert "no price changed" in text.stdout and "would store" in text.stderr


def test_prices_lists_the_update_first_with_its_age(server: Any) -> None:
    assert run_cli("prices", "update", "--from", f"{server.url}/prices.json").exit_code == 0
    listing = run_cli("prices", "--backend", "openai")
    assert listing.exit_code == 0, listing
    assert listing.stdout.index("updated with `llmswitch prices update`") < listing.stdout.index("shipped with")
    assert "today" in listing.stdout and "days old" in listing.stdout  # the update's age, then the shipped one's
    [openai] = json.loads(run_cli("prices", "--backend", "openai", "--json").stdout)["backends"]
    assert openai["updated"]["age_days"] == 0 and openai["age_days"] > 90
    assert openai["models"]["gpt-5.1"]["source"].startswith("openai updated price table")
    assert openai["models"]["gpt-4.1"]["source"].startswith("openai price table")


# ---- refused, and nothing changes --------------------------------------------------------------------------


HOSTILE = {
    "a price that is a string": {"gpt-x": {"litellm_provider": "openai", "input_cost_per_token": "0.001",
                                           "output_cost_per_token": 1e-06}},
    "a negative price": {"gpt-x": {"litellm_provider": "openai", "input_cost_per_token": -1e-06,
                                   "output_cost_per_token": 1e-06}},
    "an absurd price": {"gpt-x": {"litellm_provider": "openai", "input_cost_per_token": 1.0,
                                  "output_cost_per_token": 1e-06}},
    "a limit that is a float": {"gpt-x": {"litellm_provider": "openai", "input_cost_per_token": 1e-06,
                                          "output_cost_per_token": 1e-06, "max_input_tokens": 1.5}},
    "a 10 MB model name": {"g" * 10_000_000: {"litellm_provider": "openai", "input_cost_per_token": 1e-06,
                                               "output_cost_per_token": 1e-06}},
    "an escape sequence in a name": {"gpt-\x1b]0;owned\x07": {"litellm_provider": "openai",
                                                             "input_cost_per_token": 1e-06,
                                                             "output_cost_per_token": 1e-06}},
    "an entry that is not an object": {"gpt-x": ["not", "an", "object"]},
    "a price that is a boolean": {"gpt-x": {"litellm_provider": "openai", "input_cost_per_token": True,
                                            "output_cost_per_token": 1e-06}},
}
REASONS = {
    "a price that is a string": "input_cost_per_token must be a number",
    "a negative price": "input_cost_per_token is negative",
    "an absurd price": f"at most ${MAX_PRICE_PER_MTOK:,.0f}",
    "a limit that is a float": "max_input_tokens must be a token count",
    "a 10 MB model name": "a model name of 10,000,000 characters",
    "an escape sequence in a name": "control characters",
    "an entry that is not an object": "must be an object, not list",
    "a price that is a boolean": "input_cost_per_token must be a number",
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_table_is_refused_with_the_reason_and_the_prices_stay(case: str, server: Any,
                                                                        hermetic: Path) -> None:
    assert run_cli("prices", "update", "--from", f"{server.url}/prices.json").exit_code == 0
    before = stored(hermetic).read_bytes()
    server.state.options["body"] = json.dumps(catalog(**HOSTILE[case])).encode()
    result = run_cli("prices", "update", "--from", f"{server.url}/prices.json")
    assert result.exit_code == 1, result
    assert REASONS[case] in result.stderr
    assert "Traceback" not in result.output and len(result.stderr) < 2_000
    assert stored(hermetic).read_bytes() == before


@pytest.mark.parametrize("body, reason", [
    (b"<html>rate limited</html>", "is not JSON"),
    (b"[1, 2, 3]", "expected a JSON object of models"),
    (json.dumps({"x": {"litellm_provider": "bedrock", "input_cost_per_token": 1e-06,
                       "output_cost_per_token": 1e-06}}).encode(), "lists no model for anthropic, openai"),
])
def test_a_file_that_is_not_a_price_table_is_refused(body: bytes, reason: str, server: Any, hermetic: Path) -> None:
    server.state.options["body"] = body
    result = run_cli("prices", "update", "--from", f"{server.url}/prices.json")
    assert result.exit_code == 1 and reason in result.stderr, result
    assert not stored(hermetic).exists()


def test_a_price_moving_more_than_tenfold_needs_force(server: Any, hermetic: Path) -> None:
    table = catalog()
    table["gpt-4o-mini"] = {**table["gpt-4o-mini"], "input_cost_per_token": 1.5e-04}  # per million read as per token?
    server.state.options["body"] = json.dumps(table).encode()
    refused = run_cli("prices", "update", "--from", f"{server.url}/prices.json")
    assert refused.exit_code == 1, refused
    assert "would move by more than 10x" in refused.stderr and "gpt-4o-mini input_per_mtok" in refused.stderr
    assert "--force" in refused.stderr
    assert not stored(hermetic).exists()
    assert lookup(info("openai"), "gpt-4o-mini").input_per_mtok == 0.15
    forced = run_cli("prices", "update", "--from", f"{server.url}/prices.json", "--force")
    assert forced.exit_code == 0, forced
    assert lookup(info("openai"), "gpt-4o-mini").input_per_mtok == 150.0


def test_a_server_error_or_no_server_is_a_sentence_and_nothing_changes(server: Any, hermetic: Path) -> None:
    server.state.scenario = "500"
    failed = run_cli("prices", "update", "--from", f"{server.url}/prices.json")
    assert failed.exit_code == 1 and "answered HTTP 500" in failed.stderr, failed
    dead = run_cli("prices", "update", "--from", f"http://127.0.0.1:{refused_port()}/prices.json")
    assert dead.exit_code == 1 and "cannot reach" in dead.stderr and "--from FILE" in dead.stderr, dead
    assert not stored(hermetic).exists()


def test_update_from_a_file_dates_it_by_the_file(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(catalog()))
    old = dt.datetime(2026, 1, 2, 12, tzinfo=dt.timezone.utc).timestamp()
    os.utime(path, (old, old))
    assert run_cli("prices", "update", "--from", str(path)).exit_code == 0
    assert lookup(info("openai"), "gpt-5.1").date == "2026-01-02"
    missing = run_cli("prices", "update", "--from", str(tmp_path / "nope.json"))
    assert missing.exit_code == 1 and "no file at" in missing.stderr


def test_a_damaged_stored_table_falls_back_to_the_shipped_one(hermetic: Path) -> None:
    stored(hermetic).write_text("{not json")
    price = lookup(info("openai"), "gpt-4.1")
    assert price.known and "updated" not in price.source


def test_an_infinite_price_in_the_stored_table_is_not_used_and_prices_says_where(hermetic: Path) -> None:
    """The stored table is a user's file too (hand-edited, or older): an Infinity in it is refused like a shipped
    table's, the shipped prices stay in use, and `llmswitch prices` names the file, the model and the field."""
    path = stored(hermetic)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"meta": {"source": "hand", "date": "2026-01-01"}, "backends": {"openai": {"models": '
                    '{"gpt-4.1": {"input_per_mtok": Infinity, "output_per_mtok": 8.0}}}}}')
    price = lookup(info("openai"), "gpt-4.1")
    assert price.known and price.input_per_mtok is not None and price.input_per_mtok < 1000
    assert "updated" not in price.source  # the shipped table's
    shown = run_cli("prices", "-b", "openai")
    assert shown.exit_code == 0, shown
    said = " ".join(shown.stdout.split())
    assert f"{path} [models.'gpt-4.1']: input_per_mtok = inf is not a price" in said
    assert "llmswitch prices update" in said


# ---- ages and doctor ---------------------------------------------------------------------------------------


def test_doctor_warns_when_the_price_table_in_use_is_stale(config_file: Path, server: Any) -> None:
    write_config(config_file, '[profiles.priced]\nbackend = "openai"\nmodel = "gpt-4.1"\napi_key = "sk-test-1234567890abcd"\n')
    result = run_cli("doctor", "priced", "--offline", "--json")
    [diagnosis] = json.loads(result.stdout)["profiles"]
    [stale] = [c for c in diagnosis["checks"] if c["name"] == "prices"]
    assert stale["status"] == "warn" and "days old" in stale["detail"]
    assert "llmswitch prices update" in stale["remedy"]
    assert diagnosis["price"]["age_days"] > STALE_AFTER_DAYS
    table = catalog()
    table["gpt-4.1"] = {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 2e-06,
                        "output_cost_per_token": 8e-06}
    server.state.options["body"] = json.dumps(table).encode()
    assert run_cli("prices", "update", "--from", f"{server.url}/prices.json").exit_code == 0
    fresh = json.loads(run_cli("doctor", "priced", "--offline", "--json").stdout)["profiles"][0]
    assert not [c for c in fresh["checks"] if c["name"] == "prices"]
    assert fresh["price"]["age_days"] == 0


def test_a_free_local_price_is_never_called_stale() -> None:
    result = run_cli("doctor", "echo", "--offline", "--json")
    [diagnosis] = json.loads(result.stdout)["profiles"]
    assert not [c for c in diagnosis["checks"] if c["name"] == "prices"]


def test_cost_shows_when_each_price_is_from(config_file: Path) -> None:
    write_config(config_file, '[profiles.priced]\nbackend = "openai"\nmodel = "gpt-4.1"\napi_key = "sk-test-1234567890abcd"\n'
                              '[profiles.mine]\nbackend = "echo"\nprice_input_per_mtok = 1.0\nprice_output_per_mtok = 2.0\n')
    table = run_cli("cost", "-p", "priced", "-p", "mine", "--input-tokens", "10")
    assert table.exit_code == 0, table
    assert "prices as of" in table.stdout and "days old" in table.stdout and "set in the profile" in table.stdout
    rows = json.loads(run_cli("cost", "-p", "priced", "--input-tokens", "10", "--json").stdout)["profiles"]
    assert rows[0]["price"]["date"] == "2025-08-07" and rows[0]["price"]["age_days"] > 400


# ---- a real-world file no one here wrote ---------------------------------------------------------------------


def litellm_copy() -> Path:
    """The table LiteLLM ships inside its wheel (installed with --no-deps by scripts/install.sh --test)."""
    from importlib import metadata

    files = metadata.files("litellm") or []
    [entry] = [f for f in files if f.name == "model_prices_and_context_window_backup.json"]
    return Path(str(entry.locate()))


def test_the_table_litellm_ships_converts_cleanly() -> None:
    path = litellm_copy()
    converted = convert_catalog(path.read_bytes(), source=str(path), date="2026-11-28", providers=PROVIDERS)
    openai, anthropic = converted.backends["openai"], converted.backends["anthropic"]
    assert len(openai) > 100 and len(anthropic) > 20
    assert openai["gpt-4o-mini"]["input_per_mtok"] == pytest.approx(0.15)
    assert openai["gpt-4o-mini"]["output_per_mtok"] == pytest.approx(0.6)
    assert all(0 <= entry["input_per_mtok"] <= MAX_PRICE_PER_MTOK for entry in openai.values())


def test_the_litellm_copy_agrees_with_the_prices_we_ship(hermetic: Path) -> None:
    """Where both name a model, a real-world table and ours must not be 10x apart (they match today)."""
    result = run_cli("prices", "update", "--from", str(litellm_copy()), "--json")
    assert result.exit_code == 0, result
    report = json.loads(result.stdout)  # exit 0 without --force: no shared model's price moved 10x
    assert report["models"]["openai"] > 100 and report["models"]["anthropic"] > 20
    assert "gpt-5.1" in report["added"]["openai"]  # a current model our 2025 table lacks


def test_convert_rejects_a_provider_table_without_prices_gracefully() -> None:
    with pytest.raises(CatalogError, match="lists no model"):
        convert_catalog(b"{}", source="empty.json", date="2026-11-28", providers=PROVIDERS)
