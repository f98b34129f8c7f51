"""`llmswitch.price_catalog` function by function: the download over a real socket on 127.0.0.1 (its size
limits, headers and failures), reading a local file, converting and validating each field, comparing, and
storing and reading back the stored table as a real file. Each exact rule here was once a surviving mutant."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmswitch.config import price_catalog_path
from llmswitch.price_catalog import (
    MAX_CATALOG_BYTES,
    MAX_PRICE_PER_MTOK,
    MAX_TOKEN_LIMIT,
    Catalog,
    CatalogDiff,
    CatalogError,
    PriceChange,
    convert_catalog,
    diff_catalog,
    fetch_catalog,
    load_catalog,
    save_catalog,
    update_prices,
)
from tests.servers.http import LocalServer, ProtocolHandler, refused_port

PROVIDERS = {"openai": ("openai",), "anthropic": ("anthropic",)}
REMEDY = "check the network, or download the file yourself and run: llmswitch prices update --from FILE"


def priced(input_usd: float = 1e-06, output_usd: float = 2e-06, **more: Any) -> dict[str, Any]:
    return {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": input_usd,
            "output_cost_per_token": output_usd, **more}


def convert(table: dict[str, Any], providers: Any = PROVIDERS) -> Catalog:
    return convert_catalog(json.dumps(table).encode(), source="t.json", date="2026-11-28", providers=providers)


def refusal(table: dict[str, Any]) -> str:
    with pytest.raises(CatalogError) as caught:
        convert(table)
    return str(caught.value)


# ---- the download, over a real socket ------------------------------------------------------------------------


class CatalogHost(ProtocolHandler):
    """A static file host with the failures a download meets: an announced size, a size it does not announce,
    a body cut short, a server that never answers."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.read_json()
        scenario, body = self.state.scenario, self.state.options.get("body", b"{}")
        if scenario == "500":
            self.send_json(500, {"error": "down"})
            return
        if scenario == "hang":
            time.sleep(float(self.state.options.get("delay", 3.0)))
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if scenario == "announce":
            self.send_header("Content-Length", str(self.state.options["length"]))
        elif scenario != "unannounced":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if scenario == "announce":
            self.wfile.write(body[:100])
            self.cut_connection()
            return
        self.wfile.write(body)
        if scenario == "unannounced":  # HTTP/1.0 style: the body ends where the connection does
            self.cut_connection()


@pytest.fixture
def host() -> Iterator[LocalServer]:
    with LocalServer(CatalogHost) as running:
        yield running


def test_a_download_sends_who_asks_and_what_it_accepts_and_is_dated_today(host: LocalServer) -> None:
    host.state.options["body"] = b'{"a": 1}'
    data, date = fetch_catalog(f"{host.url}/prices.json")
    assert data == b'{"a": 1}' and date == dt.date.today().isoformat()
    [request] = host.state.requests
    assert request.path == "/prices.json"
    assert request.headers["user-agent"] == "llmswitch prices update"
    assert request.headers["accept"] == "application/json"


def test_a_download_of_exactly_the_limit_is_taken_and_one_byte_more_is_refused(host: LocalServer) -> None:
    host.state.options["body"] = b" " * MAX_CATALOG_BYTES
    data, _ = fetch_catalog(f"{host.url}/prices.json")
    assert len(data) == MAX_CATALOG_BYTES
    host.state.options["body"] = b" " * (MAX_CATALOG_BYTES + 1)
    host.state.scenario = "unannounced"
    with pytest.raises(CatalogError) as caught:
        fetch_catalog(f"{host.url}/prices.json")
    assert str(caught.value) == f"{host.url}/prices.json sent more than 33,554,432 bytes: not a price table"


def test_a_download_that_announces_too_many_bytes_is_refused_before_reading_them(host: LocalServer) -> None:
    host.state.scenario = "announce"
    host.state.options.update(body=b" " * 200, length=MAX_CATALOG_BYTES + 1)
    with pytest.raises(CatalogError) as caught:
        fetch_catalog(f"{host.url}/prices.json")
    assert str(caught.value) == f"{host.url}/prices.json announces 33,554,433 bytes, more than any price table"


def test_a_server_error_names_the_status_and_the_way_round_it(host: LocalServer) -> None:
    host.state.scenario = "500"
    with pytest.raises(CatalogError) as caught:
        fetch_catalog(f"{host.url}/prices.json")
    assert str(caught.value) == f"{host.url}/prices.json answered HTTP 500 Internal Server Error"
    assert caught.value.remedy == REMEDY


def test_no_server_is_a_sentence_with_the_way_round_it() -> None:
    url = f"http://127.0.0.1:{refused_port()}/prices.json"
    with pytest.raises(CatalogError) as caught:
        fetch_catalog(url)
    assert str(caught.value).startswith(f"cannot reach {url}: ") and "refused" in str(caught.value)
    assert caught.value.remedy == REMEDY


def test_a_server_that_never_answers_times_out_with_a_sentence(host: LocalServer) -> None:
    host.state.scenario = "hang"
    started = time.monotonic()
    with pytest.raises(CatalogError) as caught:
        fetch_catalog(f"{host.url}/prices.json", timeout=0.3)
    assert time.monotonic() - started < 2.5
    assert str(caught.value) == f"cannot download {host.url}/prices.json: timed out"
    assert caught.value.remedy == REMEDY


def test_a_body_cut_short_is_a_sentence_not_a_traceback(host: LocalServer) -> None:
    host.state.scenario = "announce"
    host.state.options.update(body=b" " * 200, length=1000)  # the host sends the first 100 and hangs up
    with pytest.raises(CatalogError) as caught:
        fetch_catalog(f"{host.url}/prices.json")
    assert str(caught.value) == f"{host.url}/prices.json sent 100 of the 1,000 bytes it announced: cut short"
    assert caught.value.remedy == REMEDY


# ---- a local file --------------------------------------------------------------------------------------------


def test_a_file_is_read_by_path_file_url_or_home_and_dated_by_its_utc_modification_day(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "prices.json"
    path.write_bytes(b'{"x": 1}')
    late = dt.datetime(2026, 1, 2, 23, 30, tzinfo=dt.timezone.utc).timestamp()  # already Jan 3rd east of UTC
    os.utime(path, (late, late))
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        assert fetch_catalog(str(path)) == (b'{"x": 1}', "2026-01-02")
        assert fetch_catalog(f"file://{path}") == (b'{"x": 1}', "2026-01-02")
        monkeypatch.setenv("HOME", str(tmp_path))
        assert fetch_catalog("~/prices.json") == (b'{"x": 1}', "2026-01-02")
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_a_file_of_exactly_the_limit_is_read_and_a_larger_one_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    with path.open("wb") as file:
        file.truncate(MAX_CATALOG_BYTES)  # sparse: no disk used
    assert len(fetch_catalog(str(path))[0]) == MAX_CATALOG_BYTES
    with path.open("wb") as file:
        file.truncate(MAX_CATALOG_BYTES + 1)
    with pytest.raises(CatalogError) as caught:
        fetch_catalog(str(path))
    assert str(caught.value) == f"{path} has 33,554,433 bytes, more than any price table (33,554,432 at most)"


def test_a_missing_or_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(CatalogError) as missing:
        fetch_catalog(str(tmp_path / "nope.json"))
    assert str(missing.value) == f"no file at {tmp_path / 'nope.json'}"
    assert missing.value.remedy == "give --from an existing file or an https:// URL"
    with pytest.raises(CatalogError) as directory:
        fetch_catalog(str(tmp_path))
    assert str(directory.value) == f"cannot read {tmp_path}: Is a directory"


# ---- converting and validating -------------------------------------------------------------------------------


def test_every_field_is_converted_to_per_million_and_limits_kept() -> None:
    catalog = convert({"gpt-x": priced(1.234567891e-06, 2e-06, cache_read_input_token_cost=5e-07,
                                       input_cost_per_token_batches=6e-07, output_cost_per_token_batches=1e-06,
                                       max_input_tokens=1000, max_output_tokens=500)})
    assert catalog.backends == {"openai": {"gpt-x": {
        "input_per_mtok": 1.234568, "output_per_mtok": 2.0, "cached_input_per_mtok": 0.5,
        "batch_input_per_mtok": 0.6, "batch_output_per_mtok": 1.0, "context_window": 1000, "max_output": 500}}}
    assert (catalog.source, catalog.date, catalog.model_count()) == ("t.json", "2026-11-28", 1)


def test_what_is_kept_and_what_is_skipped() -> None:
    catalog = convert({
        "sample_spec": "LiteLLM documents its fields here",  # never read as a model
        "no-mode": {k: v for k, v in priced().items() if k != "mode"},  # chat unless it says otherwise
        "completion-model": priced(mode="completion"),
        "responses-model": priced(mode="responses"),
        "image-model": priced(mode="image_generation"),
        "openai/ft:gpt/custom": priced(),  # only the provider's own prefix is dropped
        "azure/gpt-y": priced(),  # another provider's prefix is part of the name
        "input-only": {"litellm_provider": "openai", "input_cost_per_token": 1e-06, "max_input_tokens": 10},
        "free-model": priced(0.0, 0.0),
        "no-provider": {"input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06},
        "number-provider": {**priced(), "litellm_provider": 7},
    })
    assert sorted(catalog.backends["openai"]) == ["azure/gpt-y", "completion-model", "free-model", "ft:gpt/custom",
                                                  "no-mode", "responses-model"]
    assert "anthropic" not in catalog.backends  # a backend the table has nothing for is left out
    assert catalog.backends["openai"]["free-model"] == {"input_per_mtok": 0.0, "output_per_mtok": 0.0}


def test_each_provider_name_maps_to_its_backend() -> None:
    catalog = convert({"a": priced(), "b": {**priced(), "litellm_provider": "azure_openai"},
                       "c": {**priced(), "litellm_provider": "anthropic"}},
                      providers={"openai": ("openai", "azure_openai"), "anthropic": ("anthropic",)})
    assert {name: sorted(models) for name, models in catalog.backends.items()} == \
        {"openai": ["a", "b"], "anthropic": ["c"]}


def test_prices_and_limits_at_their_bounds() -> None:
    at_most = MAX_PRICE_PER_MTOK / 1_000_000
    assert convert({"m": priced(at_most, at_most)}).backends["openai"]["m"]["input_per_mtok"] == MAX_PRICE_PER_MTOK
    assert refusal({"m": priced(at_most * 1.001)}) == (
        "t.json: 'm': input_cost_per_token is $5,005.00 per million tokens, beyond any real price (at most $5,000)")
    assert refusal({"m": priced(-1e-09)}) == "t.json: 'm': input_cost_per_token is negative (-1e-09)"
    assert convert({"m": priced(max_input_tokens=MAX_TOKEN_LIMIT, max_output_tokens=1)}).backends["openai"]["m"][
        "context_window"] == MAX_TOKEN_LIMIT
    for bad in (0, MAX_TOKEN_LIMIT + 1, True, 1.5, "100"):
        assert refusal({"m": priced(max_output_tokens=bad)}) == (
            f"t.json: 'm': max_output_tokens must be a token count from 1 to 100,000,000, not {bad!r}")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "0.1", True, None])
def test_a_price_that_is_not_a_finite_number_is_refused(bad: Any) -> None:
    entry = priced(output_usd=bad)
    if bad is None:  # a missing price is no price, not an error
        assert convert({"m": entry, "n": priced()}).backends["openai"].keys() == {"n"}
        return
    assert refusal({"m": entry}) == f"t.json: 'm': output_cost_per_token must be a number, not {bad!r}"


def test_refusals_name_the_source_and_the_entry_exactly() -> None:
    with pytest.raises(CatalogError) as not_json:
        convert_catalog(b"{oops", source="t.json", date="d", providers=PROVIDERS)
    assert str(not_json.value).startswith("t.json is not JSON: Expecting property name")
    with pytest.raises(CatalogError) as not_utf8:
        convert_catalog(b'{"\xff": 1}', source="t.json", date="d", providers=PROVIDERS)
    assert str(not_utf8.value).startswith("t.json is not JSON: ")
    with pytest.raises(CatalogError) as not_object:
        convert_catalog(b"[1]", source="t.json", date="d", providers=PROVIDERS)
    assert str(not_object.value) == "t.json: expected a JSON object of models, found list"
    assert refusal({"m": "text"}) == "t.json: entry 'm' must be an object, not str"
    assert refusal({"m" * 257: priced()}) == (
        f"t.json: a model name of 257 characters ('{'m' * 39}... (259 characters)): not a model")
    assert convert({"m" * 256: priced()}).model_count() == 1
    assert refusal({"bad\nname": priced()}) == "t.json: the model name 'bad\\nname' has control characters"


def test_a_long_value_is_shown_cut_to_forty_characters_with_its_length() -> None:
    fits = "x" * 58  # 60 characters with its quotes: shown whole
    assert refusal({"m": priced(fits)}) == f"t.json: 'm': input_cost_per_token must be a number, not '{fits}'"
    longer = "x" * 59
    assert refusal({"m": priced(longer)}) == (
        f"t.json: 'm': input_cost_per_token must be a number, not '{'x' * 39}... (61 characters)")


def test_a_table_with_nothing_for_our_backends_says_which_it_looked_for() -> None:
    with pytest.raises(CatalogError) as caught:
        convert({"m": {**priced(), "litellm_provider": "bedrock"}})
    assert str(caught.value) == "t.json lists no model for anthropic, openai"
    assert caught.value.remedy == "is it LiteLLM's model_prices_and_context_window.json format?"
    with pytest.raises(CatalogError) as none_installed:
        convert({"m": priced()}, providers={})
    assert str(none_installed.value) == "t.json lists no model for any installed backend"


# ---- comparing -----------------------------------------------------------------------------------------------


def test_a_change_factor_is_the_larger_ratio_either_way() -> None:
    assert PriceChange("b", "m", "f", 1.0, 4.0).factor == 4.0
    assert PriceChange("b", "m", "f", 4.0, 1.0).factor == 4.0
    assert PriceChange("b", "m", "f", 2.0, 0.0).factor == float("inf")
    assert PriceChange("b", "m", "f", 0.0, 2.0).factor is None  # from free: no ratio
    assert PriceChange("b", "m", "f", None, 2.0).factor is None
    assert PriceChange("b", "m", "f", 2.0, None).factor is None


def test_only_moves_beyond_tenfold_are_suspicious() -> None:
    changes = [PriceChange("b", "ten", "f", 1.0, 10.0), PriceChange("b", "more", "f", 1.0, 10.01),
               PriceChange("b", "new", "f", None, 5.0)]
    assert [c.model for c in CatalogDiff(changed=changes).suspicious()] == ["more"]


def test_a_diff_names_added_changed_and_removed_models_in_order() -> None:
    catalog = Catalog("s", "d", {"openai": {"z": {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
                                            "a": {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
                                            "same": {"input_per_mtok": 1.0, "output_per_mtok": 2.0,
                                                     "context_window": 9},
                                            "moved": {"input_per_mtok": 3.0, "output_per_mtok": 4.0}}})
    in_use = {"openai": {"same": {"input_per_mtok": 1, "output_per_mtok": 2.0, "context_window": 1},
                         "moved": {"input_per_mtok": 1.0, "output_per_mtok": True}}}
    previous = Catalog("s", "d", {"openai": {"gone2": {}, "gone1": {}, "a": {}},
                                  "anthropic": {"old": {}}, "echo": {}})
    diff = diff_catalog(catalog, in_use, previous)
    assert diff.added == {"openai": ["a", "z"]}
    assert diff.changed == [PriceChange("openai", "moved", "input_per_mtok", 1.0, 3.0),
                            PriceChange("openai", "moved", "output_per_mtok", None, 4.0)]
    assert diff.removed == {"openai": ["gone1", "gone2"], "anthropic": ["old"]}
    assert diff.as_dict() == {
        "added": {"openai": ["a", "z"]}, "removed": {"openai": ["gone1", "gone2"], "anthropic": ["old"]},
        "changed": [{"backend": "openai", "model": "moved", "field": "input_per_mtok", "old": 1.0, "new": 3.0},
                    {"backend": "openai", "model": "moved", "field": "output_per_mtok", "old": None, "new": 4.0}]}
    assert diff_catalog(catalog, {}, None).removed == {}


# ---- storing and reading back --------------------------------------------------------------------------------


def test_a_stored_table_is_one_document_per_backend_written_whole(tmp_path: Path) -> None:
    catalog = Catalog("https://x/prices.json", "2026-11-28",
                      {"openai": {"m": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}, "anthropic": {}})
    path = tmp_path / "new" / "dir" / "prices.json"
    save_catalog(catalog, path)
    document = {"meta": {"source": "https://x/prices.json", "date": "2026-11-28",
                         "format": "llmswitch price tables, one per backend"},
                "backends": {"anthropic": {"meta": {"source": "https://x/prices.json", "date": "2026-11-28"},
                                           "models": {}},
                             "openai": {"meta": {"source": "https://x/prices.json", "date": "2026-11-28"},
                                        "models": {"m": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}}}}
    assert path.read_text(encoding="utf-8") == json.dumps(document, indent=1, sort_keys=True)
    assert [p.name for p in path.parent.iterdir()] == ["prices.json"]  # no temporary file left behind
    save_catalog(Catalog("s", "d", {}), path)  # the directory exists now: written over
    assert load_catalog(path) == Catalog("s", "d", {})
    assert load_catalog(tmp_path / "absent.json") is None
    saved = tmp_path / "again.json"
    save_catalog(catalog, saved)
    assert load_catalog(saved) == catalog


@pytest.mark.parametrize("content, problem", [
    (b"{not json", "cannot be read: Expecting property name"),
    (b"\xff\xfe", "cannot be read: 'utf-8' codec can't decode"),
    (b"{}", "is damaged (KeyError('meta') missing)"),
    (b'{"meta": {"source": "s", "date": "d"}}', "is damaged (KeyError('backends') missing)"),
    (b'{"meta": {"source": "s"}, "backends": {}}', "is damaged (KeyError('date') missing)"),
    (b'{"meta": {"source": "s", "date": "d"}, "backends": []}', "is damaged (AttributeError("),
    (b'{"meta": {"source": "s", "date": "d"}, "backends": {"openai": "x"}}', "is damaged (TypeError("),
    (b'{"meta": {"source": "s", "date": "d"}, "backends": {"openai": {"models": 5}}}', "is damaged (TypeError("),
])
def test_a_damaged_stored_table_is_named_with_its_remedy(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "prices.json"
    path.write_bytes(content)
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    assert str(caught.value).startswith(f"the updated price table {path} ")
    assert problem in str(caught.value)
    assert caught.value.remedy == f"run 'llmswitch prices update' again, or delete {path}"


def test_a_stored_table_that_is_a_directory_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(CatalogError) as caught:
        load_catalog(tmp_path)
    assert str(caught.value).startswith(f"the updated price table {tmp_path} cannot be read: ")


# ---- the whole update ------------------------------------------------------------------------------------------


def test_an_update_stores_in_the_data_dir_unless_told_where_or_dry_run(tmp_path: Path) -> None:
    source = tmp_path / "prices.json"
    source.write_text(json.dumps({"m": priced()}))
    dry = update_prices(str(source), providers=PROVIDERS, in_use={}, dry_run=True)
    assert dry.written is False and dry.path == price_catalog_path() and not price_catalog_path().exists()
    assert dry.diff.added == {"openai": ["m"]}
    done = update_prices(str(source), providers=PROVIDERS, in_use={})
    assert done.written is True and load_catalog(price_catalog_path()) == done.catalog
    elsewhere = tmp_path / "mine.json"
    assert update_prices(str(source), providers=PROVIDERS, in_use={}, path=elsewhere).path == elsewhere
    assert load_catalog(elsewhere) == done.catalog


def test_an_update_compares_with_the_last_one_stored(tmp_path: Path) -> None:
    source = tmp_path / "prices.json"
    source.write_text(json.dumps({"m": priced(), "n": priced()}))
    update_prices(str(source), providers=PROVIDERS, in_use={})
    source.write_text(json.dumps({"m": priced()}))
    assert update_prices(str(source), providers=PROVIDERS, in_use={}).diff.removed == {"openai": ["n"]}


def test_an_update_moving_many_prices_shows_five_and_counts_the_rest(tmp_path: Path) -> None:
    source = tmp_path / "prices.json"
    names = [f"m{i}" for i in range(7)]
    source.write_text(json.dumps({name: priced(1e-04, 2e-06) for name in names}))
    in_use = {"openai": {name: {"input_per_mtok": 1.0, "output_per_mtok": 2.0} for name in names}}
    with pytest.raises(CatalogError) as caught:
        update_prices(str(source), providers=PROVIDERS, in_use=in_use)
    shown = "; ".join(f"openai m{i} input_per_mtok $1.0 -> $100.0" for i in range(5))
    assert str(caught.value) == f"7 price(s) would move by more than 10x: {shown} and 2 more"
    assert caught.value.remedy == "check the source; if the prices are right, run again with --force"
    assert not price_catalog_path().exists()
    five = {"openai": {name: in_use["openai"][name] for name in names[:5]}}
    with pytest.raises(CatalogError) as exactly_five:
        update_prices(str(source), providers=PROVIDERS, in_use=five)
    assert str(exactly_five.value).endswith("m4 input_per_mtok $1.0 -> $100.0")
    six = {"openai": {name: in_use["openai"][name] for name in names[:6]}}
    with pytest.raises(CatalogError) as one_more:
        update_prices(str(source), providers=PROVIDERS, in_use=six)
    assert str(one_more.value).endswith("m4 input_per_mtok $1.0 -> $100.0 and 1 more")
    forced = update_prices(str(source), providers=PROVIDERS, in_use=in_use, force=True)
    assert forced.written and len(forced.diff.suspicious()) == 7


def test_a_missing_field_does_not_hide_the_fields_after_it() -> None:
    entry = priced(input_cost_per_token_batches=5e-07, max_output_tokens=100)  # no cached price, no input limit
    assert convert({"m": entry}).backends["openai"]["m"] == {
        "input_per_mtok": 1.0, "output_per_mtok": 2.0, "batch_input_per_mtok": 0.5, "max_output": 100}


def test_an_https_address_is_downloaded_never_read_as_a_file(host: LocalServer) -> None:
    url = f"https://127.0.0.1:{host.port}/prices.json"  # a plain-HTTP server: the TLS handshake fails
    with pytest.raises(CatalogError) as caught:
        fetch_catalog(url, timeout=5)
    assert str(caught.value).startswith(f"cannot reach {url}: ") and caught.value.remedy == REMEDY
