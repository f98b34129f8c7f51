"""Running the gateway: the app built from a config, on uvicorn, with a graceful stop on SIGTERM."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette

from llmswitch.client import AsyncClient
from llmswitch.serve.app import create_app
from llmswitch.serve.gateway import Gateway
from llmswitch.serve.keys import GatewayKeys, check_bind
from llmswitch.serve.listen import listen

DEFAULT_PORT = 4000
SHUTDOWN_DEADLINE_S = 30  # after SIGTERM, in-flight answers may finish for this long


@dataclass
class Built:
    app: Starlette
    gateway: Gateway
    keys: GatewayKeys


def build(config: str | None, profiles: Sequence[str] = ()) -> Built:
    """The app over ``config``'s profiles; every profile named is checked to exist before anything listens."""
    client = AsyncClient(config)
    for name in profiles:
        client.store.get(name)  # a typo fails now, with suggestions, not on the first request
    keys = GatewayKeys.load(client.store.document)
    from llmswitch import metrics

    gateway = Gateway(client, tuple(dict.fromkeys(profiles)), metrics=metrics.enable())
    return Built(create_app(gateway, keys), gateway, keys)


def run(built: Built, host: str, port: int, *, deadline_s: int = SHUTDOWN_DEADLINE_S) -> None:
    """Serve until SIGTERM or Ctrl-C: then stop accepting, let answers in flight finish up to ``deadline_s``."""
    import logging

    import uvicorn

    check_bind(host, built.keys)
    sockets = listen(host, port)  # before the banner: it says where the gateway really is, or nothing
    port = sockets[0].getsockname()[1]
    # Failures upstream are told to clients in a sentence and to the operator in full, here (redacted).
    logging.basicConfig(level=logging.WARNING, format="llmswitch serve: %(message)s")
    config = uvicorn.Config(built.app, host=host, port=port, log_level="warning", access_log=False,
                            lifespan="off", timeout_graceful_shutdown=deadline_s, server_header=False)
    server = _graceful_server_class(uvicorn)(config)
    bare = host.strip("[]")
    shown = f"[{bare}]" if ":" in bare else bare
    models = built.gateway.models()
    sys.stderr.write(
        f"llmswitch serve: http://{shown}:{port} ({len(models)} profile{'s' if len(models) != 1 else ''}: "
        f"{', '.join(models[:8])}{', ...' if len(models) > 8 else ''})\n"
        f"  OpenAI clients: base_url http://{shown}:{port}/v1   Anthropic clients: base_url http://{shown}:{port}\n"
        f"  gateway keys: {'required' if built.keys else 'none (loopback only)'}\n")
    sys.stderr.flush()
    server.run(sockets=sockets)


def _graceful_server_class(uvicorn: Any) -> Any:
    """uvicorn's server, except that SIGTERM (after the graceful stop) exits 0: a stop that was asked for and
    carried out is a success for a service manager, not a death by signal (uvicorn re-raises the signal)."""
    import signal

    class GracefulServer(uvicorn.Server):  # type: ignore[misc,name-defined]
        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            captured = getattr(self, "_captured_signals", None)
            if sig == signal.SIGTERM and isinstance(captured, list) and sig in captured:
                captured.remove(sig)

    return GracefulServer
