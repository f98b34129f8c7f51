"""Price tables as data: parsing, lookup, profile overrides; unknown stays unknown, local is 0."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmswitch import pricing
from llmswitch.client import Client
from llmswitch.plugins import get_registry
from llmswitch.pricing import ModelPrice, PriceTableError, format_rate, format_usd, parse_table, price_for
from llmswitch.types import BackendInfo
from tests.helpers import write_config

TABLE = """
[meta]
date = "2025-06-01"
source = "https://example.com/pricing"

[models."big-1"]
input_per_mtok = 3.0
output_per_mtok = 15.0
cached_input_per_mtok = 0.3
context_window = 200000
max_output = 64000
aliases = ["big-1-20250929"]

[models."half-known"]
input_per_mtok = 1.0
"""


@pytest.fixture(autouse=True)
def fresh_tables() -> Iterator[None]:
    pricing.clear_cache()
    yield
    pricing.clear_cache()


def table() -> pricing.PriceTable:
    return parse_table(TABLE, backend="acme", origin="acme/prices.toml")


def test_table_meta_and_models_are_read() -> None:
    parsed = table()
    assert (parsed.date, parsed.source) == ("2025-06-01", "https://example.com/pricing")
    big = parsed.lookup("big-1")
    assert big == ModelPrice(3.0, 15.0, 0.3, 200000, 64000, source="acme price table (2025-06-01)", date="2025-06-01")


@pytest.mark.parametrize("name", ["big-1", "big-1-20250929", "big-1-2025-09-29", "big-1@20250929", "big-1:latest"])
def test_aliases_and_snapshot_suffixes_find_the_model(name: str) -> None:
    found = table().lookup(name)
    assert found is not None and found.input_per_mtok == 3.0


def test_unlisted_model_without_default_is_unknown_not_zero() -> None:
    assert table().lookup("big-1-mini") is None
    half = table().lookup("half-known")
    assert half is not None and not half.known
    assert half.cost(500, 500) is None


def test_default_table_prices_every_other_model() -> None:
    local = parse_table('[meta]\ndate = "d"\n[default]\ninput_per_mtok = 0\noutput_per_mtok = 0\n', backend="l",
                        origin="o")
    price = local.lookup("anything")
    assert price is not None and price.free and price.cost(10_000, 10_000) == 0.0


def test_tolerated_variants_star_model_and_top_level_meta() -> None:
    variant = parse_table('date = "2026-01-01"\nsource = "local"\n[models."*"]\ninput_per_mtok = 0.0\n'
                          'output_per_mtok = 0.0\n', backend="l", origin="o")
    assert variant.date == "2026-01-01"
    assert variant.lookup("whatever") is not None and "*" not in variant.models


def test_json_tables_are_read_too() -> None:
    document = {"meta": {"date": "2025-01-01"}, "models": {"j": {"input_per_mtok": 2, "output_per_mtok": 4}}}
    parsed = parse_table(json.dumps(document), backend="j", origin="j.json", format="json")
    price = parsed.lookup("j")
    assert price is not None and price.cost(1_000_000, 1_000_000) == 6.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[models."x"]\ninput_per_mtok = -1\n', "input_per_mtok must be a non-negative number"),
        ('[models."x"]\ninput_per_mtok = "cheap"\n', "input_per_mtok must be a non-negative number"),
        ('[models."x"]\ncontext_window = 1.5\n', "context_window must be a positive integer"),
        ('[models."x"]\naliases = "y"\n', "aliases must be a list"),
        ("models = 3\n", "[models] must be a table"),
        ("[models\n", "cannot read"),
    ],
)
def test_malformed_tables_say_where(text: str, message: str) -> None:
    with pytest.raises(PriceTableError) as caught:
        parse_table(text, backend="bad", origin="bad/prices.toml")
    assert message in str(caught.value)
    assert "bad/prices.toml" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "format", "shown"),
    [
        ('[models."x"]\ninput_per_mtok = inf\n', "toml", "input_per_mtok = inf"),
        ('[models."x"]\noutput_per_mtok = nan\n', "toml", "output_per_mtok = nan"),
        ('[models."x"]\nbatch_output_per_mtok = +inf\n', "toml", "batch_output_per_mtok = inf"),
        ('{"models": {"x": {"cached_input_per_mtok": Infinity}}}', "json", "cached_input_per_mtok = inf"),
        ('{"models": {"x": {"input_per_mtok": NaN}}}', "json", "input_per_mtok = nan"),
    ],
)
def test_an_infinite_or_nan_price_is_refused_naming_the_file_the_model_and_the_field(
        text: str, format: str, shown: str) -> None:
    """inf and nan pass the non-negative check (an infinite price refuses every call over budget, a nan one
    makes every sum nan): refused like a profile's, with the file, the model and the field named."""
    with pytest.raises(PriceTableError) as caught:
        parse_table(text, backend="bad", origin="bad/prices.toml", format=format)
    message = str(caught.value)
    assert message.startswith(f"bad/prices.toml [models.'x']: {shown} is not a price"), message
    assert "ordinary number" in message
    with pytest.raises(PriceTableError, match=r"\[default\]: input_per_mtok = inf"):
        parse_table("[default]\ninput_per_mtok = inf\n", backend="bad", origin="bad/prices.toml")


def test_an_unreadable_table_leaves_prices_unknown() -> None:
    info = BackendInfo(name="ghost", summary="", prices=("llmswitch_echo", "no-such-file.toml"))
    loaded = pricing.load_table(info)
    assert loaded is not None and loaded.error is not None and "cannot read" in loaded.error
    price = pricing.lookup(info, "m")
    assert price.input_per_mtok is None and price.source == "ghost price table unreadable"


def test_a_backend_without_a_table_is_unknown() -> None:
    price = price_for(BackendInfo(name="bare", summary=""), "m")
    assert price.cost(500, 500) is None
    assert price.source == "backend bare ships no price table"
    assert format_usd(price.cost(500, 500)) == "unknown"


def test_echo_ships_a_table_saying_zero() -> None:
    info = get_registry().backend("echo").info
    assert info.prices == ("llmswitch_echo", "prices.toml")
    loaded = pricing.load_table(info)
    assert loaded is not None and loaded.error is None and loaded.date
    price = price_for(info, "echo")
    assert price.free and price.cost(500, 500) == 0.0


def test_profile_overrides_win() -> None:
    info = BackendInfo(name="acme", summary="", prices=("llmswitch_echo", "prices.toml"))  # zeros
    price = price_for(info, "m", {"price_input_per_mtok": 2.0, "price_output_per_mtok": 8.0})
    assert (price.input_per_mtok, price.output_per_mtok, price.source) == (2.0, 8.0, "profile")
    assert price.cost(500, 500) == pytest.approx(0.005)


def test_a_partial_override_keeps_the_rest_of_the_table() -> None:
    info = get_registry().backend("echo").info
    price = price_for(info, "echo", {"price_output_per_mtok": 10.0})
    assert (price.input_per_mtok, price.output_per_mtok) == (0.0, 10.0)
    assert price.source.startswith("profile + echo price table")


def test_overrides_price_an_otherwise_unknown_model() -> None:
    price = price_for(BackendInfo(name="bare", summary=""), "m",
                      {"price_input_per_mtok": 0.5, "price_output_per_mtok": 1.5})
    assert price.cost(500, 500) == pytest.approx(0.001)  # the seeds' GPT-3.5 figure: $0.001 per request


def test_overrides_through_a_real_profile(config_file: Path) -> None:
    write_config(config_file, '[profiles.paid]\nbackend = "echo"\nprice_input_per_mtok = 1\n'
                              'price_output_per_mtok = 2\nprice_cached_input_per_mtok = 0.25\n')
    resolved = Client().resolve("paid")
    price = price_for(resolved.handle.info, resolved.target.model, resolved.settings)
    assert price.cost(1000, 1000, cached_input_tokens=400) == pytest.approx((600 * 1 + 400 * 0.25 + 1000 * 2) / 1e6)


def test_cached_input_without_a_cached_rate_is_billed_as_input() -> None:
    assert ModelPrice(1.0, 1.0).cost(1000, 0, cached_input_tokens=500) == pytest.approx(0.001)


def test_every_installed_plugins_table_parses() -> None:
    registry = get_registry()
    for name, handle in registry.backends.items():
        loaded = pricing.load_table(handle.info)
        if loaded is not None:
            assert loaded.error is None, f"{name}: {loaded.error}"
            assert loaded.models or loaded.default is not None, name


@pytest.mark.parametrize(
    ("usd", "text"),
    [(None, "unknown"), (0.0, "$0"), (12.5, "$12.50"), (1234.5, "$1,234.50"), (0.0123, "$0.0123"),
     (0.000375, "$0.000375"), (0.00015, "$0.000150")],
)
def test_format_usd(usd: float | None, text: str) -> None:
    assert format_usd(usd) == text


@pytest.mark.parametrize(("rate", "text"), [(None, "unknown"), (0.0, "$0"), (0.15, "$0.15"), (0.075, "$0.075"),
                                            (2.5, "$2.50"), (15.0, "$15.00"), (0.0005, "$0.0005")])
def test_format_rate(rate: float | None, text: str) -> None:
    assert format_rate(rate) == text


# ---- a model on another server than the backend's own ----------------------------------------------------


def openai_price(config_file: Path, monkeypatch: pytest.MonkeyPatch, profile: str, model: str = "gpt-4o",
                 env_url: str | None = None) -> pricing.ModelPrice:
    from llmswitch.accounting import price_of

    pytest.importorskip("llmswitch_openai")
    if env_url:
        monkeypatch.setenv("OPENAI_BASE_URL", env_url)
    write_config(config_file, profile)
    return price_of(Client().resolve("p", model=model))


def test_a_model_on_a_custom_base_url_is_not_priced_from_the_providers_table(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = '[profiles.p]\nbackend = "openai"\nbase_url = "http://127.0.0.1:8080/v1"\n'
    price = openai_price(config_file, monkeypatch, local)
    assert not price.known and price.cost(500, 500) is None
    assert "is for https://api.openai.com/v1, not http://127.0.0.1:8080/v1" in price.source
    # The same through the environment: OPENAI_BASE_URL at a local server.
    from_env = openai_price(config_file, monkeypatch, '[profiles.p]\nbackend = "openai"\n',
                            env_url="http://127.0.0.1:8080/v1")
    assert not from_env.known


def test_openais_own_url_is_priced_from_its_table(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    price = openai_price(config_file, monkeypatch, '[profiles.p]\nbackend = "openai"\napi_key = "sk-x"\n'
                                                   'base_url = "https://api.openai.com/v1/"\n')
    assert price.known and price.input_per_mtok == 2.5 and "openai price table" in price.source


def test_a_custom_base_url_is_priced_by_the_profile_or_a_preset_that_says_so(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    preset = openai_price(config_file, monkeypatch, '[profiles.p]\nbackend = "openai"\npreset = "llamacpp-server"\n')
    assert preset.free and preset.source == "profile"  # the self-hosted preset says $0
    own = openai_price(config_file, monkeypatch, '[profiles.p]\nbackend = "openai"\nbase_url = "http://h:1/v1"\n'
                                                 'price_input_per_mtok = 1\nprice_output_per_mtok = 3\n')
    assert own.cost(500, 500) == pytest.approx(0.002)
    proxy = openai_price(config_file, monkeypatch, '[profiles.p]\nbackend = "openai"\npreset = "litellm"\n')
    assert not proxy.known  # a LiteLLM proxy forwards to paid providers: nobody here knows its price


def test_ollama_is_free_on_any_machine(config_file: Path) -> None:
    pytest.importorskip("llmswitch_ollama")
    write_config(config_file, '[profiles.p]\nbackend = "ollama"\nbase_url = "http://gpu-box.lan:11434"\n')
    resolved = Client().resolve("p")
    assert price_for(resolved.handle.info, resolved.target.model, resolved.settings, resolved.target.base_url).free


def test_any_server_must_be_a_boolean() -> None:
    with pytest.raises(PriceTableError, match="any_server must be true or false"):
        parse_table('[meta]\nany_server = "yes"\n', backend="x", origin="x/prices.toml")


def test_a_table_is_read_from_the_plugins_folder_or_from_a_zipped_package(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import zipfile

    table = '[meta]\ndate = "2026-01-02"\nsource = "s"\n\n[models.m]\ninput_per_mtok = 2.0\noutput_per_mtok = 4.0\n'
    folder = tmp_path / "plain"
    (folder / "folder_prices_pkg").mkdir(parents=True)
    (folder / "folder_prices_pkg" / "__init__.py").write_text("")
    (folder / "folder_prices_pkg" / "data").mkdir()
    (folder / "folder_prices_pkg" / "data" / "p.toml").write_text(table)
    archive = tmp_path / "plugin.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("zipped_prices_pkg/__init__.py", "")
        zipped.writestr("zipped_prices_pkg/p.toml", table.replace("2.0", "3.0"))
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.syspath_prepend(str(archive))
    try:
        plain = pricing.load_table(BackendInfo(name="plain", summary="", prices=("folder_prices_pkg", "data/p.toml")))
        zipped = pricing.load_table(BackendInfo(name="zipped", summary="", prices=("zipped_prices_pkg", "p.toml")))
        assert plain is not None and plain.error is None and plain.models["m"].input_per_mtok == 2.0
        assert zipped is not None and zipped.error is None and zipped.models["m"].input_per_mtok == 3.0
        assert (plain.date, zipped.date) == ("2026-01-02", "2026-01-02")
        absent = pricing.load_table(BackendInfo(name="absent", summary="", prices=("no_such_pkg_x", "p.toml")))
        assert absent is not None and absent.error == (
            "cannot read no_such_pkg_x/p.toml: No module named 'no_such_pkg_x'")
    finally:
        pricing.clear_cache()
        for name in ("folder_prices_pkg", "zipped_prices_pkg"):
            sys.modules.pop(name, None)


@pytest.mark.parametrize(("usd", "text"), [(1.0, "$1.00"), (0.999, "$0.9990"), (0.01, "$0.0100"), (0.5, "$0.5000"),
                                           (0.00999, "$0.00999"), (1e-12, "$0.0000000000"), (1e-3, "$0.00100")])
def test_format_usd_at_its_boundaries(usd: float, text: str) -> None:
    assert format_usd(usd) == text


@pytest.mark.parametrize(("rate", "text"), [(1234.5, "$1,234.50"), (0.1, "$0.10"), (0.12345, "$0.1235"),
                                            (3.0, "$3.00")])
def test_format_rate_keeps_two_decimals_at_least_and_four_at_most(rate: float, text: str) -> None:
    assert format_rate(rate) == text


def test_a_price_as_data_has_every_field_and_its_age() -> None:
    import datetime as dt

    today = dt.date.today()
    price = ModelPrice(input_per_mtok=1.5, output_per_mtok=6.0, cached_input_per_mtok=0.15, context_window=128000,
                       max_output=16000, batch_input_per_mtok=0.75, batch_output_per_mtok=3.0, source="t",
                       date=(today - dt.timedelta(days=3)).isoformat())
    assert price.as_dict() == {
        "input_per_mtok": 1.5, "output_per_mtok": 6.0, "cached_input_per_mtok": 0.15, "context_window": 128000,
        "max_output": 16000, "batch_input_per_mtok": 0.75, "batch_output_per_mtok": 3.0, "source": "t",
        "date": (today - dt.timedelta(days=3)).isoformat(), "age_days": 3,
    }


def test_ages_read_as_words() -> None:
    import datetime as dt

    assert [pricing.format_age(days) for days in (None, 0, 1, 2, 1234)] == [
        "undated", "today", "1 day old", "2 days old", "1,234 days old"]
    today = dt.date(2026, 11, 28)
    dated = ModelPrice(input_per_mtok=1.0, output_per_mtok=2.0, source="echo price table", date="2026-11-27")
    assert pricing.price_age_label(dated, today) == "2026-11-27, 1 day old"
    assert pricing.price_age_label(ModelPrice(input_per_mtok=1.0, output_per_mtok=2.0, source="profile 'p'")) == (
        "set in the profile")
    assert pricing.price_age_label(ModelPrice(input_per_mtok=1.0, output_per_mtok=2.0, source="x table")) == "undated"
    assert pricing.price_age_label(ModelPrice(input_per_mtok=1.0, source="profile 'p'", date="2026-11-27")) == ""
