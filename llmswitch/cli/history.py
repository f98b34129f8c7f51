"""``llmswitch history``: list, search, show, export and delete stored conversations (as ``llm logs`` does).

A thin layer over :mod:`llmswitch.store`: every subcommand opens the history, calls the store, and renders.
stdout carries only what was asked for (``--json`` for scripts); text a model wrote is neutralised before it
reaches a terminal and kept raw in ``--json`` and in exported files.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

import click

if TYPE_CHECKING:
    from llmswitch.store import ConversationRecord, HistoryStore, SearchHit

LATEST = "latest"


@contextmanager
def opened() -> Iterator[HistoryStore]:
    from llmswitch.store import HistoryStore

    with HistoryStore.open() as store:
        yield store


def conversation_id(store: HistoryStore, value: str) -> int:
    """An ID from the command line: a number, or ``latest``."""
    from llmswitch.errors import ConfigError

    if value == LATEST:
        latest = store.latest_conversation_id()
        if latest is None:
            raise ConfigError("the chat history is empty",
                              remedy='start a conversation with `llmswitch chat "..."` or `llmswitch tui`')
        return latest
    if not value.isdigit():
        raise ConfigError(f"{value!r} is not a conversation id",
                          remedy="give a number from `llmswitch history`, or `latest`")
    return store.get_conversation(int(value)).id  # a missing id is an error with a remedy


def shown(text: str, stream: IO[str] | None = None) -> str:
    """Text a model or a user wrote, as it may go to ``stream`` (stdout): neutralised on a terminal."""
    from llmswitch.terminal import for_display

    return for_display(text, stream or sys.stdout)


def echo_json(document: str) -> None:
    from llmswitch.terminal import json_for_display

    click.echo(json_for_display(document, sys.stdout))


def when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))


# ---- the group --------------------------------------------------------------------------------------------


@click.group(invoke_without_command=True)
@click.pass_context
def history(ctx: click.Context) -> None:
    """List, search, show, export and delete stored conversations.

    \b
    llmswitch history                       # the latest conversations, with the IDs to pass on
    llmswitch history search "tokenizer"    # every message that matches (SQLite FTS5)
    llmswitch history show 12               # one conversation as Markdown
    llmswitch history export 12 -o notes/   # to a file (Markdown, or --format json)
    llmswitch chat --continue 12 "and then?"
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_command)


@history.command("list")
@click.option("-n", "--limit", default=20, show_default=True, type=click.IntRange(min=1),
              help="How many conversations, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per conversation).")
def list_command(limit: int, as_json: bool) -> None:
    """List conversations, most recently active first."""
    from llmswitch.store.export import summary

    with opened() as store:
        records = store.list_conversations(limit)
    if as_json:
        echo_json(json.dumps([summary(record) for record in records], indent=2, ensure_ascii=False))
        return
    if not records:
        click.echo("no conversations yet: `llmswitch chat` and `llmswitch tui` save them", err=True)
        return
    render_conversations(records)
    click.echo("`llmswitch history show ID` prints one; `llmswitch chat -c ID` continues it.", err=True)


def render_conversations(records: list[ConversationRecord]) -> None:
    from rich.text import Text

    from llmswitch.cli.tables import console, table
    from llmswitch.pricing import format_usd

    grid = table("id", "updated", "profile", "messages", "cost", "title", right=("id", "messages", "cost"))
    for record in records:
        grid.add_row(str(record.id), when(record.updated_at), Text(shown(record.profile or "")),
                     str(record.message_count),
                     format_usd(record.cost_usd) if record.cost_usd is not None else "",
                     Text(shown(record.title)))
    console().print(grid)


@history.command()
@click.argument("query", nargs=-1, required=True)
@click.option("-n", "--limit", default=20, show_default=True, type=click.IntRange(min=1), help="How many matches.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per matching message).")
def search(query: tuple[str, ...], limit: int, as_json: bool) -> None:
    """Find messages containing every word of QUERY (prefixes match; "quoted words" match as a phrase)."""
    from llmswitch.store.export import hit_summary

    text = " ".join(query)
    with opened() as store:
        hits = store.search(text, limit)
    if as_json:
        echo_json(json.dumps([hit_summary(hit) for hit in hits], indent=2, ensure_ascii=False))
        return
    if not hits:
        click.echo(f"no message matches {text!r}", err=True)
        return
    for hit in hits:
        render_hit(hit)


def render_hit(hit: SearchHit) -> None:
    from llmswitch.store import HIGHLIGHT_END, HIGHLIGHT_START

    who = "you" if hit.role == "user" else "answer"
    click.echo(click.style(f"{hit.conversation_id}", bold=True) + f"  {when(hit.created_at)}  {who}  "
               + shown(hit.title))
    pieces = hit.snippet.replace(HIGHLIGHT_END, HIGHLIGHT_START).split(HIGHLIGHT_START)
    line = "".join(click.style(shown(piece), bold=True, underline=True) if index % 2
                   else shown(piece) for index, piece in enumerate(pieces))
    click.echo("    " + " ".join(line.split()))


@history.command()
@click.argument("conversation", default=LATEST, metavar="[ID]")
@click.option("--json", "as_json", is_flag=True, help="Print everything stored, as JSON.")
def show(conversation: str, as_json: bool) -> None:
    """Print one conversation (the latest without an ID) as Markdown."""
    from llmswitch.store.export import render

    with opened() as store:
        record = store.get_conversation(conversation_id(store, conversation))
        messages = store.messages(record.id)
    text = render(record, messages, "json" if as_json else "markdown")
    if as_json:
        echo_json(text.rstrip("\n"))
    else:
        click.echo(shown(text), nl=False)


@history.command()
@click.argument("conversations", nargs=-1, metavar="[ID]...")
@click.option("--all", "every", is_flag=True, help="Export every conversation.")
@click.option("-f", "--format", "format_", type=click.Choice(["markdown", "json"]), default=None,
              help="File format (default: from the -o file's suffix, else markdown).")
@click.option("-o", "--output", metavar="PATH",
              help="A file, or a folder for one file per conversation, or - for stdout "
                   "(default: your documents folder, else the data dir's exports/).")
def export(conversations: tuple[str, ...], every: bool, format_: str | None, output: str | None) -> None:
    """Write conversations (the latest without an ID) to Markdown or JSON files; print each path written."""
    from llmswitch.config import exports_dir
    from llmswitch.store.export import file_name, format_for, render, write

    if every and conversations:
        raise click.UsageError("give IDs or --all, not both")
    with opened() as store:
        ids = [record.id for record in store.list_conversations(limit=-1)] if every else \
            [conversation_id(store, value) for value in conversations or (LATEST,)]
        if not ids:
            click.echo("the chat history is empty: nothing to export", err=True)
            return
        to_stdout = output == "-"
        single_file = Path(output).expanduser() if output and not to_stdout and not _is_folder(output) else None
        folder = Path(output).expanduser() if output and not to_stdout else exports_dir()
        if single_file is not None and len(ids) > 1:
            raise click.UsageError(f"{len(ids)} conversations need a folder for -o, not the file {output!r}")
        format_ = format_ or (format_for(single_file) if single_file is not None else "markdown")
        for each in ids:
            record = store.get_conversation(each)
            text = render(record, store.messages(each), format_)
            if to_stdout and format_ == "json":
                echo_json(text.rstrip("\n"))
            elif to_stdout:
                click.echo(shown(text), nl=False)
            else:
                click.echo(str(write(text, single_file or folder / file_name(record, format_))))


def _is_folder(path: str) -> bool:
    return path.endswith(("/", "\\")) or Path(path).expanduser().is_dir()


@history.command()
@click.argument("conversations", nargs=-1, required=True, metavar="ID...")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def delete(conversations: tuple[str, ...], yes: bool) -> None:
    """Delete conversations and their messages (they leave the search index too). Asks first."""
    with opened() as store:
        records = [store.get_conversation(conversation_id(store, value)) for value in conversations]
        if not yes:
            if not sys.stdin.isatty():
                raise click.UsageError("deleting needs confirmation: add --yes when not at a terminal")
            for record in records:
                click.echo(f"  {record.id}  {shown(record.title, sys.stderr)} ({record.message_count} messages)", err=True)
            count = len(records)
            click.confirm(f"Delete {'this conversation' if count == 1 else f'these {count} conversations'}? "
                          "This cannot be undone", abort=True, err=True)
        for record in records:
            store.delete_conversation(record.id)
    click.echo(f"deleted {len(records)} conversation{'s' if len(records) != 1 else ''}", err=True)

