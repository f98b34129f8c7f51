"""A batch's input: JSONL, CSV or plain text, read whole, checked line by line, hashed.

- JSONL (``.jsonl``, ``.ndjson``, ``.json``, or any input whose first line starts with ``{``): one object a line,
  ``{"id": ..., "prompt": "..."}`` or ``{"id": ..., "messages": [{"role": ..., "content": ...}]}``, optionally
  with ``system``, generation settings (``temperature``, ``top_p``, ``top_k``, ``max_tokens``, ``stop``,
  ``seed``) and ``options`` (a table of backend-specific settings). Other keys are the user's own (a reference
  answer, a category) and are ignored, unless they look like a misspelt setting.
- CSV (``.csv``): a header row and a prompt column (``prompt``, ``question``, ``input`` or ``text``, or the one
  ``prompt_column`` names); ``id`` and ``system`` columns when present. Without an ``id`` column the id is the
  line number.
- plain text (anything else): one prompt a line, the id is the line number; blank lines are skipped.

A line that is not valid becomes an :class:`InputProblem` (its line number and what is wrong); the batch
records it as failed and goes on. Duplicate ids refuse the whole input before anything is sent: a checkpoint
keyed by id could not tell them apart.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from llmswitch.errors import ConfigError, close_matches
from llmswitch.profiles import non_finite_entry
from llmswitch.record import record
from llmswitch.types import Message

if TYPE_CHECKING:
    from llmswitch.client import ResolvedProfile
    from llmswitch.types import Request

InputFormat = Literal["jsonl", "csv", "text"]
ItemId = str | int

# Per-line settings and the JSON types each takes.
SETTINGS: dict[str, tuple[type, ...]] = {
    "temperature": (int, float),
    "top_p": (int, float),
    "top_k": (int,),
    "max_tokens": (int,),
    "seed": (int,),
    "stop": (list,),
}
SETTING_KINDS = {key: "a number" if float in types else "a list of strings" if list in types else "an integer"
                 for key, types in SETTINGS.items()}
LINE_KEYS = ("id", "prompt", "messages", "system", "options", *SETTINGS)
PROMPT_COLUMNS = ("prompt", "question", "input", "text")
ROLES = ("system", "user", "assistant")
EXTENSIONS: dict[str, InputFormat] = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv",
                                      ".txt": "text"}


class InputError(ConfigError):
    """The input as a whole cannot be used (unreadable, duplicate ids, no prompt column)."""

    kind = "invalid_input"


@record
class BatchItem:
    """One prompt of a batch: its id, the line it came from, and what to ask."""

    id: ItemId
    line: int
    prompt: str | None = None
    messages: tuple[Message, ...] = ()
    system: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The id as the checkpoint and the output know it (``1`` and ``"1"`` are one id)."""
        return str(self.id)

    def request(self, resolved: ResolvedProfile) -> Request:
        """The request on ``resolved``: the profile's defaults, overridden by this line's settings."""
        asked: str | Sequence[Message] = self.prompt if self.prompt is not None else self.messages
        return resolved.request(asked, system=self.system, **{**self.options, **self.settings})


@record
class InputProblem:
    """A line that could not be read as a prompt: recorded as failed, with its line number."""

    line: int
    message: str
    id: ItemId | None = None

    @property
    def key(self) -> str:
        return str(self.id) if self.id is not None else f"line {self.line}"


Entry = BatchItem | InputProblem


@record(slots=False)
class BatchInput:
    """Everything a batch will ask, in input order, and the hash that names this exact input."""

    name: str  # the path, or "-" for stdin
    format: InputFormat
    digest: str  # sha256 of the bytes read
    entries: tuple[Entry, ...]

    @property
    def items(self) -> list[BatchItem]:
        return [entry for entry in self.entries if isinstance(entry, BatchItem)]

    @property
    def problems(self) -> list[InputProblem]:
        return [entry for entry in self.entries if isinstance(entry, InputProblem)]


def read_input(source: str | Path, *, data: bytes | None = None, format: InputFormat | None = None,
               prompt_column: str | None = None) -> BatchInput:
    """Read ``source`` (``-``: ``data``, the bytes of stdin) and check every line; see the module docstring."""
    name = str(source)
    if data is None:
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read the batch input {name}: {exc.strerror or exc}",
                             remedy="check the path (use - to read the input from stdin)") from None
    from llmswitch.encoding import decode_input

    text, _replaced = decode_input(data)  # invalid UTF-8 becomes U+FFFD (llmswitch.encoding)
    text = text.removeprefix("\ufeff")
    chosen = format or detect_format(name, text)
    if chosen == "jsonl":
        entries = parse_jsonl(text)
    elif chosen == "csv":
        entries = parse_csv(text, prompt_column)
    else:
        entries = parse_text(text)
    refuse_duplicates(name, entries)
    return BatchInput(name, chosen, hashlib.sha256(data).hexdigest(), tuple(entries))


def detect_format(name: str, text: str) -> InputFormat:
    suffix = Path(name).suffix.lower() if name != "-" else ""
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    first = next((line for line in text.splitlines() if line.strip()), "")
    return "jsonl" if first.lstrip().startswith("{") else "text"


def refuse_duplicates(name: str, entries: Sequence[Entry]) -> None:
    first_line: dict[str, int] = {}
    clashes: list[str] = []
    for entry in entries:
        seen = first_line.setdefault(entry.key, entry.line)
        if seen != entry.line:
            clashes.append(f"id {entry.key!r} on lines {seen} and {entry.line}")
    if clashes:
        shown = "; ".join(clashes[:3]) + (f"; and {len(clashes) - 3} more" if len(clashes) > 3 else "")
        raise InputError(f"{name} has duplicate ids: {shown}",
                         remedy="give every line its own id (results are checkpointed and matched by id)")


# ---- JSONL -----------------------------------------------------------------------------------------------


def parse_jsonl(text: str) -> list[Entry]:
    entries: list[Entry] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw.strip():
            entries.append(parse_json_line(number, raw))
    return entries


def parse_json_line(number: int, raw: str) -> Entry:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        return InputProblem(number, f"line {number} is not valid JSON ({exc.msg} at column {exc.colno})")
    if not isinstance(value, dict):
        return InputProblem(number, f"line {number} is a JSON {type(value).__name__}, not an object with a prompt")
    item_id = value.get("id", number)
    if isinstance(item_id, bool) or not isinstance(item_id, (str, int)):
        return InputProblem(number, f"line {number}: id must be a string or an integer, not {json.dumps(item_id)}")
    try:
        return line_item(number, item_id, value)
    except ValueError as exc:
        return InputProblem(number, f"line {number}: {exc}", item_id)


def line_item(number: int, item_id: ItemId, value: Mapping[str, Any]) -> BatchItem:
    """A JSONL object (or a CSV row) as an item; ValueError says what is wrong with it."""
    for key in value:
        if key not in LINE_KEYS:
            near = close_matches(key, LINE_KEYS, limit=1)
            if near and key not in PROMPT_COLUMNS:
                raise ValueError(f"unknown key {key!r} (did you mean {near[0]!r}?)")
    prompt, messages = value.get("prompt"), value.get("messages")
    if (prompt is None) == (messages is None):
        raise ValueError("give either \"prompt\" (a string) or \"messages\" (a list), not both or neither")
    parsed: tuple[Message, ...] = ()
    if prompt is not None:
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("\"prompt\" must be a non-empty string")
    else:
        parsed = parse_messages(messages)
    system = value.get("system")
    if system is not None and not isinstance(system, str):
        raise ValueError("\"system\" must be a string")
    settings: dict[str, Any] = {}
    for key, types in SETTINGS.items():
        setting = value.get(key)
        if setting is None:
            continue
        if isinstance(setting, bool) or not isinstance(setting, types):
            raise ValueError(f"{key} must be {SETTING_KINDS[key]}, not {json.dumps(setting)}")
        if isinstance(setting, float) and not math.isfinite(setting):  # JSON's reader takes NaN; no server does
            raise ValueError(f"{key} must be a finite number, not {json.dumps(setting)}")
        settings[key] = setting
    stops: list[Any] = settings.get("stop", [])
    if not all(isinstance(stop, str) for stop in stops):
        raise ValueError(f"stop must be {SETTING_KINDS['stop']}")
    if stops:
        settings["stop"] = tuple(stops)
    options = value.get("options") or {}
    if not isinstance(options, dict):
        raise ValueError("\"options\" must be an object of backend settings")
    odd = non_finite_entry(options)
    if odd is not None:
        raise ValueError(f"\"options\" holds {odd}, which no server can read in JSON")
    return BatchItem(item_id, number, prompt, parsed, system, settings, options)


def parse_messages(messages: Any) -> tuple[Message, ...]:
    if not isinstance(messages, list) or not messages:
        raise ValueError("\"messages\" must be a non-empty list of {\"role\", \"content\"} objects")
    parsed = []
    for index, message in enumerate(messages, start=1):
        if not isinstance(message, dict) or message.get("role") not in ROLES \
                or not isinstance(message.get("content"), str):
            raise ValueError(f"message {index} must be {{\"role\": \"user\" | \"assistant\" | \"system\", "
                             "\"content\": \"...\"}")
        parsed.append(Message(message["role"], message["content"]))
    if parsed[-1].role != "user":
        raise ValueError("the last message must be the user's")
    return tuple(parsed)


# ---- CSV -------------------------------------------------------------------------------------------------


def parse_csv(text: str, prompt_column: str | None) -> list[Entry]:
    import csv
    import io

    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        return []
    column = choose_prompt_column(header, prompt_column)
    index = {name: position for position, name in enumerate(header)}
    entries: list[Entry] = []
    start = reader.line_num + 1
    for row in reader:
        number, start = start, reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            entries.append(InputProblem(number, f"line {number} has {len(row)} fields; the header has {len(header)}"))
            continue
        cells = dict(zip(header, row, strict=True))
        item_id: ItemId = cells["id"].strip() if "id" in index and cells["id"].strip() else number
        prompt = cells[column]
        if not prompt.strip():
            entries.append(InputProblem(number, f"line {number}: the {column!r} column is empty", item_id))
            continue
        system = cells.get("system") or None
        entries.append(BatchItem(item_id, number, prompt, system=system))
    return entries


def choose_prompt_column(header: list[str], prompt_column: str | None) -> str:
    if prompt_column is not None:
        if prompt_column not in header:
            near = close_matches(prompt_column, header, limit=1)
            raise InputError(f"the CSV has no column {prompt_column!r} (its columns: {', '.join(header)})",
                             remedy=f"did you mean {near[0]!r}?" if near else "name one of its columns")
        return prompt_column
    for name in PROMPT_COLUMNS:
        if name in header:
            return name
    raise InputError(f"the CSV has no prompt column (its columns: {', '.join(header)})",
                     remedy=f"name one with --prompt-column, or call it one of: {', '.join(PROMPT_COLUMNS)}")


# ---- plain text ------------------------------------------------------------------------------------------


def parse_text(text: str) -> list[Entry]:
    return [BatchItem(number, number, line) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
