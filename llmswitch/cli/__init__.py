"""The ``llmswitch`` command line: a thin click layer over the library.

Start-up cost matters (``llmswitch --help`` is run often): subcommands live in their own modules and are
imported only when invoked, and nothing here imports a plugin, an SDK or textual.
"""

from __future__ import annotations

import gc
import sys
from typing import Any

import click

from llmswitch import __version__

# name -> (module, function, one-line help shown by --help without importing the module)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "chat": ("llmswitch.cli.chat", "chat", "Ask a model: one shot with a PROMPT or piped input, else a REPL."),
    "profiles": ("llmswitch.cli.profiles", "profiles", "List, show, add, remove profiles; set the default."),
    "plugins": ("llmswitch.cli.plugins", "plugins", "List plugins, loaded or broken; new, install, uninstall."),
    "doctor": ("llmswitch.cli.doctor", "doctor", "Check every profile's health and say what to fix."),
    "cost": ("llmswitch.cli.cost", "cost", "Estimate what a prompt costs on each profile."),
    "bench": ("llmswitch.cli.bench", "bench", "Time profiles against each other: first token, tokens/s, cost."),
    "prices": ("llmswitch.cli.prices", "prices", "List the prices in use per model; `prices update` refreshes them."),
    "usage": ("llmswitch.cli.usage", "usage", "Show recorded usage and spend from the ledger."),
    "history": ("llmswitch.cli.history", "history", "List, search, show, export, delete stored conversations."),
    "batch": ("llmswitch.cli.batch", "batch", "Ask every line of a file on a profile, concurrently; resumable."),
    "tui": ("llmswitch.cli.tui", "tui", "Open the terminal chat app."),
    "serve": ("llmswitch.cli.serve", "serve", "Serve profiles on one OpenAI- and Anthropic-compatible endpoint."),
    "cache": ("llmswitch.cli.cache", "cache", "Show or clear the response cache (`cache stats`, `cache clear`)."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, (module, _, _) in COMMANDS.items() if _module_exists(module)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None or not _module_exists(entry[0]):
            return None
        import importlib

        module = importlib.import_module(entry[0])
        command: click.Command = getattr(module, entry[1])
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = click.utils.make_str(args[0]) if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            from llmswitch.errors import close_matches

            matches = close_matches(name, self.list_commands(ctx))
            hint = f" Did you mean '{matches[0]}'?" if matches else ""
            raise click.UsageError(f"No such command '{name}'.{hint}", ctx)
        resolved = super().resolve_command(ctx, args)
        end_of_start_up()  # the command's module is imported
        return resolved


def _module_exists(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="llmswitch")
@click.option(
    "--config",
    "config",
    metavar="PATH",
    envvar="LLMSWITCH_CONFIG",
    help="Profile file (default: the platform config dir's llmswitch/config.toml; env LLMSWITCH_CONFIG).",
)
@click.pass_context
def cli(ctx: click.Context, config: str | None) -> None:
    """Talk to any large language model; switch between them by naming a profile.

    \b
    llmswitch chat --profile local "Say hello"
    llmswitch doctor
    llmswitch profiles list

    Exit codes: 0 ok, 1 backend failure, 2 usage or configuration error, 130 interrupted.
    """
    ctx.obj = {"config": config}


def main(argv: list[str] | None = None) -> Any:
    """Entry point: run the CLI and turn every error into a sentence and an exit code."""
    from llmswitch.cli.errors import run_guarded

    tolerate_narrow_encodings()
    try:
        code = run_guarded(lambda: cli.main(args=argv, prog_name="llmswitch", standalone_mode=False))
    finally:
        end_of_start_up()  # (when the command never started: --help, a usage error)
    sys.exit(code)


def end_of_start_up() -> None:
    """Switch the cycle collector back on, past the objects start-up made.

    Start-up (click, the command's module, the library under it) creates some 100,000 objects (modules,
    classes, functions) that live as long as the process, so the collector's passes over them during start-up
    (about 30 of them) find nothing and cost a one-shot ``chat`` about 4% of its time. The console script
    (``llmswitch.__main__.run``) turns it off before importing anything; here, before the command runs, it is
    frozen past those objects (``gc.freeze``: later passes skip them) and turned on again, so a long REPL,
    batch or TUI session is collected as usual. A caller that kept it on (``main`` called in-process) is left
    as it was.
    """
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def tolerate_narrow_encodings() -> None:
    """Under a locale whose encoding cannot hold every character (LANG=C without UTF-8 mode, latin-1), write
    what it cannot encode as ``\\u....`` escapes instead of failing in the middle of an answer."""
    for stream in (sys.stdout, sys.stderr):
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
        if encoding not in ("utf8", "utf8sig") and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
