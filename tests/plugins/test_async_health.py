"""``ahealth`` of the HTTP plugins (openai, anthropic, ollama): native on the caller's event loop, no worker
thread, and the same report as ``health`` because both drive one generator of checks
(:func:`llmswitch.kit.run_checks` / :func:`llmswitch.kit.arun_checks`), against protocol servers on real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from llmswitch.client import AsyncClient, Client
from llmswitch.types import CheckStatus, HealthReport
from tests.servers.anthropic_server import anthropic_server
from tests.servers.http import LocalServer, refused_port
from tests.servers.ollama_server import ollama_server
from tests.servers.openai_server import openai_server

KEY = "sk-ant-api03-THISISASECRETKEYTHATMUSTNEVERSHOW-9876"

# backend: (server factory, profile values for a server at URL, the profile's model, a model no server has)
BACKENDS: dict[str, tuple[Callable[[], LocalServer], Callable[[str], dict[str, Any]]]] = {
    "openai": (openai_server, lambda url: {"base_url": f"{url}/v1", "model": "test-model", "api_key": KEY}),
    "anthropic": (anthropic_server, lambda url: {"base_url": url, "model": "claude-haiku-4-5", "api_key": KEY}),
    "ollama": (ollama_server, lambda url: {"base_url": url, "model": "llama3.2"}),
}


def on_the_loop(config_file: Path, timeout: float = 5.0, offline: bool = False) -> HealthReport:
    """``ahealth`` through ``AsyncClient``; the blocking request function is disabled meanwhile, so a fallback
    to ``health`` in a worker thread cannot pass for the native hook."""
    from llmswitch.kit import checks

    def blocking(call: Any) -> Any:
        raise AssertionError(f"ahealth sent {call.path} with a blocking request instead of on the loop")

    async def main() -> HealthReport:
        async with AsyncClient() as client:
            return await client.resolve("p").ahealth(timeout=timeout, offline=offline)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(checks, "request_json", blocking)
        return asyncio.run(main())


def statuses(report: HealthReport) -> dict[str, CheckStatus]:
    return {check.name: check.status for check in report.checks}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, config_file: Path) -> Iterator[tuple[str, LocalServer]]:
    name = request.param
    factory, values = BACKENDS[name]
    with factory() as server:
        server.state.options["key"] = KEY
        config_file.write_text(tomli_w.dumps({"profiles": {"p": {"backend": name, "timeout": 5.0,
                                                                 **values(server.url)}}}))
        yield name, server


def test_ahealth_is_native_and_reports_what_health_reports(backend: tuple[str, LocalServer],
                                                           config_file: Path) -> None:
    name, server = backend
    assert "ahealth" in Client().resolve("p").handle.hooks
    asynchronous = on_the_loop(config_file)
    synchronous = Client().resolve("p").health(timeout=5)
    assert statuses(asynchronous) == statuses(synchronous)
    assert set(statuses(asynchronous).values()) == {CheckStatus.PASS}, asynchronous
    assert asynchronous.latency_s is not None and asynchronous.latency_s > 0
    assert [r.method for r in server.state.requests] == ["GET"] * len(server.state.requests) != []


def test_ahealth_maps_a_failing_server_into_checks_not_exceptions(backend: tuple[str, LocalServer],
                                                                    config_file: Path) -> None:
    name, server = backend
    server.state.scenario = "reset"
    asynchronous = on_the_loop(config_file)
    synchronous = Client().resolve("p").health(timeout=5)
    assert statuses(asynchronous) == statuses(synchronous)
    assert CheckStatus.FAIL in statuses(asynchronous).values() or CheckStatus.WARN in statuses(asynchronous).values()
    assert all(check.remedy for check in asynchronous.checks if check.status is CheckStatus.FAIL)
    assert KEY not in repr(asynchronous)


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_ahealth_when_nothing_listens_and_offline(name: str, config_file: Path) -> None:
    values = BACKENDS[name][1](f"http://127.0.0.1:{refused_port()}")
    config_file.write_text(tomli_w.dumps({"profiles": {"p": {"backend": name, **values}}}))
    down = on_the_loop(config_file, timeout=2)
    assert CheckStatus.FAIL in statuses(down).values()
    assert all(check.remedy for check in down.checks if check.status is CheckStatus.FAIL)
    offline = on_the_loop(config_file, offline=True)
    assert CheckStatus.SKIP in statuses(offline).values() and CheckStatus.FAIL not in statuses(offline).values()
    assert statuses(offline) == statuses(Client().resolve("p").health(offline=True))


def test_an_auth_failure_reads_the_same_in_both_forms(config_file: Path) -> None:
    with anthropic_server() as server:
        server.state.options["key"] = KEY
        server.state.scenario = "auth"
        config_file.write_text(tomli_w.dumps({"profiles": {"p": {"backend": "anthropic", "base_url": server.url,
                                                                 "model": "claude-haiku-4-5", "api_key": KEY}}}))
        asynchronous = on_the_loop(config_file)
        synchronous = Client().resolve("p").health(timeout=5)
    assert asynchronous.checks == synchronous.checks
    assert statuses(asynchronous)["authorised"] is CheckStatus.FAIL
