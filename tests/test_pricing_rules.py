"""`llmswitch.pricing` rule by rule: each field of a table entry, where every refusal points, which table a
price is attributed to, what a profile's keys replace and what they keep, ages against a given day, and reading
a table's text as UTF-8 whatever the locale. Each exact rule here was once a surviving mutant."""

from __future__ import annotations

import datetime as dt
import json
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmswitch import pricing
from llmswitch.config import price_catalog_path
from llmswitch.price_catalog import Catalog, load_catalog, save_catalog
from llmswitch.pricing import ModelPrice, PriceTable, PriceTableError, parse_table, price_for, prices_in_use
from llmswitch.types import BackendInfo

TABLE = """\
[meta]
date = "2025-06-01"
source = "https://acme.test/pricing"

[models.big]
input_per_mtok = 3.0
output_per_mtok = 15.0
cached_input_per_mtok = 0.3
batch_input_per_mtok = 1.5
batch_output_per_mtok = 7.5
aliases = ["large"]
"""
A_DAY = dt.date(2030, 1, 1)  # far from the machine's clock: an age read from the clock would differ


@pytest.fixture
def acme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[BackendInfo]:
    """A plugin package on disk with TABLE as its price table, served at https://api.acme.test."""
    package = tmp_path / "site" / "acme_rules_prices"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "prices.toml").write_text(TABLE)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    pricing.clear_cache()
    yield BackendInfo(name="acme", summary="", default_base_url="https://api.acme.test/v1",
                      prices=("acme_rules_prices", "prices.toml"))
    pricing.clear_cache()
    sys.modules.pop("acme_rules_prices", None)


def refusal(text: str, format: str = "toml") -> str:
    with pytest.raises(PriceTableError) as caught:
        parse_table(text, backend="x", origin="x/p", format=format)
    return str(caught.value)


# ---- reading a table ---------------------------------------------------------------------------------------


def test_every_field_of_an_entry_is_kept_even_when_one_before_it_is_missing() -> None:
    table = parse_table('[models.m]\ninput_per_mtok = 1\noutput_per_mtok = 2\nbatch_output_per_mtok = 0.5\n'
                        'max_output = 1\n', backend="x", origin="x/p")
    assert table.models["m"] == ModelPrice(1.0, 2.0, batch_output_per_mtok=0.5, max_output=1, source="x price table")


def test_a_table_says_what_it_is_and_where_it_came_from() -> None:
    table = parse_table(TABLE, backend="acme", origin="acme/prices.toml", updated=True)
    assert (table.backend, table.origin, table.updated, table.date, table.source) == (
        "acme", "acme/prices.toml", True, "2025-06-01", "https://acme.test/pricing")
    assert table.aliases == {"large": "big"}
    assert table.label == "acme updated price table (2025-06-01)"
    assert table.models["big"].source == "acme updated price table (2025-06-01)"
    assert parse_table(TABLE, backend="acme", origin="o").updated is False
    assert pricing.table_label("acme", None) == "acme price table"


def test_top_level_date_and_source_stand_in_for_meta() -> None:
    table = parse_table('date = "2025-01-02"\nsource = "top"\n[default]\ninput_per_mtok = 0\noutput_per_mtok = 0\n',
                        backend="x", origin="x/p")
    assert (table.date, table.source) == ("2025-01-02", "top")
    assert table.default == ModelPrice(0.0, 0.0, source="x price table (2025-01-02)", date="2025-01-02")


def test_refusals_name_the_file_and_the_entry() -> None:
    assert refusal("[models]\nm = 5\n") == "x/p [models.'m']: must be a table"
    assert refusal("[default]\ninput_per_mtok = -1\n") == (
        "x/p [default]: input_per_mtok must be a non-negative number, not -1")
    assert refusal("[models.m]\ncontext_window = 0\n") == (
        "x/p [models.'m']: context_window must be a positive integer, not 0")
    assert parse_table("[models.m]\ncontext_window = 1\n", backend="x", origin="x/p").models["m"].context_window == 1
    assert refusal("[1, 2]", format="json") == "x/p: expected a table at the top level"
    assert refusal("meta = 5\n") == "x/p: [meta] must be a table"
    assert refusal("{oops", format="json").startswith("x/p: not JSON: Expecting property name")


def test_a_model_is_found_by_an_alias_that_is_no_snapshot_of_it() -> None:
    table = parse_table(TABLE, backend="acme", origin="o")
    assert table.find("large") is table.models["big"]
    assert table.find("larger") is None


# ---- ages --------------------------------------------------------------------------------------------------


def test_ages_are_counted_to_the_day_given() -> None:
    price = ModelPrice(1.0, 2.0, source="t", date="2029-12-30")
    assert price.age_days(A_DAY) == 2
    assert PriceTable("x", "o", date="2029-12-31").age_days(A_DAY) == 1
    assert pricing.price_age_label(price, A_DAY) == "2029-12-30, 2 days old"
    assert pricing.age_in_days("2029-12-25T12:00:00Z", A_DAY) == 7  # a timestamp counts by its day
    assert pricing.age_in_days("2031-01-01", A_DAY) == 0  # a date ahead is not a negative age


def test_a_cost_needs_both_token_counts() -> None:
    price = ModelPrice(1.0, 2.0)
    assert price.cost(None, 10) is None and price.cost(10, None) is None
    assert price.cost(1_000_000, 0) == 1.0


# ---- which table answers, and for which server ---------------------------------------------------------------


def test_a_price_off_the_backends_own_server_names_the_table_and_both_servers(acme: BackendInfo) -> None:
    price = pricing.lookup(acme, "big", "http://user:secret-password@127.0.0.1:9/v1")
    assert not price.known
    assert price.source == ("the acme price table (2025-06-01) is for https://api.acme.test/v1, not "
                            "http://…@127.0.0.1:9/v1")
    bare = BackendInfo(name="bare", summary="", default_base_url="https://api.bare.test")
    assert pricing.lookup(bare, "m", "http://127.0.0.1:9").source == (
        "the bare price table is for https://api.bare.test, not http://127.0.0.1:9")
    assert pricing.lookup(acme, "big", "https://api.acme.test/v1/").known  # its own URL, give or take a slash


def test_a_model_no_table_lists_says_which_table_it_is_missing_from(acme: BackendInfo) -> None:
    assert pricing.lookup(acme, "tiny").source == "tiny is not in the acme price table (2025-06-01)"


def test_a_partial_override_keeps_the_tables_other_prices_and_its_date(acme: BackendInfo) -> None:
    price = price_for(acme, "big", {"price_input_per_mtok": 4.0})
    assert price == ModelPrice(4.0, 15.0, 0.3, None, None, 1.5, 7.5,
                               source="profile + acme price table (2025-06-01)", date="2025-06-01")
    whole = price_for(acme, "big", {"price_input_per_mtok": 4.0, "price_output_per_mtok": 5.0,
                                    "price_batch_input_per_mtok": 2.0, "price_batch_output_per_mtok": 2.5,
                                    "price_cached_input_per_mtok": 0.5})
    assert whole == ModelPrice(4.0, 5.0, 0.5, None, None, 2.0, 2.5, source="profile", date=None)


def test_prices_in_use_hold_aliases_and_the_update_of_a_backend_that_ships_none(acme: BackendInfo) -> None:
    save_catalog(Catalog("s", "2026-01-01", {"bare": {"m": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}}),
                 price_catalog_path())
    in_use = prices_in_use([acme, BackendInfo(name="bare", summary="")])
    assert in_use["acme"]["large"] == in_use["acme"]["big"] == pricing.lookup(acme, "big").as_dict()
    assert in_use["bare"]["m"]["input_per_mtok"] == 1.0


# ---- read as UTF-8 whatever the locale -----------------------------------------------------------------------


@pytest.fixture
def ascii_locale() -> Iterator[None]:
    """The process's text encoding made ASCII (a C locale without UTF-8 mode), in this process, so whatever reads
    a file without naming its encoding reads it as ASCII here."""
    import locale

    if sys.flags.utf8_mode:  # the locale does not choose the encoding here: the reads are checked all the same
        yield
        return
    before = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    try:
        assert locale.getpreferredencoding(False) == "ANSI_X3.4-1968"
        yield
    finally:
        locale.setlocale(locale.LC_CTYPE, before)


def test_tables_are_read_as_utf8_under_an_ascii_locale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        ascii_locale: None) -> None:
    table = '[meta]\ndate = "2026-01-02"\nsource = "tarifs en € — à jour"\n'
    plain = tmp_path / "plain" / "plain_utf8_prices"
    plain.mkdir(parents=True)
    (plain / "__init__.py").write_text("")
    (plain / "prices.toml").write_bytes(table.encode("utf-8"))
    archive = tmp_path / "zipped.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("zipped_utf8_prices/__init__.py", "")
        zipped.writestr("zipped_utf8_prices/prices.toml", table.encode("utf-8"))
    stored = tmp_path / "prices.json"  # a stored update someone edited by hand, in UTF-8
    stored.write_bytes(json.dumps({"meta": {"source": "édité à la main", "date": "2026-01-02"}, "backends": {}},
                                  ensure_ascii=False).encode("utf-8"))
    monkeypatch.syspath_prepend(str(tmp_path / "plain"))
    monkeypatch.syspath_prepend(str(archive))
    pricing.clear_cache()
    try:
        for name, package in (("plain", "plain_utf8_prices"), ("zipped", "zipped_utf8_prices")):
            read = pricing.load_table(BackendInfo(name=name, summary="", prices=(package, "prices.toml")))
            assert read is not None and read.error is None and read.source == "tarifs en € — à jour"
        loaded = load_catalog(stored)
        assert loaded is not None and loaded.source == "édité à la main"
    finally:
        pricing.clear_cache()
        for package in ("plain_utf8_prices", "zipped_utf8_prices"):
            sys.modules.pop(package, None)
