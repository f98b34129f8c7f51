"""Edit the user's config file in place: add, replace or remove a profile, set the default.

Every edit goes through tomlkit, which keeps what the user wrote (comments, order, spacing, quoting) and
changes only the lines the edit is about. Removing a profile takes its table, the comments inside it and the
comment block directly above its header; comments after its last key stay, since they usually introduce what
follows. Each function takes the file's text and returns the new text; the caller writes it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import Comment, Item, Null, Table, Whitespace

from llmswitch.config import parse_toml
from llmswitch.errors import ConfigError

# NUL cannot appear in a TOML document, so these markers cannot collide with anything the user wrote.
_START, _END = "\x00start\x00", "\x00end\x00"
_COMMENT_LINES_ABOVE = re.compile(r"(?:^[ \t]*#[^\n]*\n)+\Z", re.M)


def add_profile(text: str, name: str, values: Mapping[str, Any]) -> str:
    """``text`` with a new ``[profiles.NAME]`` table after the existing profiles."""
    document = tomlkit.parse(text)
    if "profiles" not in document:
        document["profiles"] = tomlkit.table(is_super_table=True)
    table = tomlkit.table()
    for key, value in values.items():
        table[key] = toml_item(value)
    document["profiles"][name] = table
    return document.as_string()


def replace_profile(text: str, name: str, values: Mapping[str, Any]) -> str:
    """``text`` with the profile's keys set to ``values`` in place: unchanged keys keep their comments."""
    document = tomlkit.parse(text)
    table = document["profiles"][name]
    for key in [key for key in table if key not in values]:
        del table[key]
    for key, value in values.items():
        if key in table:
            if _plain(table[key]) != value:
                table[key] = toml_item(value)
        elif isinstance(table, Table):
            _add_after_last_key(table, key, toml_item(value))
        else:
            table[key] = toml_item(value)
    return document.as_string()


def remove_profile(text: str, name: str) -> str:
    """``text`` without the profile (and without ``default_profile`` when it named it)."""
    expected = parse_toml(text, "config")
    del expected["profiles"][name]
    if not expected["profiles"]:
        del expected["profiles"]  # the cut leaves no [profiles] at all; tomlkit may leave an empty one
    if expected.get("default_profile") == name:
        del expected["default_profile"]
    try:
        candidate = _without_default(_cut_table(text, name), name)
        cut_cleanly = {key: value for key, value in parse_toml(candidate, "config").items()
                       if value != {} or key != "profiles"} == expected
    except (ConfigError, TOMLKitError):
        cut_cleanly = False
    if not cut_cleanly:
        # A shape the cut does not handle (an inline or dotted-key profile): let tomlkit drop the item itself.
        document = tomlkit.parse(text)
        del document["profiles"][name]
        candidate = _without_default(document.as_string(), name)
    return candidate


def set_default_profile(text: str, name: str) -> str:
    """``text`` with ``default_profile = NAME``, in place when the key exists, else at the top."""
    document = tomlkit.parse(text)
    if "default_profile" in document:
        document["default_profile"] = name
        return document.as_string()
    body = document.body
    first = next((index for index, (key, _) in enumerate(body) if key is not None), len(body))
    while first > 0 and isinstance(body[first - 1][1], Comment):
        first -= 1  # above the comment block that introduces the first table, not between them
    if first == len(body):
        document.add("default_profile", name)
    else:
        line = tomlkit.item(name)
        line.trivia.trail = "\n\n"  # a blank line before what it now precedes
        document._insert_at(first, "default_profile", line)  # tomlkit has no public "insert at"
    return document.as_string()


# ---- helpers ---------------------------------------------------------------------------------------------


def _cut_table(text: str, name: str) -> str:
    """Cut the profile's header and everything up to its last key, plus the comment block right above it."""
    document = tomlkit.parse(text)
    table = document["profiles"][name]
    if not isinstance(table, Table) or table.is_super_table():
        return text
    table.trivia.indent = _START + table.trivia.indent
    _last_line(table).trivia.trail += _END
    rendered = document.as_string()
    start, end = rendered.index(_START), rendered.index(_END) + len(_END)
    before, after = rendered[:start], rendered[end:]
    before = _COMMENT_LINES_ABOVE.sub("", before)
    while before.endswith("\n\n") and after.startswith("\n"):
        after = after[1:]
    if not after.strip() and before.endswith("\n\n"):
        before = before.rstrip("\n") + "\n"
    return before + after


def _last_line(table: Table) -> Item:
    """The item whose line ends what a table renders: its (last sub-table's) last key, or that header."""
    owner, container = table, table.value
    while container.body and isinstance(container.body[-1][1], Table):
        owner = container.body[-1][1]
        container = owner.value
    keys = [item for key, item in container.body
            if key is not None and not isinstance(item, (Comment, Whitespace, Null))]
    return keys[-1] if keys else owner


def _add_after_last_key(table: Table, key: str, item: Item) -> None:
    """A new key after the table's own last key: before its sub-tables and the comments that end it."""
    container = table.value
    plain = [entry_key for entry_key, entry in container.body
             if entry_key is not None and not isinstance(entry, (Table, Null))]
    if plain:
        container._insert_after(plain[-1], key, item)  # tomlkit has no public "insert after"
    elif container.body:
        container._insert_at(0, key, item)
    else:
        container.append(key, item)


def _without_default(text: str, name: str) -> str:
    document = tomlkit.parse(text)
    if document.get("default_profile") == name:
        del document["default_profile"]
    return document.as_string()


def toml_item(value: Any) -> Item:
    """A tomlkit item for a profile value; tables are written inline (``extra_body = { top_k = 20 }``)."""
    if isinstance(value, Mapping):
        inline = tomlkit.inline_table()
        inline.update({key: toml_item(inner) for key, inner in value.items()})
        return inline
    return tomlkit.item(value)


def _plain(value: Any) -> Any:
    return value.unwrap() if isinstance(value, Item) else value
