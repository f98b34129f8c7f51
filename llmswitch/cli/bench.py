"""``llmswitch bench``: time profiles against each other (see :mod:`llmswitch.bench`)."""

from __future__ import annotations

import json
import sys

import click


@click.command()
@click.argument("prompt", nargs=-1)
@click.option("-p", "--profile", "profiles", multiple=True, required=True, metavar="NAME",
              help="Profile to time (repeat to compare: -p fast -p careful).")
@click.option("-n", "--runs", type=click.IntRange(min=1), default=5, show_default=True,
              help="Measured calls per profile.")
@click.option("--warmup", type=click.IntRange(min=0), default=1, show_default=True,
              help="Calls per profile before measuring (the first one is the cold start, shown apart).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def bench(ctx: click.Context, prompt: tuple[str, ...], profiles: tuple[str, ...], runs: int, warmup: int,
          as_json: bool) -> int:
    """Time PROMPT (or `-` for stdin; default: a fixed prompt that makes a few hundred tokens) on each profile.

    Calls are interleaved (A, B, A, B, ...) so a busy machine hurts every profile alike. For each profile:
    time to first token, output tokens per second, total latency, input and output tokens and cost per call,
    as medians with min-max; the cold start (a local model's load) is shown apart. A failed call is counted
    and its error shown; the exit code is 1 when a profile had no successful call. Every call is a real one:
    it is charged and recorded in the usage ledger like a chat.
    """
    from llmswitch.bench import DEFAULT_PROMPT, run_bench
    from llmswitch.client import Client

    text = " ".join(prompt) if prompt else DEFAULT_PROMPT
    if text == "-":
        text = sys.stdin.read()
    client = Client(ctx.obj.get("config") if ctx.obj else None)

    def progress(profile: str, done: int, total: int) -> None:
        if sys.stderr.isatty():
            click.echo(f"\rbench: call {done + 1}/{total} ({profile})\x1b[K", err=True, nl=False)

    results = run_bench(client, list(profiles), text, runs=runs, warmup=warmup, progress=progress)
    if sys.stderr.isatty():
        click.echo("\r\x1b[K", err=True, nl=False)
    if as_json:
        click.echo(json.dumps({"prompt": text, "runs": runs, "warmup": warmup,
                               "profiles": [result.as_dict() for result in results]}, indent=2, ensure_ascii=False))
    else:
        from llmswitch.cli.bench_report import render

        render(results, runs=runs, warmup=warmup)
    return 0 if all(result.ok for result in results) else 1
