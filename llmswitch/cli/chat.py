"""``llmswitch chat``: one shot (PROMPT or piped stdin) or, on a terminal with neither, a REPL.

stdout carries only the answer (so ``| jq`` works with ``--json``); status and errors go to stderr.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, TextIO

import click

from llmswitch.cli.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    Terminated,
    echo_status,
    error_payload,
    print_error,
    quietly_echo,
    silence_stdout,
    stopping_on_signals,
)
from llmswitch.conversation import Conversation, Turn
from llmswitch.errors import InvalidOptionError, LLMSwitchError, close_matches
from llmswitch.terminal import is_terminal, json_for_display, neutralize
from llmswitch.types import StreamError, TextDelta

if TYPE_CHECKING:
    from llmswitch.client import Client
    from llmswitch.store import HistoryStore

PIPE_FLUSH_S = 0.05

REPL_HELP = """\
/profile NAME   answer with another profile from now on (the conversation is kept)
/system TEXT    set the system prompt (/system alone clears it)
/reset          forget the conversation so far
/exit           leave (Ctrl-D too)
End a line with \\ to continue on the next; Ctrl-C stops an answer without leaving."""


@click.command()
@click.argument("prompt", nargs=-1)
@click.option("-p", "--profile", "profile_name", metavar="NAME", help="Profile to use (default: default_profile).")
@click.option("-m", "--model", metavar="MODEL", help="Model to ask instead of the profile's.")
@click.option("-s", "--system", metavar="TEXT", help="System prompt.")
@click.option("-o", "--option", "settings", type=(str, str), multiple=True, metavar="KEY VALUE",
              help="A generation setting or backend option, checked against the backend (repeatable).")
@click.option("--no-stream", is_flag=True, help="Wait for the whole answer instead of streaming it.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: text, usage, model, latency.")
@click.option("--usage", "show_usage", is_flag=True, help="Print tokens and latency to stderr after the answer.")
@click.option("--api-key", metavar="KEY", help="API key for this call (beats the environment and .env).")
@click.option("-c", "--continue", "continue_id", is_flag=False, flag_value="latest", default=None, metavar="[ID]",
              help="Continue a stored conversation: the latest, or the one with this ID (`llmswitch history` "
              "lists them).")
@click.option("--no-history", is_flag=True, help="Do not save this conversation in the chat history.")
@click.option("--no-cache", is_flag=True, help="Ask the model even when the response cache holds the answer.")
@click.pass_context
def chat(
    ctx: click.Context,
    prompt: tuple[str, ...],
    profile_name: str | None,
    model: str | None,
    system: str | None,
    settings: tuple[tuple[str, str], ...],
    no_stream: bool,
    as_json: bool,
    show_usage: bool,
    api_key: str | None,
    continue_id: str | None,
    no_history: bool,
    no_cache: bool,
) -> int:
    """Ask a model. With PROMPT or piped input: one answer, streamed to stdout. With neither: a REPL."""
    from llmswitch.client import Client

    client = Client(ctx.obj.get("config"))
    client.observers.append(lambda event: echo_status(event.message))  # retries, fallbacks, cooldowns: stderr
    resuming = continue_id is not None
    history = open_history(required=resuming) if resuming or not no_history else None
    conversation = Conversation(client, profile_name, model=model, system=system, api_key=api_key,
                                store=None if no_history else history,
                                use_cache=not no_cache)  # for every profile of the session, /profile included
    if resuming and history is not None:
        resume_id, prompt = parse_continue_value(str(continue_id), prompt)
        record, _ = conversation.resume(history, resume_id,
                                        keep_profile=profile_name is not None, keep_system=system is not None)
        if sys.stdin is not None and sys.stdin.isatty() and not prompt:
            click.echo(f"(continuing conversation {record.id}: {record.title!r}, "
                       f"{len(conversation.messages)} messages)", err=True)
    conversation.settings = {**conversation.settings, **parse_settings(client, conversation, settings)}
    notice = conversation.resolved.first_use_notice()  # (resolving validates the profile before any input)
    if model and conversation.resolved.leaves() != [conversation.resolved]:
        echo_status(f"note: -m {model} applies to every member of route '{conversation.resolved.name}'")
    if notice:
        click.echo(f"note: {notice}", err=True)

    text = prompt_argument(prompt)
    stdin_is_terminal = sys.stdin is None or sys.stdin.isatty()
    if not stdin_is_terminal:
        piped = read_piped_input()
        text = f"{text}\n\n{piped}" if text and piped.strip() else (text or piped)
    with stopping_on_signals():  # SIGTERM and SIGHUP stop an answer the way Ctrl-C does
        if text.strip():
            conversation.one_shot = True  # grouped apart in the TUI's sidebar until it is continued
            code = one_shot(conversation, text, no_stream=no_stream, as_json=as_json, show_usage=show_usage)
        elif not stdin_is_terminal:
            raise click.UsageError("nothing to ask: give a PROMPT or pipe some text in")
        else:
            code = repl(conversation, show_usage=show_usage, whole=no_stream)
    if conversation.store is not None and conversation.store.last_error is not None:
        click.echo(f"warning: the chat history was not saved: {conversation.store.last_error.message}", err=True)
    return code


def parse_continue_value(value: str, prompt: tuple[str, ...]) -> tuple[int | None, tuple[str, ...]]:
    """``--continue`` takes an optional ID, so ``-c "why?"`` hands it the question: a value that is not a
    number is the first word of the prompt, and the latest conversation is meant."""
    if value in ("", "latest"):
        return None, prompt
    if value.isdigit():
        return int(value), prompt
    return None, (value, *prompt)


def prompt_argument(prompt: tuple[str, ...]) -> str:
    """PROMPT words as one text; bytes that are not UTF-8 become U+FFFD, with a warning."""
    from llmswitch.encoding import repair_argument

    text, replaced = repair_argument(" ".join(prompt))
    if replaced:
        echo_status("warning: the prompt is not valid UTF-8; the bytes that are not were replaced with U+FFFD (�)")
    return text


def read_piped_input() -> str:
    """Piped stdin as UTF-8 whatever the locale says; invalid bytes become U+FFFD, with a warning."""
    from llmswitch.encoding import decode_input

    buffer = getattr(sys.stdin, "buffer", None)  # a replaced sys.stdin (tests, embedding) may be text only
    if buffer is None:
        return sys.stdin.read()
    text, replaced = decode_input(buffer.read())
    if replaced:
        echo_status("warning: the piped input is not valid UTF-8; the bytes that are not were replaced with "
                    "U+FFFD (�) (convert it first, e.g. `iconv -f latin1 -t utf-8`)")
    return text


def open_history(*, required: bool) -> HistoryStore | None:
    """The chat history store; when it cannot be opened, chat anyway (with a warning) unless it is needed."""
    from llmswitch.store import HistoryError, HistoryStore

    try:
        return HistoryStore.open()
    except HistoryError as error:
        if required:
            raise
        hint = f"\n  hint: {error.remedy}" if error.remedy else ""
        echo_status(f"warning: this conversation will not be saved: {error.message}{hint}")
        return None


def parse_settings(client: Client, conversation: Conversation, pairs: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """``-o KEY VALUE`` pairs, typed and checked against what the profile's backend declares."""
    if not pairs:
        return {}
    from llmswitch.profiles import option_specs, parse_cli_value

    profile = client.profile(conversation.profile_name)
    if "route" in profile.settings:
        return parse_route_options(client, profile.name, pairs)
    specs = option_specs(client.registry.backend_of(profile).info)
    parsed: dict[str, Any] = {}
    for key, value in pairs:
        spec = specs.get(key)
        if spec is None or key in ("backend", "model"):
            suggestions = close_matches(key, specs)
            hint = f"did you mean '{suggestions[0]}'? " if suggestions else ""
            raise InvalidOptionError(
                f"-o {key}: not an option of backend '{profile.backend}'",
                remedy=hint + "valid: " + ", ".join(sorted(k for k in specs if k not in ("backend", "model"))),
            )
        parsed[key] = parse_cli_value(spec, value)
    return parsed


def parse_route_options(client: Client, route_name: str, pairs: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """``-o`` on a route: the route's own keys (retries, generation defaults) stay on the route; any other
    applies to every member, so every member's backend must take it (the first that does not is named)."""
    from llmswitch.profiles import option_specs, parse_cli_value
    from llmswitch.router.routes import route_keys

    own = route_keys()
    leaves = client.resolve(route_name).leaves()
    parsed: dict[str, Any] = {}
    for key, value in pairs:
        spec = own.get(key)
        for leaf in [] if spec is not None else leaves:
            specs = option_specs(leaf.handle.info)
            spec = specs.get(key) if key not in ("backend", "model") else None
            if spec is None:
                raise InvalidOptionError(
                    f"-o {key}: not an option of member '{leaf.name}' (backend {leaf.target.backend}) of route "
                    f"'{route_name}'", remedy="a route's -o applies to every member: set it in the member profiles "
                    "that take it instead")
        assert spec is not None
        parsed[key] = parse_cli_value(spec, value)
    return parsed


# ---- one shot ---------------------------------------------------------------------------------------------


def one_shot(conversation: Conversation, text: str, *, no_stream: bool, as_json: bool, show_usage: bool) -> int:
    turn = conversation.stream(text, whole=no_stream)
    interrupted = False
    stopped_by: Terminated | None = None
    out = sys.stdout
    on_terminal = is_terminal(out)  # a model's text must not drive the terminal: see llmswitch.terminal
    piped = PipedText(out)
    try:
        if as_json or no_stream:
            for _event in turn:
                pass
            if not as_json:
                out.write(neutralize(turn.result.text) if on_terminal else turn.result.text)
        elif on_terminal:  # every piece shows at once
            write, flush = out.write, out.flush
            for event in turn:
                if type(event) is TextDelta:
                    write(neutralize(event.text))
                    flush()
        else:
            for event in turn:
                if type(event) is TextDelta:
                    piped.add(event.text)
            piped.write()
    except Terminated as stop:
        interrupted, stopped_by = True, stop
    except KeyboardInterrupt:
        interrupted = True
    except BrokenPipeError:
        # The reader left (`| head`): stop generating, record the call, and exit quietly like cat does.
        turn.finish()
        silence_stdout()
        return EXIT_OK
    finally:
        piped.cancel()
        turn.finish()  # the history and the ledger first: after SIGHUP there may be no terminal to write to
    piped.write_if_possible()  # the text of a stopped answer still waiting for the pipe
    if stopped_by is not None:
        return stopped(conversation, turn, stopped_by, as_json=as_json, show_usage=show_usage)
    result = turn.result
    if as_json:
        document = json.dumps(result_payload(conversation, turn, interrupted), ensure_ascii=False)
        out.write(json_for_display(document, out) + "\n")  # raw values; no raw control byte on a terminal
    elif result.text and not result.text.endswith("\n"):
        out.write("\n")
    out.flush()
    after_answer(turn, show_usage=show_usage, as_json=as_json)
    if interrupted:
        click.echo("interrupted (the answer so far is above)" if result.text else "interrupted before any answer",
                   err=True)
        return EXIT_INTERRUPTED
    if result.error is not None:
        if not as_json:
            print_error(result.error)
        return result.error.exit_code
    return EXIT_OK


class PipedText:
    """An answer streamed into a pipe or a file: what arrives within PIPE_FLUSH_S of the last write waits and
    goes out with the next one, so a long answer is a few dozen writes, not one per token.

    A write and a flush per token is a system call per token (with ``PYTHONUNBUFFERED``, as container images
    often set, every write is one): 20,000 of them for a long answer. The first piece goes out at once, and a
    timer writes what waits when the model pauses, so a reader sees every piece within PIPE_FLUSH_S of its
    arrival. A write that fails in the timer (the reader left) is raised by the next :meth:`add`.
    """

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.pending: list[str] = []
        self.last_write = 0.0
        self.lock = threading.Lock()
        self.timer: threading.Timer | None = None
        self.failure: OSError | None = None

    def add(self, text: str) -> None:
        with self.lock:
            if self.failure is not None:
                raise self.failure
            self.pending.append(text)
            now = time.perf_counter()
            if now - self.last_write >= PIPE_FLUSH_S:
                self._write(now)
            elif self.timer is None:
                self.timer = threading.Timer(self.last_write + PIPE_FLUSH_S - now, self._write_when_due)
                self.timer.daemon = True
                self.timer.start()

    def _write_when_due(self) -> None:
        with self.lock:
            self.timer = None
            try:
                self._write(time.perf_counter())
            except OSError as error:
                self.pending.clear()
                self.failure = error

    def _write(self, now: float) -> None:
        if self.pending:
            text = "".join(self.pending)
            self.pending.clear()
            self.out.write(text)
        self.out.flush()
        self.last_write = now

    def cancel(self) -> None:
        """Stop the timer: nothing is written behind the caller's back from now on."""
        with self.lock:
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None

    def write(self) -> None:
        """Write what waits now and stop the timer (the end of the answer); a reader that left raises
        BrokenPipeError here."""
        self.cancel()
        with self.lock:
            if self.failure is not None:
                raise self.failure
            self._write(time.perf_counter())

    def write_if_possible(self) -> None:
        """:meth:`write`, for an answer that was stopped: a reader or terminal that is gone is no error."""
        try:
            self.write()
        except OSError:
            self.pending.clear()


def stopped(conversation: Conversation, turn: Turn, stop: Terminated, *, as_json: bool, show_usage: bool) -> int:
    """The end of an answer stopped by SIGTERM or SIGHUP (already recorded): say so where still possible."""
    try:
        if as_json:
            sys.stdout.write(json.dumps(result_payload(conversation, turn, True), ensure_ascii=False) + "\n")
        elif turn.result.text and not turn.result.text.endswith("\n"):
            sys.stdout.write("\n")
        sys.stdout.flush()
    except OSError:  # the terminal is gone (SIGHUP) or the reader left
        silence_stdout()
    if show_usage:
        quietly_echo(usage_line(turn))
    quietly_echo(f"stopped by {stop.name} (the answer so far is kept and recorded as interrupted)")
    return stop.exit_code


def result_payload(conversation: Conversation, turn: Turn, interrupted: bool) -> dict[str, Any]:
    result = turn.result
    answered_by = result.resolved  # the member that answered (the profile itself unless it is a route)
    payload: dict[str, Any] = {
        "text": result.text,
        "profile": conversation.resolved.name,
        "member": answered_by.name,
        "backend": answered_by.target.backend,
        "model": result.model or answered_by.target.model,
        "finish_reason": "interrupted" if interrupted else result.finish_reason,
        "usage": {"input_tokens": result.usage.input_tokens, "output_tokens": result.usage.output_tokens},
        "latency_s": round(result.latency_s or 0.0, 4),
        "first_token_s": round(result.first_token_s, 4) if result.first_token_s is not None else None,
        "cached": result.cached,
        # every try of every member, the answering one last: {"member", "outcome", "status", "latency_s"}
        "attempts": [attempt.as_dict() for attempt in result.attempts],
    }
    if turn.cost is not None:
        # {"usd": 0.000123 | null (price unknown), "input_tokens", "output_tokens", "tokens_estimated",
        #  "price_source", "price_date", "price_age_days"}
        payload["cost"] = turn.cost.as_dict()
    if result.error is not None:
        payload["error"] = error_payload(result.error)
    if conversation.conversation_id is not None:
        payload["conversation_id"] = conversation.conversation_id  # for `llmswitch chat --continue ID`
    return payload


CACHED_NOTE = "(from the response cache; --no-cache asks the model again)"


def after_answer(turn: Turn, *, show_usage: bool, as_json: bool = False) -> None:
    """What stderr says after an answer: the usage line when asked for; else, on a terminal, that the answer
    came from the response cache (the usage line says "cost $0 (cached)" and --json "cached": true; a pipe gets
    nothing more than the answer)."""
    if show_usage:
        click.echo(usage_line(turn), err=True)
    elif turn.result.cached and not as_json and is_terminal(sys.stderr):
        click.echo(CACHED_NOTE, err=True)


def usage_line(turn: Turn) -> str:
    result = turn.result
    usage = result.usage
    parts = [
        f"tokens in {usage.input_tokens if usage.input_tokens is not None else '?'}",
        f"out {usage.output_tokens if usage.output_tokens is not None else '?'}",
        f"latency {result.latency_s or 0:.2f}s",
    ]
    if result.first_token_s is not None:
        parts.append(f"first token {result.first_token_s:.2f}s")
    if turn.cost is not None:
        parts.append(f"cost {turn.cost}")  # "$0.000123", "$0" or "unknown (why)": see accounting.CallCost
    return "usage: " + ", ".join(parts)


# ---- REPL -------------------------------------------------------------------------------------------------


def repl(conversation: Conversation, *, show_usage: bool, whole: bool = False) -> int:
    try:
        import readline  # noqa: F401  - line editing and history for input()
    except ImportError:  # pragma: no cover - Windows
        pass
    resolved = conversation.resolved
    click.echo(f"llmswitch chat: profile {resolved.name} ({resolved.target.backend}, {resolved.target.model}). "
               "/help for commands, Ctrl-D to leave.", err=True)
    while True:
        try:
            text = read_prompt()
        except EOFError:
            click.echo("", err=True)
            return EXIT_OK
        except Terminated as stop:
            quietly_echo(f"\nstopped by {stop.name}")
            return stop.exit_code
        except KeyboardInterrupt:
            click.echo("", err=True)
            continue
        if not text.strip():
            continue
        if text.startswith("/"):
            if repl_command(conversation, text.strip()) == "exit":
                return EXIT_OK
            continue
        try:
            turn = conversation.stream(text, whole=whole)
        except LLMSwitchError as error:
            print_error(error)
            continue
        on_terminal = is_terminal(sys.stdout)
        stopped_by: Terminated | None = None
        try:
            for event in turn:
                if type(event) is TextDelta:
                    sys.stdout.write(neutralize(event.text) if on_terminal else event.text)
                    sys.stdout.flush()
                elif type(event) is StreamError:
                    sys.stdout.write("\n")
                    print_error(event.error)
        except Terminated as stop:
            stopped_by = stop
        except KeyboardInterrupt:
            click.echo("\n(stopped; the partial answer is kept)", err=True)
        finally:
            turn.finish()
        if stopped_by is not None:
            return stopped(conversation, turn, stopped_by, as_json=False, show_usage=show_usage)
        sys.stdout.write("\n")
        after_answer(turn, show_usage=show_usage)


def read_prompt() -> str:
    lines = [input("> ")]
    while lines[-1].endswith("\\"):
        lines[-1] = lines[-1][:-1]
        lines.append(input(". "))
    return "\n".join(lines)


def repl_command(conversation: Conversation, text: str) -> str | None:
    command, _, argument = text.partition(" ")
    argument = argument.strip()
    if command in ("/exit", "/quit"):
        return "exit"
    if command == "/help":
        click.echo(REPL_HELP, err=True)
    elif command == "/reset":
        conversation.reset()
        click.echo("(conversation cleared)", err=True)
    elif command == "/system":
        conversation.system = argument or None
        click.echo(f"(system prompt {'set' if argument else 'cleared'})", err=True)
    elif command == "/profile":
        if not argument:
            click.echo(f"(profile: {conversation.resolved.name})", err=True)
            return None
        try:
            resolved = conversation.switch(argument)
        except LLMSwitchError as error:
            print_error(error)
            return None
        click.echo(f"(now answering with {resolved.name}: {resolved.target.backend}, {resolved.target.model}; "
                   f"{len(conversation.messages)} messages kept)", err=True)
    else:
        click.echo(f"unknown command {command}; /help lists them", err=True)
    return None


__all__ = ["chat"]
