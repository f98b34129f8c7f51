"""``llmswitch serve``: the OpenAI- and Anthropic-compatible gateway (needs the ``llmswitch[serve]`` extra)."""

from __future__ import annotations

import click

from llmswitch.errors import ConfigError


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback needs gateway keys.")
@click.option("--port", default=4000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("-p", "--profile", "profiles", multiple=True, metavar="NAME",
              help="Serve this profile (repeatable; default: every profile). Clients name it as the model.")
@click.option("--new-key", is_flag=True,
              help="Create a gateway key, store its hash in [serve] keys, print the key once, and exit.")
@click.option("--name", "key_name", metavar="NAME",
              help="With --new-key: the key's name (its calls are recorded under it; needed for limits).")
@click.option("--rpm", type=click.IntRange(min=1), help="With --new-key: requests the key may make a minute.")
@click.option("--tpm", type=click.IntRange(min=1), help="With --new-key: tokens the key may use a minute.")
@click.option("--max-concurrent", type=click.IntRange(min=1), help="With --new-key: the key's calls at once.")
@click.option("--budget-usd-per-day", type=click.FloatRange(min=0, min_open=True), metavar="USD",
              help="With --new-key: the key's spend a day.")
@click.option("--budget-usd-per-month", type=click.FloatRange(min=0, min_open=True), metavar="USD",
              help="With --new-key: the key's spend a month.")
@click.option("--shutdown-deadline", default=30, show_default=True, type=click.IntRange(0), metavar="SECONDS",
              help="After SIGTERM, how long answers in flight may take to finish.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, profiles: tuple[str, ...], new_key: bool, key_name: str | None,
          shutdown_deadline: int, **limits: float | None) -> None:
    """Serve profiles to OpenAI and Anthropic clients: POST /v1/chat/completions, /v1/messages, GET /v1/models.

    \b
    llmswitch serve -p claude -p local
    OPENAI_BASE_URL=http://127.0.0.1:4000/v1 OPENAI_API_KEY=unused your-app   (model = a profile name)
    """
    config = ctx.obj.get("config")
    given = [f"--{setting.replace('_', '-')}" for setting, value in limits.items() if value is not None]
    if new_key:
        create_key(config, key_name, limits)
        return
    if key_name is not None or given:
        raise click.UsageError(f"{(given or ['--name'])[0]} describes a new gateway key: add --new-key "
                               "(for example `llmswitch serve --new-key --name alice --rpm 60`)")
    try:
        from llmswitch.serve.server import build, run
    except ImportError as error:
        missing = (error.name or str(error)).split(".")[0].replace("_", "-")  # the module's distribution name
        raise ConfigError(f"llmswitch serve needs starlette, uvicorn and prometheus-client: {missing} is not "
                          "installed",
                          remedy="pip install 'llmswitch[serve]'") from None
    run(build(config, profiles), host, port, deadline_s=shutdown_deadline)


def create_key(config: str | None, name: str | None, limits: dict[str, float | None]) -> None:
    """``--new-key``: the key on stdout (only now), what was stored on stderr."""
    from llmswitch.serve.keys import describe_limits, store_new_key

    if name is None and any(value is not None for value in limits.values()):
        raise click.UsageError("a gateway key with limits needs a name (its requests and spend are counted by "
                               "it): add --name, for example --name alice")
    click.echo(store_new_key(config, name, limits))
    what = f"gateway key '{name.strip()}' ({describe_limits(limits)})" if name is not None else "a gateway key"
    click.echo(f"{what}: shown only now, its hash is in [serve] keys; send it as the client's API key", err=True)
