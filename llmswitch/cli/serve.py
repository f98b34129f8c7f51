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
@click.option("--shutdown-deadline", default=30, show_default=True, type=click.IntRange(0), metavar="SECONDS",
              help="After SIGTERM, how long answers in flight may take to finish.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, profiles: tuple[str, ...], new_key: bool,
          shutdown_deadline: int) -> None:
    """Serve profiles to OpenAI and Anthropic clients: POST /v1/chat/completions, /v1/messages, GET /v1/models.

    \b
    llmswitch serve -p claude -p local
    OPENAI_BASE_URL=http://127.0.0.1:4000/v1 OPENAI_API_KEY=unused your-app   (model = a profile name)
    """
    config = ctx.obj.get("config")
    if new_key:
        from llmswitch.serve.keys import store_new_key

        click.echo(store_new_key(config))
        click.echo("a gateway key (shown only now; its hash is in [serve] keys): send it as the client's API key",
                   err=True)
        return
    try:
        from llmswitch.serve.server import build, run
    except ImportError as error:
        missing = (error.name or str(error)).split(".")[0].replace("_", "-")  # the module's distribution name
        raise ConfigError(f"llmswitch serve needs starlette, uvicorn and prometheus-client: {missing} is not "
                          "installed",
                          remedy="pip install 'llmswitch[serve]'") from None
    run(build(config, profiles), host, port, deadline_s=shutdown_deadline)
