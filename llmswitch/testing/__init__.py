"""Test helpers for llmswitch and its plugins, installed with the package.

- :mod:`llmswitch.testing.server`: a threaded HTTP/1.1 server on 127.0.0.1 to subclass with your
  backend's protocol (real sockets, failure scenarios, disconnect detection).
- :mod:`llmswitch.testing.fixtures`: a pytest plugin with the ``hermetic`` fixture (own config, data and
  cache dirs per test, no real keys or proxies) and ``config_file``. In a plugin's ``conftest.py``:
  ``pytest_plugins = ["llmswitch.testing.fixtures"]``.
- :mod:`llmswitch.testing.conformance`: the plugin contract as a test class to subclass
  (``BackendContract``, ``HTTPBackendContract``).
- :mod:`llmswitch.testing.faults`: a fault proxy to put in front of any protocol server (401, 429, a reset, a
  cut-off, garbage, silence, ...); :mod:`llmswitch.testing.openai_server`: an OpenAI-style server.
- :func:`use_plugin`: register a plugin object for the duration of a ``with`` block.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def use_plugin(plugin: object, name: str) -> Iterator[None]:
    """Register ``plugin`` (a module or an object with ``@hookimpl`` methods) until the block ends."""
    from llmswitch.plugins import register_plugin, unregister_plugin

    register_plugin(plugin, name)
    try:
        yield
    finally:
        unregister_plugin(name)
