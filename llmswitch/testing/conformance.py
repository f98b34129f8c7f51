"""The contract every llmswitch backend meets, as a test class a plugin subclasses in its own tests.

    import llmswitch_mine
    from llmswitch.testing.conformance import BackendContract, HTTPBackendContract

    class TestMineContract(HTTPBackendContract):
        plugin = llmswitch_mine                 # what the entry point loads
        backend = "mine"

        def server(self):                       # your protocol server, not yet started
            return my_protocol_server()

        def profile(self, url):                 # the profile's keys; url is the fault proxy in front of it
            return {"base_url": f"{url}/v1", "model": "test-model"}

pytest collects every ``test_contract_*`` method of the class. What they check (in-process backends use
:class:`BackendContract`, which skips only the checks that need a server):

- the plugin registers against the hook specs, its entry point loads it, and ``llmswitch_backends`` (run in a
  fresh process with the network blocked) imports nothing outside the standard library, llmswitch, pluggy and
  the plugin's own package;
- ``stream``/``astream`` yield text deltas, then at most one usage event, then the end (nothing after it), and
  ``complete``/``acomplete`` return text;
- closing a stream early runs its clean-up: the next call still answers, and a server sees the disconnect;
- every failure the fault proxy (:mod:`llmswitch.testing.faults`) produces is an error of llmswitch's tree
  with a remedy (401/403 an ``AuthError``, 429 a ``RateLimitError`` with ``retry_after``, a refused
  connection an ``UnreachableError``, silence a ``BackendTimeoutError``);
- the key never appears in a message, a remedy or a health report, even when the server quotes it back;
- a setting the backend cannot honour is refused (an unknown extra, always; over HTTP, every generation
  setting either reaches the request body or is refused before anything is sent);
- ``count_tokens`` says honestly whether it is exact (an exact count equals the input tokens the backend
  then reports, for a backend whose usage is its own) and how it counted;
- ``health(offline=True)`` opens no socket: sockets are blocked while it runs, and any attempt fails the test.

Helpers for a plugin's other tests: :func:`sockets_blocked` and :func:`collect` (any call hook, sync or async,
to events). The contract registers ``plugin`` by itself in a registry of its own (``LLMSWITCH_PLUGINS`` set
empty), so it needs no conftest; it gives every test its own config, data and cache directories.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from llmswitch.errors import (
    AuthError,
    BackendError,
    BackendTimeoutError,
    ConfigError,
    LLMSwitchError,
    RateLimitError,
    UnreachableError,
    UnsupportedOptionError,
)
from llmswitch.testing.faults import FAULTS, RETRY_AFTER_S, fault_proxy
from llmswitch.testing.server import LocalServer, refused_port
from llmswitch.types import (
    HealthReport,
    Request,
    Response,
    StreamEnd,
    StreamEvent,
    TextDelta,
    TokenCount,
    UsageEvent,
)

# Shaped like a real key (so every redaction rule applies to it) and unique (so a leak is unmistakable).
CONTRACT_KEY = "sk-contract-7f3a9c2e5b1d4a6f8e0c2b4d6f8a0c1e"
PROFILE = "contract"
CALL_HOOKS = ("stream", "astream", "complete", "acomplete")  # a plugin needs one of these
STREAM_HOOKS = ("stream", "astream", "astream_batches")  # astream_batches: optional, beside astream
UNKNOWN_EXTRA = "contract_unknown_setting"
# Values no backend would pick by itself, so finding one in a request body means it was sent.
SETTING_PROBES: dict[str, Any] = {"temperature": 0.37, "top_p": 0.83, "top_k": 17, "max_tokens": 93,
                                  "stop": ("CONTRACTSTOP",), "seed": 4242}
EXPECTED_ERRORS: dict[str, type[LLMSwitchError]] = {"status_401": AuthError, "status_403": AuthError,
                                                    "status_429": RateLimitError, "refused": UnreachableError,
                                                    "stall": BackendTimeoutError}
STALL_TIMEOUT_S = 0.5
# What discovery may import besides the standard library, llmswitch and the plugin's own package.
DISCOVERY_BASELINE = ("pluggy",)


# ---- helpers for any plugin test ----------------------------------------------------------------------------


@contextmanager
def sockets_blocked() -> Iterator[list[str]]:
    """No new socket and no name lookup while the block runs: each attempt fails with ``OSError`` and is
    listed in the yielded list (so a plugin that catches the error is caught too). Sockets made from an
    existing descriptor (``accept``, ``socketpair``, which event loops use) are allowed."""
    attempts: list[str] = []
    original_init = socket.socket.__init__
    original_getaddrinfo = socket.getaddrinfo

    def guarded_init(self: socket.socket, family: int = -1, type: int = -1, proto: int = -1,
                     fileno: int | None = None) -> None:
        if fileno is None:
            attempts.append(f"socket(family={family}, type={type})")
            raise OSError("llmswitch.testing: no socket may be opened here (sockets are blocked)")
        original_init(self, family, type, proto, fileno)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        attempts.append(f"getaddrinfo({host!r})")
        raise OSError("llmswitch.testing: no name may be looked up here (sockets are blocked)")

    socket.socket.__init__ = guarded_init  # type: ignore[method-assign]
    socket.getaddrinfo = guarded_getaddrinfo
    try:
        yield attempts
    finally:
        socket.socket.__init__ = original_init  # type: ignore[method-assign]
        socket.getaddrinfo = original_getaddrinfo


def collect(hooks: Mapping[str, Any], hook: str, target: Any, request: Request) -> list[StreamEvent]:
    """Run one call hook to the end and return its events (a whole answer as its text, then the end)."""
    function = hooks[hook]
    if hook == "stream":
        return list(function(target, request))
    if hook == "astream":
        async def drain() -> list[StreamEvent]:
            return [event async for event in function(target, request)]
        return asyncio.run(drain())
    if hook == "astream_batches":
        async def drain_lists() -> list[StreamEvent]:
            lists = [list(batch) async for batch in function(target, request)]
            assert all(lists), "astream_batches yielded an empty list"
            return [event for batch in lists for event in batch]
        return asyncio.run(drain_lists())
    response: Response = function(target, request) if hook == "complete" else asyncio.run(function(target, request))
    assert isinstance(response, Response), f"{hook} returned {type(response).__name__}, not Response"
    return [TextDelta(response.text), UsageEvent(response.usage), StreamEnd(response.finish_reason, response.model)]


def check_stream_order(events: list[StreamEvent], hook: str) -> None:
    """Text deltas, then at most one usage event, then the end, and nothing after it."""
    kinds = [type(event).__name__ for event in events]
    assert events and isinstance(events[-1], StreamEnd), f"{hook} did not end with StreamEnd: {kinds}"
    assert sum(isinstance(event, StreamEnd) for event in events) == 1, f"{hook}: more than one StreamEnd: {kinds}"
    usage_at = [index for index, event in enumerate(events) if isinstance(event, UsageEvent)]
    assert len(usage_at) <= 1, f"{hook} yielded {len(usage_at)} usage events: {kinds}"
    if usage_at:
        after = events[usage_at[0] + 1:-1]
        assert not after, f"{hook} yielded {[type(e).__name__ for e in after]} after its usage event: {kinds}"
    for event in events:
        assert isinstance(event, TextDelta | UsageEvent | StreamEnd), \
            f"{hook} yielded {type(event).__name__}; only TextDelta, UsageEvent and StreamEnd are allowed"
    assert any(isinstance(e, TextDelta) and e.text for e in events), f"{hook} yielded no text: {kinds}"


def strings_in(value: Any) -> Iterator[str]:
    """Every string an error, a report or a body holds, however deep."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield str(key)
            yield from strings_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings_in(item)
    elif isinstance(value, HealthReport):
        for check in value.checks:
            yield from strings_in((check.name, check.detail, check.remedy or ""))
    elif isinstance(value, BaseException):
        yield str(value)
        yield repr(value)
        yield from strings_in([arg for arg in value.args if isinstance(arg, str)])
        yield from strings_in({k: v for k, v in vars(value).items() if isinstance(v, str | Mapping | list | tuple)})
    elif value is not None:
        yield str(value)


def assert_no_key(value: Any, where: str) -> None:
    for text in strings_in(value):
        assert CONTRACT_KEY not in text, f"the key appears in {where}: {text!r}"
        assert CONTRACT_KEY[6:] not in text, f"most of the key appears in {where}: {text!r}"


# ---- the contract --------------------------------------------------------------------------------------------


class BackendContract:
    """The contract for any backend; subclass it as ``TestXxxContract`` and set ``plugin`` and ``backend``."""

    plugin: Any  # the module (or object) the entry point loads
    backend: str  # the backend name it declares
    entry_point: str | None = None  # its name in the ``llmswitch`` group; None: the same as ``backend``
    prompt = "Say hello in a few words."
    # Generation settings for every call the contract makes (a local model: a small max_tokens).
    settings: Mapping[str, Any] = {}
    # True when the usage a call reports is the backend's own count (a local model), so an exact
    # count_tokens can be checked against it; a test server's usage is made up.
    usage_is_measured = True
    discovery_may_import: tuple[str, ...] = ()

    def profile(self, url: str | None) -> dict[str, Any]:
        """The contract profile's keys besides ``backend`` (``url``: the server to use, for HTTP backends)."""
        return {}

    # ---- fixtures --------------------------------------------------------------------------------

    @pytest.fixture(autouse=True)
    def contract_home(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
        from llmswitch.secrets import forget_secrets
        from llmswitch.testing import use_plugin
        from llmswitch.testing.fixtures import isolate

        home = isolate(tmp_path, monkeypatch)
        monkeypatch.setenv("LLMSWITCH_PLUGINS", "")  # only the plugin under test, whatever else is installed
        with use_plugin(self.plugin, f"{self.backend} (under contract)"):
            yield home
        forget_secrets()

    @pytest.fixture
    def server_url(self) -> Iterator[str | None]:
        yield None

    @pytest.fixture
    def resolved(self, contract_home: Path, server_url: str | None) -> Any:
        import tomlkit

        from llmswitch.client import Client

        config = contract_home / "config" / "contract.toml"
        values = {"backend": self.backend, **self.profile(server_url)}
        config.write_text(tomlkit.dumps({"profiles": {PROFILE: values}}), encoding="utf-8")
        return Client(config).resolve(PROFILE, api_key=CONTRACT_KEY)

    def request(self, resolved: Any, **overrides: Any) -> Request:
        request: Request = resolved.request(self.prompt, **{**self.settings, **overrides})
        return request

    def call_hooks(self, resolved: Any) -> list[str]:
        hooks = [hook for hook in CALL_HOOKS if hook in resolved.handle.hooks]
        assert hooks, "the plugin implements none of stream, astream, complete, acomplete"
        return hooks + [hook for hook in ("astream_batches",) if hook in resolved.handle.hooks]

    # ---- registration and discovery -------------------------------------------------------------

    def test_contract_hooks_match_the_specs(self) -> None:
        from llmswitch.plugins import PluginRecord, Registry

        registry = Registry()
        record = PluginRecord(name="under contract")
        registry.add(self.plugin, record)
        assert record.loaded, f"the plugin does not load: {record.error}"
        assert self.backend in record.backends, f"it declares {record.backends}, not {self.backend!r}"
        assert set(record.hooks) & set(CALL_HOOKS), "it implements none of stream, astream, complete, acomplete"

    def test_contract_entry_point_loads_the_plugin(self) -> None:
        from importlib.metadata import entry_points

        name = self.entry_point or self.backend
        found = [ep for ep in entry_points(group="llmswitch") if ep.name == name]
        assert found, f"no entry point {name!r} in the 'llmswitch' group: is the distribution installed?"
        assert found[0].load() is self.plugin

    def test_contract_discovery_imports_no_sdk_and_opens_no_socket(self) -> None:
        name = self.entry_point or self.backend
        probe = DISCOVERY_PROBE.format(name=name)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
        assert result.returncode == 0, f"discovery failed in a fresh process:\n{result.stderr}"
        found = json.loads(result.stdout.splitlines()[-1])
        own = type(self.plugin).__module__ if not hasattr(self.plugin, "__name__") else self.plugin.__name__
        allowed = {"llmswitch", own.split(".")[0], *DISCOVERY_BASELINE, *self.discovery_may_import}
        foreign = [module for module in found["imported"] if module not in allowed]
        assert not foreign, f"llmswitch_backends() imported {foreign}: import them in the hook that uses them"
        assert not found["sockets"], f"llmswitch_backends() reached for the network: {found['sockets']}"

    # ---- answers ----------------------------------------------------------------------------------

    def test_contract_stream_yields_deltas_then_usage_then_the_end(self, resolved: Any) -> None:
        for hook in self.call_hooks(resolved):
            events = collect(resolved.handle.hooks, hook, resolved.target, self.request(resolved))
            check_stream_order(events, hook)

    def test_contract_closing_a_stream_early_runs_its_cleanup(self, resolved: Any) -> None:
        hooks = resolved.handle.hooks
        streams = [hook for hook in STREAM_HOOKS if hook in hooks]
        for hook in streams:
            self.close_after_first_delta(hooks, hook, resolved)
            # Whatever the stream held (a connection, a lock on the model) was released: the next call answers.
            check_stream_order(collect(hooks, hook, resolved.target, self.request(resolved)), hook)

    def close_after_first_delta(self, hooks: Mapping[str, Any], hook: str, resolved: Any) -> None:
        request = self.request(resolved)
        if hook == "stream":
            events = hooks[hook](resolved.target, request)
            assert hasattr(events, "close"), "stream must return a generator (llmswitch stops it with close())"
            assert isinstance(next(e for e in events if isinstance(e, TextDelta)), TextDelta)
            events.close()
            return

        async def first_then_close() -> None:
            events: AsyncIterator[Any] = hooks[hook](resolved.target, request)
            assert hasattr(events, "aclose"), f"{hook} must return an async generator (stopped with aclose())"
            async for event in events:
                if any(isinstance(each, TextDelta) for each in (event if hook == "astream_batches" else [event])):
                    break
            await events.aclose()  # type: ignore[attr-defined]

        asyncio.run(first_then_close())

    # ---- settings ---------------------------------------------------------------------------------

    def test_contract_unknown_extra_is_refused_not_dropped(self, resolved: Any) -> None:
        for hook in self.call_hooks(resolved):
            request = replace(self.request(resolved), extras={UNKNOWN_EXTRA: 1})
            with pytest.raises(ConfigError) as raised:
                collect(resolved.handle.hooks, hook, resolved.target, request)
            assert UNKNOWN_EXTRA in str(raised.value), f"{hook}: the refusal does not name the setting"

    def test_contract_every_setting_is_honoured_or_refused(self, resolved: Any) -> None:
        hooks = resolved.handle.hooks
        for name, value in SETTING_PROBES.items():
            request = self.request(resolved, **{name: value})
            for hook in self.call_hooks(resolved):
                try:
                    collect(hooks, hook, resolved.target, request)
                except UnsupportedOptionError as refused:
                    assert name in str(refused) or name in (refused.remedy or ""), \
                        f"{hook}: refusing {name} without naming it: {refused}"
                    continue
                self.check_sent(name, value, hook)

    def check_sent(self, name: str, value: Any, hook: str) -> None:
        """Over HTTP: the value is in the request body (see :class:`HTTPBackendContract`)."""

    # ---- counting and health ----------------------------------------------------------------------

    def test_contract_count_tokens_is_honest(self, resolved: Any) -> None:
        hooks = resolved.handle.hooks
        if "count_tokens" not in hooks:
            assert resolved.count_tokens(self.request(resolved)).exact is False  # the core's estimate
            return
        request = self.request(resolved)
        count = hooks["count_tokens"](resolved.target, request)
        assert isinstance(count, TokenCount), f"count_tokens returned {type(count).__name__}"
        assert isinstance(count.n, int) and count.n > 0 and isinstance(count.exact, bool)
        assert count.method, "count_tokens must say how it counted (method)"
        if count.exact and self.usage_is_measured:
            hook = self.call_hooks(resolved)[0]
            usage = next(e.usage for e in collect(hooks, hook, resolved.target, request) if isinstance(e, UsageEvent))
            assert usage.input_tokens == count.n, (
                f"count_tokens says exactly {count.n} ({count.method}); the call then used {usage.input_tokens}")

    def test_contract_offline_health_opens_no_socket(self, resolved: Any) -> None:
        hooks = resolved.handle.hooks
        for hook in ("health", "ahealth"):
            if hook not in hooks:
                continue
            with sockets_blocked() as attempts:
                if hook == "health":
                    report = hooks[hook](resolved.target, 2.0, True)
                else:
                    report = asyncio.run(hooks[hook](resolved.target, 2.0, True))
            assert not attempts, f"{hook}(offline=True) reached for the network: {attempts}"
            assert isinstance(report, HealthReport), f"{hook} returned {type(report).__name__}"
            assert_no_key(report, f"{hook}(offline=True)'s report")

    def test_contract_no_key_in_answers_or_health(self, resolved: Any) -> None:
        hooks = resolved.handle.hooks
        if "health" in hooks:
            assert_no_key(hooks["health"](resolved.target, 5.0, False), "health's report")
        for hook in self.call_hooks(resolved):
            assert_no_key(collect(hooks, hook, resolved.target, self.request(resolved)), f"{hook}'s answer")


class HTTPBackendContract(BackendContract):
    """The contract for a backend that talks to a server: :meth:`server` is your protocol server, and a
    fault proxy stands between it and the plugin. The backend must declare a ``timeout`` option (seconds)."""

    usage_is_measured = False  # a test server's counts are made up

    def server(self) -> LocalServer:
        """Your protocol server, not started (a :class:`~llmswitch.testing.server.LocalServer`)."""
        raise NotImplementedError("an HTTPBackendContract names its protocol server in server()")

    def profile(self, url: str | None) -> dict[str, Any]:
        return {"base_url": url}

    @pytest.fixture
    def upstream(self) -> Iterator[LocalServer]:
        with self.server() as running:
            yield running

    @pytest.fixture
    def proxy(self, upstream: LocalServer) -> Iterator[LocalServer]:
        with fault_proxy(upstream.url) as running:
            running.state.options["key"] = CONTRACT_KEY
            yield running

    @pytest.fixture
    def server_url(self, proxy: LocalServer) -> Iterator[str | None]:
        yield proxy.url

    @pytest.fixture(autouse=True)
    def remember_proxy(self, proxy: LocalServer) -> None:
        self.sent_to = proxy

    # ---- closing -------------------------------------------------------------------------------

    def test_contract_closing_a_stream_early_runs_its_cleanup(self, resolved: Any) -> None:
        hooks = resolved.handle.hooks
        for hook in [hook for hook in STREAM_HOOKS if hook in hooks]:
            self.sent_to.state.disconnected.clear()
            self.sent_to.state.options["interval"] = 0.1  # paced, so the answer is still going when it is closed
            self.close_after_first_delta(hooks, hook, resolved)
            assert self.sent_to.state.disconnected.wait(5), f"{hook}: closed early, the connection stayed open"
            self.sent_to.state.options["interval"] = 0
            check_stream_order(collect(hooks, hook, resolved.target, self.request(resolved)), hook)

    # ---- settings --------------------------------------------------------------------------------

    def test_contract_unknown_extra_is_refused_not_dropped(self, resolved: Any) -> None:
        super().test_contract_unknown_extra_is_refused_not_dropped(resolved)
        assert not self.sent_to.state.requests, "a refused setting must be refused before anything is sent"

    def check_sent(self, name: str, value: Any, hook: str) -> None:
        requests = self.sent_to.state.requests
        assert requests, f"{hook} answered without a request"
        wanted = value[0] if isinstance(value, tuple) else value
        sent = [item for item in _values_in(requests[-1].body)]
        assert wanted in sent, f"{hook}: {name}={wanted!r} is in neither the request body nor a refusal"

    # ---- failures ----------------------------------------------------------------------------------

    def test_contract_declares_a_timeout(self, resolved: Any) -> None:
        assert resolved.handle.info.option("timeout") is not None, \
            "an HTTP backend declares a `timeout` option (seconds to wait for the server)"

    @pytest.mark.parametrize("fault", [*FAULTS, "refused"])
    def test_contract_failures_are_errors_of_the_tree_with_a_remedy(self, fault: str, contract_home: Path,
                                                                      proxy: LocalServer) -> None:
        import tomlkit

        from llmswitch.client import Client

        url = f"http://127.0.0.1:{refused_port()}" if fault == "refused" else proxy.url
        values = {"backend": self.backend, **self.profile(url)}
        if fault == "stall":
            values["timeout"] = STALL_TIMEOUT_S
            proxy.state.options["delay"] = STALL_TIMEOUT_S * 6
        config = contract_home / "config" / f"{fault}.toml"
        config.write_text(tomlkit.dumps({"profiles": {PROFILE: values}}), encoding="utf-8")
        resolved = Client(config).resolve(PROFILE, api_key=CONTRACT_KEY)
        proxy.state.scenario = fault
        for hook in self.call_hooks(resolved):
            with pytest.raises(LLMSwitchError) as raised:
                collect(resolved.handle.hooks, hook, resolved.target, self.request(resolved))
            error = raised.value
            assert isinstance(error, BackendError), f"{hook} under {fault}: {type(error).__name__}: {error}"
            assert error.remedy, f"{hook} under {fault}: no remedy for {type(error).__name__}: {error}"
            assert_no_key(error, f"the error {hook} raised under {fault}")
            expected = EXPECTED_ERRORS.get(fault)
            if expected is not None:
                assert isinstance(error, expected), \
                    f"{hook} under {fault}: {type(error).__name__}, not {expected.__name__}: {error}"
            if fault == "status_429":
                assert isinstance(error, RateLimitError) and error.retry_after == RETRY_AFTER_S, \
                    f"{hook}: Retry-After {RETRY_AFTER_S} was not kept"
        if "health" in resolved.handle.hooks and fault in ("status_401", "refused", "status_500"):
            report = resolved.handle.hooks["health"](resolved.target, 5.0, False)
            assert report.status.value != "ok", f"health says ok while the server answers {fault}"
            assert_no_key(report, f"health's report under {fault}")


def _values_in(body: Any) -> Iterator[Any]:
    """Every scalar a JSON body holds, however deep (a setting may be nested, as Ollama's ``options``)."""
    if isinstance(body, Mapping):
        for item in body.values():
            yield from _values_in(item)
    elif isinstance(body, list):
        for item in body:
            yield from _values_in(item)
    else:
        yield body


# Run in a fresh process: load the entry point and call discovery with the network blocked, then list the
# top-level modules that appeared (the standard library's are left out).
DISCOVERY_PROBE = """
import json, socket, sys
attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args[:2]))
    raise OSError("the network is blocked during discovery")
socket.socket.connect = refuse
socket.getaddrinfo = refuse
from importlib.metadata import entry_points
import llmswitch, llmswitch.types, llmswitch.hookspecs, llmswitch.errors
before = set(sys.modules)
plugin = next(ep for ep in entry_points(group="llmswitch") if ep.name == {name!r}).load()
plugin.llmswitch_backends()
new = {{name.split(".")[0] for name in set(sys.modules) - before}}
imported = sorted(name for name in new if name not in sys.stdlib_module_names and not name.startswith("_"))
print(json.dumps({{"imported": imported, "sockets": attempts}}))
"""
