"""The plugin guide's complete example, installed exactly as the page shows it and run against a server that
speaks the protocol: the page is the test's input, so the page cannot drift from what works."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmswitch.testing.server import LocalServer
from tests.plugin_guide import guide_files
from tests.servers.openai_server import openai_server


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip install`` of the guide's two files into a directory of its own (its entry point included)."""
    source = tmp_path_factory.mktemp("llmswitch-tiny")
    for name, text in guide_files().items():
        (source / name).write_text(text, encoding="utf-8")
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "--target", str(target), str(source)], check=True,
                   capture_output=True)
    return target


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with openai_server() as running:
        yield running


def run(installed: Path, config: Path, *args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(installed), os.environ.get("PYTHONPATH", "")]),
           "LLMSWITCH_CONFIG": str(config)}
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "llmswitch", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def test_the_example_is_complete_and_under_120_lines() -> None:
    module = guide_files()["llmswitch_tiny.py"]
    assert len(module.splitlines()) < 120
    for hook in ("llmswitch_backends", "complete", "stream", "astream", "ahealth"):
        assert f"def {hook}(" in module
    assert "choices=" in module and "status_error" in module


def test_the_installed_example_answers_streams_refuses_and_checks(installed: Path, config_file: Path,
                                                                    server: LocalServer) -> None:
    server.state.options["answer"] = "hello from the guide"
    config_file.write_text(f'[profiles.t]\nbackend = "tiny"\nbase_url = "{server.url}/v1"\ntimeout = 5.0\n')

    listed = run(installed, config_file, "plugins")
    assert "tiny" in listed.stdout, listed

    streamed = run(installed, config_file, "chat", "-p", "t", "-o", "max_tokens", "7", "-o", "seed", "3", "hi")
    assert streamed.returncode == 0 and streamed.stdout == "hello from the guide\n", streamed
    body = server.state.requests[-1].body
    assert body["max_tokens"] == 7 and body["seed"] == 3 and body["stream"] is True  # honoured, not ignored

    whole = run(installed, config_file, "chat", "-p", "t", "--no-stream", "-o", "reasoning_effort", "high", "hi")
    assert whole.returncode == 0 and whole.stdout == "hello from the guide\n", whole
    assert server.state.requests[-1].body["reasoning_effort"] == "high"

    sent = len(server.state.requests)
    refused = run(installed, config_file, "chat", "-p", "t", "-o", "reasoning_effort", "extreme", "hi")
    assert refused.returncode == 2 and "must be one of low, medium, high" in refused.stderr, refused
    top_k = run(installed, config_file, "chat", "-p", "t", "-o", "top_k", "5", "hi")
    assert top_k.returncode == 2 and "top_k" in top_k.stderr and "Traceback" not in top_k.stderr
    assert len(server.state.requests) == sent  # refused before anything was sent

    server.state.scenario = "auth"
    rejected = run(installed, config_file, "chat", "-p", "t", "hi")
    assert rejected.returncode == 1 and "TINY_API_KEY" in rejected.stderr and "Traceback" not in rejected.stderr

    server.state.scenario = "ok"
    doctor = run(installed, config_file, "doctor", "--json", "t")
    (profile,) = json.loads(doctor.stdout)["profiles"]
    assert {check["name"]: check["status"] for check in profile["checks"]}["model"] == "pass", doctor


def test_the_installed_example_works_under_the_async_api(installed: Path, config_file: Path,
                                                         server: LocalServer) -> None:
    server.state.options["answer"] = "async hello"
    config_file.write_text(f'[profiles.t]\nbackend = "tiny"\nbase_url = "{server.url}/v1"\n')
    code = ("import asyncio\nfrom llmswitch import AsyncClient\n"
            "async def main():\n"
            "    resolved = AsyncClient().resolve('t')\n"
            "    events = [e async for e in resolved.astream(resolved.request('hi'))]\n"
            "    whole = await resolved.acomplete(resolved.request('hi'))\n"
            "    print(''.join(getattr(e, 'text', '') for e in events), '|', whole.text)\n"
            "asyncio.run(main())\n")
    result = run(installed, config_file, code=code)
    assert result.stdout.strip() == "async hello | async hello", result
