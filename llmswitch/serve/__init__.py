"""``llmswitch serve``: every profile behind one OpenAI- and Anthropic-compatible endpoint.

    from llmswitch.serve import build_app
    app = build_app(profiles=["claude", "local"])   # an ASGI app; run it with any ASGI server

Layout: :mod:`.gateway` is protocol-neutral (profiles, one call's bookkeeping, readiness); :mod:`.openai_api`
and :mod:`.anthropic_api` are the two wire formats; :mod:`.answer` sends an answer streamed or whole;
:mod:`.failures` is the one table from llmswitch errors to HTTP statuses; :mod:`.keys` holds gateway keys and
the rule on bind addresses; :mod:`.app` puts them together on starlette, and :mod:`.server` runs them on uvicorn.
starlette, uvicorn and prometheus-client (the ``llmswitch[serve]`` extra) are imported only from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from starlette.applications import Starlette


def build_app(config: str | None = None, profiles: Sequence[str] = ()) -> Starlette:
    """The gateway's ASGI app over the profiles of ``config`` (all of them when ``profiles`` is empty)."""
    from llmswitch.serve.server import build

    return build(config, profiles).app
