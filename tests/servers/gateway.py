"""``llmswitch serve``'s app on uvicorn in a background thread, on 127.0.0.1 and a free port, for tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from llmswitch.serve.server import Built, build
from llmswitch.testing.server import LocalServer


class RunningGateway:
    """The gateway over the test's config file; ``url`` is its root, ``base_url`` what OpenAI clients take."""

    def __init__(self, profiles: Sequence[str] = (), config: str | None = None) -> None:
        import uvicorn

        from llmswitch.testing.server import free_port

        self.built: Built = build(config, profiles)
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(self.built.app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan="off", access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def __enter__(self) -> RunningGateway:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        from llmswitch import metrics

        self.server.should_exit = True
        self.thread.join(10)
        metrics.disable()  # serve turned them on for this process


def reset_upstream(server: LocalServer, **options: object) -> LocalServer:
    """A module's shared OpenAI-protocol upstream, back to answering normally (resetting costs nothing;
    stopping a server takes half a second)."""
    from llmswitch_openai import calls

    server.state.scenario = "ok"
    server.state.script.clear()  # a test that stopped half-way must not leave its faults to the next one
    server.state.requests.clear()
    server.state.options.clear()
    server.state.options.update(options)
    server.state.disconnected.clear()
    calls._refuses_stream_options.clear()  # the plugin remembers refusals per URL, and the URL is shared
    return server
