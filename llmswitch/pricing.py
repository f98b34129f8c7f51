"""Prices as data: each plugin ships a price table; a profile may override it; unknown stays unknown.

A plugin names its table in ``BackendInfo.prices = (package, resource)``. The file is read lazily, once per
process, with :mod:`importlib.resources` (never from the network). TOML (or the same shape as JSON)::

    [meta]
    date = "2025-06-01"
    source = "https://openai.com/api/pricing/"

    [models."gpt-4o-mini"]
    input_per_mtok = 0.15          # USD per million input tokens
    output_per_mtok = 0.60         # USD per million output tokens
    cached_input_per_mtok = 0.075  # where the provider discounts cached input
    context_window = 128000
    max_output = 16384
    aliases = ["gpt-4o-mini-2024-07-18"]   # other names for the same model and price

    [default]                      # any model not listed (local backends: zeros); also [models."*"]
    input_per_mtok = 0.0
    output_per_mtok = 0.0

Optional per model: ``batch_input_per_mtok`` and ``batch_output_per_mtok`` (a provider's batch service).

A table prices the backend's own service, at its ``default_base_url``: a model served anywhere else (a custom
``base_url``, or one from the backend's URL variable) is priced only by the profile's keys or the preset's (a preset
for a self-hosted server says $0), because ``-m gpt-4o`` on a local llama.cpp server is not OpenAI's gpt-4o. A table
whose prices hold on any server (Ollama's: local inference is free wherever it runs) says so with
``[meta] any_server = true``. The same holds for the table ``llmswitch prices update`` stores.

A model is found by its exact name or an alias, else by its name without a snapshot suffix (``gpt-4o-mini-2024-07-18``,
``claude-sonnet-4-5-20250929``, ``llama3.2:latest``), else the ``[default]`` table.

Where a price comes from, highest first: the profile's keys (``price_input_per_mtok``,
``price_output_per_mtok``, ``price_cached_input_per_mtok``) > the table ``llmswitch prices update`` stored in
the data dir (:mod:`llmswitch.price_catalog`) > the table the plugin ships. Every price carries the date of
the table it came from, so its age can be shown. A price nobody knows is ``None`` and shows as "unknown": never 0.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmswitch.record import record

if TYPE_CHECKING:
    from llmswitch.types import BackendInfo

# The request ``doctor`` prices for its cost column, and ``cost`` assumes without a prompt: the seeds'
# "500 tokens in, 500 tokens out".
STANDARD_INPUT_TOKENS = 500
STANDARD_OUTPUT_TOKENS = 500

PRICE_FIELDS = ("input_per_mtok", "output_per_mtok", "cached_input_per_mtok", "batch_input_per_mtok",
                "batch_output_per_mtok")
# A table older than this gets a warning in `doctor`, with the command that refreshes it.
STALE_AFTER_DAYS = 90
LIMIT_FIELDS = ("context_window", "max_output")
# profile key -> field of ModelPrice
PROFILE_OVERRIDES = {
    "price_input_per_mtok": "input_per_mtok",
    "price_output_per_mtok": "output_per_mtok",
    "price_cached_input_per_mtok": "cached_input_per_mtok",
    "price_batch_input_per_mtok": "batch_input_per_mtok",
    "price_batch_output_per_mtok": "batch_output_per_mtok",
}

# Snapshot and tag suffixes that do not change the price: dates (-2024-07-18, -20250929, @20241022) and
# Ollama's ":latest".
_SNAPSHOT_SUFFIX = re.compile(r"(?:-\d{4}-\d{2}-\d{2}|[-@]\d{8}|-latest|:latest)$")


@record
class ModelPrice:
    """USD per million tokens (``None`` = unknown) and the model's limits, as a table or profile states."""

    input_per_mtok: float | None = None
    output_per_mtok: float | None = None
    cached_input_per_mtok: float | None = None
    context_window: int | None = None
    max_output: int | None = None
    batch_input_per_mtok: float | None = None
    batch_output_per_mtok: float | None = None
    source: str = "unknown"
    date: str | None = None  # YYYY-MM-DD of the table the price came from

    def age_days(self, today: dt.date | None = None) -> int | None:
        """Days since the price's table was dated; None when nobody dated it."""
        return age_in_days(self.date, today)

    @property
    def batch(self) -> ModelPrice:
        """The price through the provider's batch service; unknown when the table does not say."""
        return replace(self, input_per_mtok=self.batch_input_per_mtok, output_per_mtok=self.batch_output_per_mtok,
                       cached_input_per_mtok=None, source=f"{self.source}, batch")

    @property
    def known(self) -> bool:
        """True when both input and output prices are known, so a call can be priced."""
        return self.input_per_mtok is not None and self.output_per_mtok is not None

    @property
    def free(self) -> bool:
        return self.known and self.input_per_mtok == 0 and self.output_per_mtok == 0

    def cost(self, input_tokens: int | None, output_tokens: int | None, cached_input_tokens: int = 0) -> float | None:
        """USD for a call, or None when a price or a token count is unknown.

        ``cached_input_tokens`` are part of ``input_tokens`` and billed at the cached rate when there is one.
        """
        if not self.known or input_tokens is None or output_tokens is None:
            return None
        assert self.input_per_mtok is not None and self.output_per_mtok is not None
        cached = min(max(cached_input_tokens, 0), input_tokens)
        cached_rate = self.cached_input_per_mtok if self.cached_input_per_mtok is not None else self.input_per_mtok
        usd = (input_tokens - cached) * self.input_per_mtok + cached * cached_rate
        usd += output_tokens * self.output_per_mtok
        return usd / 1_000_000

    def as_dict(self) -> dict[str, Any]:
        return {
            "input_per_mtok": self.input_per_mtok,
            "output_per_mtok": self.output_per_mtok,
            "cached_input_per_mtok": self.cached_input_per_mtok,
            "context_window": self.context_window,
            "max_output": self.max_output,
            "batch_input_per_mtok": self.batch_input_per_mtok,
            "batch_output_per_mtok": self.batch_output_per_mtok,
            "source": self.source,
            "date": self.date,
            "age_days": self.age_days(),
        }


UNKNOWN = ModelPrice()


@record(slots=False)
class PriceTable:
    """One plugin's price file: when and where the figures come from, and the prices per model."""

    backend: str
    origin: str  # "package/resource", for messages
    date: str | None = None
    source: str | None = None
    models: Mapping[str, ModelPrice] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)  # another name -> the model's own name
    default: ModelPrice | None = None
    error: str | None = None  # the file could not be read: every price in it is unknown
    updated: bool = False  # written by `llmswitch prices update`, not shipped by the plugin
    any_server: bool = False  # the prices hold whatever base_url the backend talks to

    def age_days(self, today: dt.date | None = None) -> int | None:
        return age_in_days(self.date, today)

    @property
    def label(self) -> str:
        """How a price from this table is attributed: ``echo price table (2025-06-01)``."""
        return table_label(self.backend, self.date, updated=self.updated)

    def find(self, model: str) -> ModelPrice | None:
        """The model's own entry: its name or an alias, then its name without a snapshot suffix."""
        for name in (model, _SNAPSHOT_SUFFIX.sub("", model)):
            found = self.models.get(self.aliases.get(name, name))
            if found is not None:
                return found
        return None

    def lookup(self, model: str) -> ModelPrice | None:
        """The model's entry (see :meth:`find`), else ``[default]``."""
        found = self.find(model)
        return found if found is not None else self.default


class PriceTableError(ValueError):
    """A price file that does not have the documented shape."""


def table_label(backend: str, date: str | None, *, updated: bool = False) -> str:
    kind = "updated price table" if updated else "price table"
    return f"{backend} {kind}" + (f" ({date})" if date else "")


def age_in_days(date: str | None, today: dt.date | None = None) -> int | None:
    if not date:
        return None
    try:
        day = dt.date.fromisoformat(str(date)[:10])
    except ValueError:
        return None
    return max(((today or dt.date.today()) - day).days, 0)


def format_age(days: int | None) -> str:
    """``today``, ``1 day old``, ``478 days old``, or ``undated``."""
    if days is None:
        return "undated"
    if days == 0:
        return "today"
    return f"{days:,} day{'s' if days != 1 else ''} old"


def price_age_label(price: ModelPrice, today: dt.date | None = None) -> str:
    """Where a price stands in time, for tables: ``2025-08-07, 478 days old``, ``set in the profile``, ``undated``."""
    if not price.known:
        return ""
    if price.date:
        return f"{price.date}, {format_age(price.age_days(today))}"
    return "set in the profile" if price.source.startswith("profile") else "undated"


def parse_table(text: str, *, backend: str, origin: str, format: str = "toml", updated: bool = False) -> PriceTable:
    """Parse a price file's text. Raises PriceTableError (naming the entry) when the shape is wrong."""
    if format == "json":
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PriceTableError(f"{origin}: not JSON: {exc}") from None
    else:
        from llmswitch.config import parse_toml
        from llmswitch.errors import ConfigSyntaxError

        try:
            document = parse_toml(text, origin)
        except ConfigSyntaxError as exc:
            raise PriceTableError(exc.message) from None
    if not isinstance(document, dict):
        raise PriceTableError(f"{origin}: expected a table at the top level")
    meta = document.get("meta")
    if meta is None:  # tolerated: date and source at the top level
        meta = {key: document[key] for key in ("date", "source") if key in document}
    if not isinstance(meta, dict):
        raise PriceTableError(f"{origin}: [meta] must be a table")
    date = str(meta["date"]) if meta.get("date") is not None else None
    label = table_label(backend, date, updated=updated)
    models_raw = document.get("models") or {}
    if not isinstance(models_raw, dict):
        raise PriceTableError(f"{origin}: [models] must be a table of tables")
    models: dict[str, ModelPrice] = {}
    aliases: dict[str, str] = {}
    for name, values in models_raw.items():
        where = f"{origin} [models.{name!r}]"
        models[str(name)] = _entry(values, where, label, date)
        names = values.get("aliases", [])
        if not isinstance(names, list) or not all(isinstance(alias, str) for alias in names):
            raise PriceTableError(f"{where}: aliases must be a list of model names")
        aliases.update(dict.fromkeys(names, str(name)))
    any_server = meta.get("any_server", False)
    if not isinstance(any_server, bool):
        raise PriceTableError(f"{origin}: [meta] any_server must be true or false")
    default_raw = document.get("default")
    default = _entry(default_raw, f"{origin} [default]", label, date) if default_raw is not None else None
    if default is None and "*" in models:  # tolerated: [models."*"] for "every other model"
        default = models.pop("*")
    return PriceTable(
        backend=backend,
        origin=origin,
        date=date,
        source=str(meta["source"]) if meta.get("source") is not None else None,
        models=models,
        aliases=aliases,
        default=default,
        updated=updated,
        any_server=any_server,
    )


def _entry(values: Any, where: str, label: str, date: str | None) -> ModelPrice:
    if not isinstance(values, dict):
        raise PriceTableError(f"{where}: must be a table")
    from llmswitch.profiles import non_finite_entry

    # TOML's inf and nan and JSON's Infinity and NaN pass every comparison below one way or the other: an
    # infinite price would refuse every call over budget, a nan one would make every sum nan.
    odd = non_finite_entry(values)
    if odd is not None:
        raise PriceTableError(f"{where}: {odd} is not a price; write an ordinary number of USD per million "
                              "tokens, or remove the field (the price is then unknown)")
    checked: dict[str, Any] = {}
    for name in PRICE_FIELDS:
        value = values.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise PriceTableError(f"{where}: {name} must be a non-negative number, not {value!r}")
        checked[name] = float(value)
    for name in LIMIT_FIELDS:
        value = values.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise PriceTableError(f"{where}: {name} must be a positive integer, not {value!r}")
        checked[name] = value
    return ModelPrice(**checked, source=label, date=date)


def _package_text(package: str, resource: str) -> str:
    """A data file shipped inside ``package``. The plugin's package is already imported, so its folder is
    known: read the file there, and ask :mod:`importlib.resources` (slow to import: it costs every ``chat`` a
    few milliseconds) only for a package that is not a plain folder (a zip)."""
    import importlib

    location = getattr(importlib.import_module(package), "__file__", None)
    if location is not None:
        path = Path(location).parent / resource
        if path.is_file():
            return path.read_text(encoding="utf-8")
    from importlib import resources

    return resources.files(package).joinpath(resource).read_text(encoding="utf-8")


@functools.cache
def _load(backend: str, package: str, resource: str) -> PriceTable:
    origin = f"{package}/{resource}"
    try:
        text = _package_text(package, resource)
    except (OSError, ModuleNotFoundError, UnicodeDecodeError) as exc:
        return PriceTable(backend=backend, origin=origin, error=f"cannot read {origin}: {exc}")
    try:
        return parse_table(text, backend=backend, origin=origin,
                           format="json" if resource.endswith(".json") else "toml")
    except PriceTableError as exc:
        return PriceTable(backend=backend, origin=origin, error=str(exc))


def load_table(info: BackendInfo) -> PriceTable | None:
    """The backend's price table (read once per process), or None when its plugin ships none.

    A table that cannot be read comes back with ``error`` set and no prices, so it shows as unknown.
    """
    if info.prices is None:
        return None
    package, resource = info.prices
    return _load(info.name, package, resource)


def clear_cache() -> None:
    """Forget the tables read so far (tests, and a long-lived TUI after plugins change)."""
    _load.cache_clear()
    _load_updated.cache_clear()


def updated_table(backend: str) -> PriceTable | None:
    """The backend's table from the last ``llmswitch prices update``, or None when there is none.

    Read from the data dir once per process (and again when the file changes). A damaged file is treated as
    absent here, so prices fall back to the shipped table; ``doctor`` and ``prices`` report the damage.
    """
    from llmswitch.config import price_catalog_path

    path = price_catalog_path()
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return None
    tables = _load_updated(path, stamp)
    return tables.get(backend)


@functools.lru_cache(maxsize=4)
def _load_updated(path: Path, stamp: int) -> dict[str, PriceTable]:
    from llmswitch.price_catalog import CatalogError, load_catalog

    try:
        catalog = load_catalog(path)
    except CatalogError:
        return {}
    if catalog is None:
        return {}
    tables: dict[str, PriceTable] = {}
    for backend, models in catalog.backends.items():
        document = {"meta": {"date": catalog.date, "source": catalog.source}, "models": models}
        try:
            tables[backend] = parse_table(json.dumps(document), backend=backend, origin=str(path), format="json",
                                          updated=True)
        except PriceTableError as exc:  # no price from it (lookups fall through to the shipped table); `prices` says why
            tables[backend] = PriceTable(backend=backend, origin=str(path), error=str(exc), updated=True)
    return tables


def on_another_server(info: BackendInfo, base_url: str | None) -> bool:
    """True when ``base_url`` is not the backend's own service (the one its price tables are about)."""
    return not info.is_own_url(base_url)


def lookup(info: BackendInfo | None, model: str, base_url: str | None = None) -> ModelPrice:
    """The price for ``model`` at ``base_url`` (None: the backend's own service) from the updated table, else
    the plugin's; profile overrides ignored here.

    UNKNOWN when nobody says, and on another server than the backend's own unless the shipped table says its
    prices hold on any server. The updated table has no ``[default]``: a model it does not list falls through
    to the shipped table, whose default (a local backend's $0) still applies.
    """
    if info is None:
        return UNKNOWN
    table = load_table(info)
    if on_another_server(info, base_url) and not (table is not None and table.any_server):
        label = table.label if table is not None else f"{info.name} price table"
        from llmswitch.secrets import redact_url

        shown = redact_url(base_url or "")
        return replace(UNKNOWN, source=f"the {label} is for {info.default_base_url or info.name}, not {shown}")
    updated = updated_table(info.name)
    found_updated = updated.find(model) if updated is not None else None
    if found_updated is not None:
        return found_updated
    if table is None:
        return replace(UNKNOWN, source=f"backend {info.name} ships no price table")
    if table.error:
        return replace(UNKNOWN, source=f"{table.label} unreadable")
    found = table.lookup(model)
    if found is None:
        return replace(UNKNOWN, source=f"{model} is not in the {table.label}")
    return found


def price_for(
    info: BackendInfo | None, model: str, settings: Mapping[str, Any] | None = None, base_url: str | None = None
) -> ModelPrice:
    """The price a profile pays: the plugin's table, with the profile's ``price_*_per_mtok`` keys winning.

    ``settings`` are the profile's validated keys (presets expanded), e.g. ``ResolvedProfile.settings``;
    ``base_url`` is where the calls go (``Target.base_url``): another server than the backend's own is priced
    only by those keys (see the module's docstring).
    """
    price = lookup(info, model, base_url)
    overrides = {
        field_name: float(settings[key])
        for key, field_name in PROFILE_OVERRIDES.items()
        if settings is not None and settings.get(key) is not None
    }
    if not overrides:
        return price
    from_table = [name for name in ("input_per_mtok", "output_per_mtok")
                  if name not in overrides and getattr(price, name) is not None]
    source = "profile" + (f" + {price.source}" if from_table else "")
    return replace(
        price,
        source=source,
        date=price.date if from_table else None,  # a profile's own figure is the user's: it has no table age
        input_per_mtok=overrides.get("input_per_mtok", price.input_per_mtok),
        output_per_mtok=overrides.get("output_per_mtok", price.output_per_mtok),
        cached_input_per_mtok=overrides.get("cached_input_per_mtok", price.cached_input_per_mtok),
        batch_input_per_mtok=overrides.get("batch_input_per_mtok", price.batch_input_per_mtok),
        batch_output_per_mtok=overrides.get("batch_output_per_mtok", price.batch_output_per_mtok),
    )


def format_usd(usd: float | None) -> str:
    """Money for people: ``unknown``, ``$0``, ``$12.50``, ``$0.0123``, ``$0.000150`` (small sums keep 3 digits)."""
    if usd is None:
        return "unknown"
    if usd == 0:
        return "$0"
    if usd >= 1:
        return f"${usd:,.2f}"
    if usd >= 0.01:
        return f"${usd:.4f}"
    digits = 2 - int(f"{usd:e}".split("e")[1])  # three significant digits
    return f"${usd:.{min(digits, 10)}f}"


def format_rate(per_mtok: float | None) -> str:
    """A per-million-token price: ``$0.15``, ``$0.075``, ``$2.50``, ``$0``, ``unknown``."""
    if per_mtok is None:
        return "unknown"
    if per_mtok == 0:
        return "$0"
    whole, _, decimals = f"{per_mtok:,.4f}".partition(".")
    decimals = decimals.rstrip("0").ljust(2, "0")
    return f"${whole}.{decimals}"


def prices_in_use(infos: list[BackendInfo]) -> dict[str, dict[str, dict[str, Any]]]:
    """backend -> model name (aliases included) -> price fields, as lookups see them now (the update wins)."""
    in_use: dict[str, dict[str, dict[str, Any]]] = {}
    for info in infos:
        models: dict[str, dict[str, Any]] = {}
        for table in (load_table(info), updated_table(info.name)):
            if table is None or table.error:
                continue
            for name, price in table.models.items():
                models[name] = price.as_dict()
            for alias, name in table.aliases.items():
                models[alias] = table.models[name].as_dict()
        in_use[info.name] = models
    return in_use
