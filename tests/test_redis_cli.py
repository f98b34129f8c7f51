"""``[router] state = "redis://..."`` from the command line: shared through a real Redis, never a crash without it,
and the Redis client loaded only by the commands that call a model."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from llmswitch.testing.redis_server import RedisServer
from tests.helpers import console_script_probe

pytest.importorskip("redis")


def _dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def llmswitch(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command in a process of its own (the hermetic environment's config and data dirs)."""
    return subprocess.run([sys.executable, "-m", "llmswitch", *args], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def test_a_chat_with_redis_unreachable_answers_with_one_warning(config_file: Path) -> None:
    port = _dead_port()
    config_file.write_text(f'[router]\nstate = "redis://:hunter2secret@127.0.0.1:{port}/0"\n\n'
                           '[profiles.capped]\nbackend = "echo"\nrpm = 5\nmax_concurrent = 2\n', encoding="utf-8")
    result = llmswitch("chat", "-p", "capped", "--no-history", "hello")
    assert result.returncode == 0, result.stderr
    assert "hello" in result.stdout
    lines = [line for line in result.stderr.splitlines() if "router state" in line]
    assert len(lines) == 1, result.stderr
    assert f"Redis at 127.0.0.1:{port}/0 is unreachable" in lines[0]
    assert "Traceback" not in result.stderr
    assert "hunter2secret" not in result.stderr + result.stdout


def test_chats_in_separate_processes_share_the_rpm_through_redis(config_file: Path,
                                                                   redis_server: RedisServer) -> None:
    config_file.write_text(f'[router]\nstate = "{redis_server.url}"\n\n'
                           '[profiles.capped]\nbackend = "echo"\nrpm = 2\ntimeout_total = 1\n', encoding="utf-8")
    for _ in range(2):
        answered = llmswitch("chat", "-p", "capped", "--no-history", "hello")
        assert answered.returncode == 0, answered.stderr
        assert answered.stderr == ""
    refused = llmswitch("chat", "-p", "capped", "--no-history", "hello")  # a third process, in the same minute
    assert refused.returncode != 0
    assert "no room under its rpm limit" in refused.stderr and "Traceback" not in refused.stderr
    assert refused.stdout == ""
    import redis

    entries = redis.Redis.from_url(redis_server.url).zcard("llmswitch:window:rpm:capped")
    assert entries == 2


def test_commands_that_call_no_model_never_load_the_redis_client(config_file: Path) -> None:
    config_file.write_text(f'[router]\nstate = "redis://127.0.0.1:{_dead_port()}/0"\n\n'
                           '[profiles.capped]\nbackend = "echo"\nrpm = 5\n', encoding="utf-8")
    probe = console_script_probe("sys.stderr.write('LOADED=' + json.dumps('redis' in sys.modules))")
    for args in (["--help"], ["--version"], ["profiles", "list"], ["profiles", "show", "capped"]):
        proc = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True,
                              text=True, timeout=60)
        assert json.loads(proc.stderr.rsplit("LOADED=", 1)[1]) is False, f"{args} loaded redis"
