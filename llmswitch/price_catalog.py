"""Refreshing prices from a maintained price catalogue: ``llmswitch prices update``.

The plugins ship price tables that are right on the date they carry and then age. LiteLLM maintains a large
JSON table (``model_prices_and_context_window.json``) that most tools in this field read; this module turns a
copy of it into llmswitch's own price-table shape and keeps it in the data dir, where
:mod:`llmswitch.pricing` reads it ahead of the shipped tables. The order, highest first:

1. a profile's own ``price_*_per_mtok`` keys;
2. the updated table written here (``prices.json`` in the data dir);
3. the table the plugin ships.

The network is touched only by :func:`fetch_catalog`, which only ``prices update`` calls. A download or a file
that does not look right is refused whole, with the reason, and the table in use stays as it was: a price
table decides whether budgets refuse calls, so a half-trusted one is worse than an old one.

Which catalogue entries belong to which backend is the plugins' knowledge, not the core's:
``BackendInfo.price_catalog_providers`` lists the catalogue's provider names for the backend (``openai``,
``anthropic``, ...). Entries named ``provider/model`` are stored under ``model``; dated snapshots keep pricing
like their alias through :meth:`llmswitch.pricing.PriceTable.lookup`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import field
from pathlib import Path
from typing import Any

from llmswitch.config import price_catalog_path
from llmswitch.errors import LLMSwitchError
from llmswitch.record import record

# Where LiteLLM publishes its table; `prices update` reads it only when the user runs the command.
DEFAULT_CATALOG_URL = (
    "https://raw.githubusercontent.com/BerriAI/litellm/main/model_prices_and_context_window.json"
)
# LiteLLM's file is about 3.5 MB; anything far larger is not a price table.
MAX_CATALOG_BYTES = 32 * 1024 * 1024
# No model's price per million tokens is anywhere near this (the dearest list prices are a few hundred dollars).
MAX_PRICE_PER_MTOK = 5_000.0
MAX_TOKEN_LIMIT = 100_000_000
MAX_NAME_LENGTH = 256
# A price that moves by more than this factor is refused without --force: more likely a broken table.
MAX_PRICE_FACTOR = 10.0
# Modes whose entries are priced per token of text in and out.
TEXT_MODES = frozenset({"chat", "completion", "responses"})

# catalogue field (USD per token, or a token count) -> llmswitch price-table field (USD per million tokens)
PER_TOKEN_FIELDS = {
    "input_cost_per_token": "input_per_mtok",
    "output_cost_per_token": "output_per_mtok",
    "cache_read_input_token_cost": "cached_input_per_mtok",
    "input_cost_per_token_batches": "batch_input_per_mtok",
    "output_cost_per_token_batches": "batch_output_per_mtok",
}
LIMIT_FIELDS = {
    "max_input_tokens": "context_window",
    "max_output_tokens": "max_output",
}
COMPARED_FIELDS = ("input_per_mtok", "output_per_mtok")


class CatalogError(LLMSwitchError):
    """A price catalogue that could not be fetched, or was refused; nothing was changed."""

    exit_code = 1
    kind = "price_catalog"


@record(slots=False)
class PriceChange:
    backend: str
    model: str
    field: str
    old: float | None
    new: float | None

    @property
    def factor(self) -> float | None:
        if not self.old or self.new is None:
            return None
        return max(self.new / self.old, self.old / self.new) if self.new else math.inf


@record(slots=False)
class CatalogDiff:
    """What an update changes against the tables in use before it."""

    added: dict[str, list[str]] = field(default_factory=dict)  # backend -> models new to llmswitch
    removed: dict[str, list[str]] = field(default_factory=dict)  # backend -> models the old update had
    changed: list[PriceChange] = field(default_factory=list)

    def suspicious(self) -> list[PriceChange]:
        return [change for change in self.changed if (change.factor or 0) > MAX_PRICE_FACTOR]

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "removed": self.removed,
            "changed": [
                {"backend": c.backend, "model": c.model, "field": c.field, "old": c.old, "new": c.new}
                for c in self.changed
            ],
        }


@record(slots=False)
class Catalog:
    """A converted catalogue: per backend, model -> the llmswitch price-table entry."""

    source: str
    date: str  # YYYY-MM-DD: when the copy was taken (the download, or the file's modification time)
    backends: dict[str, dict[str, dict[str, float | int]]]

    def model_count(self) -> int:
        return sum(len(models) for models in self.backends.values())

    def as_document(self) -> dict[str, Any]:
        return {
            "meta": {"source": self.source, "date": self.date, "format": "llmswitch price tables, one per backend"},
            "backends": {name: {"meta": {"source": self.source, "date": self.date}, "models": models}
                         for name, models in sorted(self.backends.items())},
        }


# ---- fetch -----------------------------------------------------------------------------------------------


def fetch_catalog(location: str, *, timeout: float = 30.0) -> tuple[bytes, str]:
    """The catalogue's bytes and its date, from an http(s) URL or a file path. Raises CatalogError."""
    if location.startswith(("http://", "https://")):
        return _download(location, timeout), dt.date.today().isoformat()
    path = Path(location.removeprefix("file://")).expanduser()
    try:
        size = path.stat().st_size
        if size > MAX_CATALOG_BYTES:
            raise CatalogError(f"{path} has {size:,} bytes, more than any price table ({MAX_CATALOG_BYTES:,} at most)")
        data = path.read_bytes()
        modified = dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.timezone.utc).date().isoformat()
    except FileNotFoundError:
        raise CatalogError(f"no file at {path}", remedy="give --from an existing file or an https:// URL") from None
    except OSError as exc:
        raise CatalogError(f"cannot read {path}: {exc.strerror}") from None
    return data, modified


def _download(url: str, timeout: float) -> bytes:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": "llmswitch prices update", "Accept": "application/json"})
    remedy = "check the network, or download the file yourself and run: llmswitch prices update --from FILE"
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the user asked for it
            header = response.headers.get("Content-Length")
            declared = int(header) if header and header.isdigit() else None
            if declared is not None and declared > MAX_CATALOG_BYTES:
                raise CatalogError(f"{url} announces {declared:,} bytes, more than any price table")
            data: bytes = response.read(MAX_CATALOG_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise CatalogError(f"{url} answered HTTP {exc.code} {exc.reason}", remedy=remedy) from None
    except urllib.error.URLError as exc:
        raise CatalogError(f"cannot reach {url}: {exc.reason}", remedy=remedy) from None
    except (TimeoutError, OSError) as exc:
        raise CatalogError(f"cannot download {url}: {exc}", remedy=remedy) from None
    # read(n) returns what came before the connection closed, without a word: a cut-off table must not
    # pass for a whole one (it would most likely fail as JSON, but the reason would be wrong).
    if declared is not None and len(data) < declared:
        raise CatalogError(f"{url} sent {len(data):,} of the {declared:,} bytes it announced: cut short",
                           remedy=remedy)
    if len(data) > MAX_CATALOG_BYTES:
        raise CatalogError(f"{url} sent more than {MAX_CATALOG_BYTES:,} bytes: not a price table")
    return data


# ---- validate and convert --------------------------------------------------------------------------------


def convert_catalog(data: bytes, *, source: str, date: str,
                    providers: Mapping[str, Iterable[str]]) -> Catalog:
    """Validate LiteLLM-format bytes and keep what llmswitch needs, per backend.

    ``providers`` maps each backend to the catalogue's provider names for it. Raises CatalogError naming the
    first entry that is wrong: a wrong type, a negative or absurd price, an over-long name.
    """
    try:
        document = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CatalogError(f"{source} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise CatalogError(f"{source}: expected a JSON object of models, found {type(document).__name__}")
    backend_of = {provider: backend for backend, names in providers.items() for provider in names}
    backends: dict[str, dict[str, dict[str, float | int]]] = {backend: {} for backend in providers}
    for key, entry in document.items():
        if key == "sample_spec":  # LiteLLM's documentation of its own fields
            continue
        if not isinstance(entry, dict):
            raise CatalogError(f"{source}: entry {_shown(key)} must be an object, not {type(entry).__name__}")
        provider = entry.get("litellm_provider")
        if not isinstance(provider, str) or provider not in backend_of:
            continue
        if entry.get("mode", "chat") not in TEXT_MODES:
            continue
        if len(key) > MAX_NAME_LENGTH:
            raise CatalogError(f"{source}: a model name of {len(key):,} characters ({_shown(key)}): not a model")
        if not key.isprintable():  # names reach the terminal: no escape sequences
            raise CatalogError(f"{source}: the model name {_shown(key)} has control characters")
        name = key.split("/", 1)[1] if key.startswith(f"{provider}/") else key
        converted = _convert_entry(entry, where=f"{source}: {_shown(key)}")
        if converted:
            backends[backend_of[provider]][name] = converted
    if not any(backends.values()):
        raise CatalogError(
            f"{source} lists no model for {', '.join(sorted(providers)) or 'any installed backend'}",
            remedy="is it LiteLLM's model_prices_and_context_window.json format?",
        )
    return Catalog(source=source, date=date, backends={name: models for name, models in backends.items() if models})


def _convert_entry(entry: Mapping[str, Any], *, where: str) -> dict[str, float | int]:
    converted: dict[str, float | int] = {}
    for catalog_field, our_field in PER_TOKEN_FIELDS.items():
        value = entry.get(catalog_field)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise CatalogError(f"{where}: {catalog_field} must be a number, not {_shown(value)}")
        per_mtok = round(value * 1_000_000, 6)
        if per_mtok < 0:
            raise CatalogError(f"{where}: {catalog_field} is negative ({value!r})")
        if per_mtok > MAX_PRICE_PER_MTOK:
            raise CatalogError(f"{where}: {catalog_field} is ${per_mtok:,.2f} per million tokens, beyond any real "
                               f"price (at most ${MAX_PRICE_PER_MTOK:,.0f})")
        converted[our_field] = per_mtok
    for catalog_field, our_field in LIMIT_FIELDS.items():
        value = entry.get(catalog_field)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_TOKEN_LIMIT:
            raise CatalogError(f"{where}: {catalog_field} must be a token count from 1 to {MAX_TOKEN_LIMIT:,}, "
                               f"not {_shown(value)}")
        converted[our_field] = value
    # An entry without both prices can still carry limits, but only a priced one is worth keeping.
    if "input_per_mtok" not in converted or "output_per_mtok" not in converted:
        return {}
    return converted


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}... ({len(text):,} characters)"


# ---- compare and store -----------------------------------------------------------------------------------


def diff_catalog(catalog: Catalog, in_use: Mapping[str, Mapping[str, Mapping[str, Any]]],
                 previous: Catalog | None) -> CatalogDiff:
    """What ``catalog`` changes against the prices in use (``in_use``: backend -> model -> entry).

    Models are "added" when no table in use names them, "removed" when the previous update had them and this
    one does not (the shipped table keeps pricing them).
    """
    added: dict[str, list[str]] = {}
    changed: list[PriceChange] = []
    for backend, models in sorted(catalog.backends.items()):
        current = in_use.get(backend, {})
        for model, entry in sorted(models.items()):
            old = current.get(model)
            if old is None:
                added.setdefault(backend, []).append(model)
                continue
            for name in COMPARED_FIELDS:
                before, after = old.get(name), entry.get(name)
                if before != after:
                    changed.append(PriceChange(backend, model, name, _float(before), _float(after)))
    removed: dict[str, list[str]] = {}
    if previous is not None:
        for backend, models in sorted(previous.backends.items()):
            gone = sorted(set(models) - set(catalog.backends.get(backend, {})))
            if gone:
                removed[backend] = gone
    return CatalogDiff(added=added, removed=removed, changed=changed)


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def save_catalog(catalog: Catalog, path: Path) -> None:
    """Write atomically: a crash leaves the old table in place, never half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(catalog.as_document(), indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def load_catalog(path: Path) -> Catalog | None:
    """The stored update, or None when there is none. A damaged file raises CatalogError."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CatalogError(f"the updated price table {path} cannot be read: {exc}",
                           remedy=f"run 'llmswitch prices update' again, or delete {path}") from None
    try:
        meta = document["meta"]
        backends = {name: dict(table["models"]) for name, table in document["backends"].items()}
        return Catalog(source=str(meta["source"]), date=str(meta["date"]), backends=backends)
    except (KeyError, TypeError, AttributeError) as exc:
        raise CatalogError(f"the updated price table {path} is damaged ({exc!r} missing)",
                           remedy=f"run 'llmswitch prices update' again, or delete {path}") from None


@record(slots=False)
class UpdateResult:
    catalog: Catalog
    diff: CatalogDiff
    path: Path
    written: bool


def update_prices(
    location: str = DEFAULT_CATALOG_URL,
    *,
    providers: Mapping[str, Iterable[str]],
    in_use: Mapping[str, Mapping[str, Mapping[str, Any]]],
    path: Path | None = None,
    force: bool = False,
    dry_run: bool = False,
) -> UpdateResult:
    """Fetch, validate, compare and store a catalogue. Raises CatalogError with nothing changed on failure.

    A price that moves by more than ``MAX_PRICE_FACTOR`` against the one in use refuses the whole update unless
    ``force``: a table off by a factor of a million (per token read as per million) must not reach budgets.
    """
    target = path or price_catalog_path()
    previous = load_catalog(target) if target.exists() else None
    data, date = fetch_catalog(location)
    catalog = convert_catalog(data, source=location, date=date, providers=providers)
    diff = diff_catalog(catalog, in_use, previous)
    suspicious = diff.suspicious()
    if suspicious and not force:
        shown = "; ".join(f"{c.backend} {c.model} {c.field} ${c.old} -> ${c.new}" for c in suspicious[:5])
        more = f" and {len(suspicious) - 5} more" if len(suspicious) > 5 else ""
        raise CatalogError(
            f"{len(suspicious)} price(s) would move by more than {MAX_PRICE_FACTOR:g}x: {shown}{more}",
            remedy="check the source; if the prices are right, run again with --force",
        )
    if not dry_run:
        save_catalog(catalog, target)
    return UpdateResult(catalog=catalog, diff=diff, path=target, written=not dry_run)
