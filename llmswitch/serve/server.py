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
# uvicorn's own deadline, a backstop behind ours: it cancels with a traceback in the log, ours in a sentence.
UVICORN_BACKSTOP_S = 5


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
                            lifespan="off", timeout_graceful_shutdown=deadline_s + UVICORN_BACKSTOP_S,
                            server_header=False)
    server = _graceful_server_class(uvicorn)(config)
    server.deadline_s = deadline_s
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
    """uvicorn's server, with two changes. SIGTERM (after the graceful stop) exits 0: a stop that was asked for
    and carried out is a success for a service manager, not a death by signal (uvicorn re-raises the signal).
    And at the shutdown deadline, the answers still in flight are cancelled by this server, which tells the
    operator in a sentence (each client gets its protocol's error, see app.Exchanges), before uvicorn's own
    deadline would cancel them with an ``ERROR:`` line."""
    import asyncio
    import logging
    import signal

    class GracefulServer(uvicorn.Server):  # type: ignore[misc,name-defined]
        deadline_s: float = SHUTDOWN_DEADLINE_S

        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            captured = getattr(self, "_captured_signals", None)
            if sig == signal.SIGTERM and isinstance(captured, list) and sig in captured:
                captured.remove(sig)

        async def shutdown(self, sockets: Any = None) -> None:
            timer = asyncio.get_running_loop().call_later(self.deadline_s, self._deadline_passed)
            try:
                await super().shutdown(sockets)
            finally:
                timer.cancel()

        def _deadline_passed(self) -> None:
            running = [task for task in self.server_state.tasks if not task.done()]
            if not running:
                return
            count = len(running)
            logging.getLogger("llmswitch.serve").warning(
                "shutdown deadline (%s s) passed: cancelled %d answer%s in flight (%s told the gateway is "
                "shutting down, and charged for what was used)", self.deadline_s, count,
                "" if count == 1 else "s", "its client was" if count == 1 else "their clients were")
            for task in running:
                task.cancel(msg="the shutdown deadline passed")

    return GracefulServer
