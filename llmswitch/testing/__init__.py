"""Test helpers for llmswitch and its plugins, installed with the package.

- :mod:`llmswitch.testing.server`: a threaded HTTP/1.1 server on 127.0.0.1 to subclass with your
  backend's protocol (real sockets, failure scenarios, disconnect detection).
- :mod:`llmswitch.testing.fixtures`: a pytest plugin with the ``hermetic`` fixture (own config, data and
  cache dirs per test, no real keys or proxies) and ``config_file``. In a plugin's ``conftest.py``:
  ``pytest_plugins = ["llmswitch.testing.fixtures"]``.
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
