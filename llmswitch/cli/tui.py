"""``llmswitch tui``: open the terminal chat app. Textual is imported only when this command runs."""

from __future__ import annotations

import click


@click.command()
@click.option("-p", "--profile", "profile_name", metavar="NAME", help="Profile to start with (default: default_profile).")
@click.option("-c", "--continue", "continue_id", is_flag=False, flag_value="latest", default=None, metavar="[ID]",
              help="Open a stored conversation: the latest, or the one with this ID.")
@click.option("--no-history", is_flag=True, help="Save nothing in the chat history (it can still be read).")
@click.pass_context
def tui(ctx: click.Context, profile_name: str | None, continue_id: str | None, no_history: bool) -> int:
    """Open the terminal chat app: every profile, switching mid-conversation, searchable history.

    \b
    Keys are listed in the footer and with F1; remap them in config.toml under [tui.keys].
    """
    from llmswitch.tui.app import create_app

    conversation: int | str | None = continue_id
    if continue_id is not None and continue_id != "latest":
        if not continue_id.isdigit():
            raise click.BadParameter(f"{continue_id!r} is not a conversation id (a number)", param_hint="--continue")
        conversation = int(continue_id)
    app = create_app(ctx.obj.get("config"), profile=profile_name, conversation_id=conversation,
                     record=not no_history)
    app.run()
    return 0
