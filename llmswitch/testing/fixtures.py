"""pytest fixtures for hermetic llmswitch tests: ``pytest_plugins = ["llmswitch.testing.fixtures"]``.

Every test gets its own config, data and cache directories and an empty working directory (no stray
``.env``), with the variables that would make it depend on the machine (real keys, base URLs, proxies)
removed. The plugin registry is reloaded around each test, so plugins registered by one never leak into
the next. ``redis_server`` starts a real Redis for the tests of shared router state.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmswitch import metrics, plugins
from llmswitch.ledger import flush_rows
from llmswitch.router.state import forget_states
from llmswitch.secrets import forget_secrets
from llmswitch.testing.redis_server import INSTALL_HINT, RedisServer, redis_server_binary

# Variables that would make a test depend on the machine it runs on (and, from backend_variables, every key
# and base URL variable an installed backend reads).
LEAKY_VARIABLES = (
    "LLMSWITCH_PLUGINS",
    "LLMSWITCH_CONFIG",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


@functools.cache
def backend_variables() -> tuple[str, ...]:
    """The key and base-URL variables the installed backends declare (``key_env``, ``base_url_env``): the core
    knows none by name. Read once a process, from every installed plugin (``LLMSWITCH_PLUGINS`` is ignored)."""
    allowed = os.environ.pop("LLMSWITCH_PLUGINS", None)
    try:
        plugins.reset_registry()
        infos = [handle.info for handle in plugins.get_registry().backends.values()]
    finally:
        if allowed is not None:
            os.environ["LLMSWITCH_PLUGINS"] = allowed
        plugins.reset_registry()
    return tuple(sorted({name for info in infos for name in (info.key_env, info.base_url_env) if name}))


def isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every llmswitch path under ``tmp_path/home``, drop the machine's keys, URLs and proxies, run from
    an empty working directory (no stray .env) and start from a fresh plugin registry; return the home."""
    home = tmp_path / "home"
    for sub in ("config", "data", "cache", "work"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    for name in LEAKY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name in backend_variables():
        monkeypatch.delenv(name, raising=False)
    for name in [name for name in os.environ if name.startswith("LLMSWITCH_PROFILE")]:
        monkeypatch.delenv(name)  # LLMSWITCH_PROFILE, LLMSWITCH_PROFILES, LLMSWITCH_PROFILE_<NAME>_<KEY>
    monkeypatch.setenv("LLMSWITCH_CONFIG", str(home / "config" / "config.toml"))
    monkeypatch.setenv("LLMSWITCH_DATA_DIR", str(home / "data"))
    # The embedded model is assembled once per machine, not once per test: keep the shared cache unless a
    # test asks for its own.
    if "LLMSWITCH_TEST_CACHE_DIR" in os.environ:
        monkeypatch.setenv("LLMSWITCH_CACHE_DIR", os.environ["LLMSWITCH_TEST_CACHE_DIR"])
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.chdir(home / "work")
    plugins.reset_registry()
    forget_secrets()  # a key one test resolved must not make redaction pass in the next
    forget_states()  # cooldowns and rate windows of one test must not hold back the next
    metrics.disable()  # `serve` turns metrics on process-wide: on, an async call is charged in a worker thread
    return home


@pytest.fixture(autouse=True)
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point every llmswitch path at a temp dir and run from an empty working directory (no stray .env)."""
    yield isolate(tmp_path, monkeypatch)
    flush_rows()  # the test's calls' ledger rows go to its own data dir, before that is removed
    plugins.reset_registry()
    forget_secrets()
    forget_states()
    metrics.disable()


@pytest.fixture
def config_file(hermetic: Path) -> Path:
    """The test's own config file (not created: write profiles into it)."""
    return hermetic / "config" / "config.toml"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real ``redis-server`` of the test's own on 127.0.0.1 (``.url``), stopped after the test.

    Skips when redis-server is not installed (a failure in CI, see tests/conftest.py).
    """
    if redis_server_binary() is None:
        pytest.skip(f"redis-server is not installed: {INSTALL_HINT}")
    with RedisServer(tmp_path / "redis") as server:
        yield server
