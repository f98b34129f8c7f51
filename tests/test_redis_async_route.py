"""The async path with the router state in a real Redis: a pool call awaits the state (the loop keeps running
while Redis is slow to answer) and never calls a blocking state method on the event loop."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from llmswitch.client import AsyncClient
from llmswitch.router.resolved import ResolvedRoute
from llmswitch.router.state import RouterState
from llmswitch.testing.redis_server import RedisServer
from tests.servers.http import LocalServer
from tests.servers.openai_server import openai_server

pytest.importorskip("redis")
pytest.importorskip("llmswitch_openai")

SYNC_METHODS = ("cooldown_until", "cool", "record_failure", "clear_failures", "try_enter", "leave", "in_flight",
                "try_take", "settle", "add_spend")


class Watched:
    """The real state, noting every method called and every blocking one called on a running event loop."""

    def __init__(self, state: RouterState) -> None:
        self.state = state
        self.called: list[str] = []
        self.blocking_on_the_loop: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.state, name)
        if name not in SYNC_METHODS and not (name.startswith("a") and name[1:] in SYNC_METHODS):
            return method

        def watched(*args: Any) -> Any:
            self.called.append(name)
            if name in SYNC_METHODS and _on_a_running_loop():
                self.blocking_on_the_loop.append(name)
            return method(*args)

        return watched


def _on_a_running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def fleet(config_file: Path, redis_server: RedisServer, a: LocalServer, b: LocalServer, **route: Any) -> None:
    def member(server: LocalServer) -> dict[str, Any]:
        return {"backend": "openai", "base_url": f"{server.url}/v1", "model": "test-model", "api_key": "sk-test"}

    config_file.write_text(tomli_w.dumps({
        "router": {"state": redis_server.url},
        "profiles": {"a": member(a), "b": member(b),
                     "fleet": {"route": "pool", "strategy": "least-busy", "members": ["a", "b"], **route}},
    }), encoding="utf-8")


def test_an_async_pool_call_awaits_every_state_step(config_file: Path, redis_server: RedisServer) -> None:
    with openai_server() as a, openai_server() as b:
        fleet(config_file, redis_server, a, b, max_concurrent=4, rpm=100)
        client = AsyncClient()
        route = client.resolve("fleet")
        assert isinstance(route, ResolvedRoute)
        watched = Watched(client.router_state)
        route.state = watched  # type: ignore[assignment]

        async def main() -> None:
            for _ in range(3):
                answer = await route.acomplete(route.request("hello"))
                assert answer.text

        asyncio.run(main())
    assert watched.blocking_on_the_loop == []
    assert {"ain_flight", "atry_enter", "atry_take", "aleave", "acooldown_until"} <= set(watched.called)


def test_the_loop_keeps_running_while_redis_is_slow_to_answer(config_file: Path, redis_server: RedisServer) -> None:
    import redis

    pause_ms = 300
    with openai_server() as a, openai_server() as b:
        fleet(config_file, redis_server, a, b, max_concurrent=4)
        client = AsyncClient()
        route = client.resolve("fleet")
        asyncio.run(route.acomplete(route.request("warm up")))  # modules loaded, Redis connected
        ticks: list[float] = []

        async def ticker(stop: asyncio.Event) -> None:
            while not stop.is_set():
                ticks.append(time.perf_counter())
                await asyncio.sleep(0.01)

        async def main() -> float:
            stop = asyncio.Event()
            ticking = asyncio.create_task(ticker(stop))
            await asyncio.sleep(0.05)
            # Redis holds every client's commands for a while, as a busy or distant server would.
            paused = threading.Thread(target=lambda: redis.Redis.from_url(redis_server.url).client_pause(pause_ms))
            paused.start()
            paused.join()
            started = time.perf_counter()
            await route.acomplete(route.request("hello"))
            took = time.perf_counter() - started
            await asyncio.sleep(0.05)
            stop.set()
            await ticking
            return took

        took = asyncio.run(main())
    assert took >= pause_ms / 1000 * 0.8  # the call did wait for Redis
    gaps = [later - earlier for earlier, later in zip(ticks, ticks[1:], strict=False)]
    assert max(gaps) < 0.15, f"the event loop stood still for {max(gaps):.3f} s while Redis was paused"
