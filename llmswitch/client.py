"""The library API: pick a profile by name and talk to its model. The CLI and the TUI are thin layers on this.

    from llmswitch import Client
    client = Client()
    local = client.resolve("local")
    print(local.complete(local.request("Say hello")).text)
    for event in local.stream(local.request("Tell me more")):
        ...

Everything a plugin raises passes through here: ``LLMSwitchError`` subclasses unchanged, anything else
wrapped in a ``PluginError`` that names the plugin. Streams keep the text that arrived before a failure.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmswitch.errors import LLMSwitchError, MissingKeyError, PluginError
from llmswitch.plugins import BackendHandle, Registry, get_registry
from llmswitch.profiles import GENERATION_KEYS, Profile, ProfileStore, validate
from llmswitch.secrets import Secret, redact, resolve_setting
from llmswitch.types import (
    Check,
    CheckStatus,
    HealthReport,
    Message,
    Request,
    Response,
    StreamEnd,
    StreamError,
    StreamEvent,
    Target,
    TextDelta,
    TokenCount,
    Usage,
    UsageEvent,
)


class Client:
    """The profiles of one config file, and the installed plugins."""

    def __init__(self, config: str | os.PathLike[str] | None = None, *, api_key: str | None = None) -> None:
        self.store = ProfileStore.load(config)
        self.api_key = api_key

    @property
    def registry(self) -> Registry:
        return get_registry()

    def profile(self, name: str | None = None) -> Profile:
        return self.store.get(name)

    def resolve(
        self,
        name: str | None = None,
        *,
        model: str | None = None,
        settings: Mapping[str, Any] | None = None,
        api_key: str | None = None,
    ) -> ResolvedProfile:
        """Validate a profile against its backend and resolve its key and URL, ready to call."""
        profile = self.store.get(name)
        if settings:
            profile = Profile(profile.name, {**profile.values, **settings}, profile.source)
        handle = self.registry.backend(profile.backend)
        checked = validate(profile, handle.info)
        target = build_target(profile, handle, checked, model=model, api_key=api_key or self.api_key)
        return ResolvedProfile(profile=profile, handle=handle, settings=checked, target=target)


def build_target(
    profile: Profile,
    handle: BackendHandle,
    settings: Mapping[str, Any],
    *,
    model: str | None = None,
    api_key: str | None = None,
) -> Target:
    """Fill in option defaults and resolve the base URL and the key, the same way for every backend."""
    info = handle.info
    options = {spec.name: settings.get(spec.name, spec.default) for spec in info.options}
    notes: list[str] = []

    base_url_explicit = settings.get("base_url")
    resolved_url = resolve_setting(base_url_explicit, "profile", info.base_url_env)
    base_url = resolved_url.value if resolved_url else info.default_base_url
    custom_url = bool(base_url_explicit) and base_url_explicit != info.default_base_url

    key: Secret | None = None
    variable = settings.get("api_key_env") or info.key_env
    if info.key_env or "api_key" in options:
        explicit = api_key or settings.get("api_key")
        explicit_source = "flag" if api_key else "profile"
        names_its_variable = "api_key_env" in settings
        if custom_url and not explicit and not names_its_variable:
            # A key meant for the provider must not be handed to some other server by accident.
            if variable and os.environ.get(variable):
                notes.append(f"{variable} is not sent to the custom base_url; set api_key_env to send a key")
            variable = None
        found = resolve_setting(explicit, explicit_source, variable)
        if found:
            key = Secret(found.value, found.source)
    return Target(
        profile=profile.name,
        backend=info.name,
        model=model or settings.get("model") or profile.model or info.default_model or "",  # a preset may name it
        options=options,
        api_key=key,
        base_url=base_url,
        info=info,
        key_variable=variable,
        notes=tuple(notes),
    )


def key_is_required(target: Target) -> bool:
    """Keys are required by hosted APIs; a custom (local) server that ignores keys works without one."""
    info = target.info
    if info is None or not info.key_env or not info.key_required:
        return False
    return not target.base_url or target.base_url == info.default_base_url or bool(
        target.options.get("api_key_env")
    )


@dataclass
class ResolvedProfile:
    """A validated profile bound to its backend's implementation."""

    profile: Profile
    handle: BackendHandle
    settings: Mapping[str, Any]
    target: Target

    @property
    def name(self) -> str:
        return self.profile.name

    def request(
        self,
        prompt_or_messages: str | Sequence[Message],
        *,
        system: str | None = None,
        **overrides: Any,
    ) -> Request:
        """A Request with the profile's generation defaults, overridden by ``overrides`` (None = keep)."""
        if isinstance(prompt_or_messages, str):
            messages: tuple[Message, ...] = (Message("user", prompt_or_messages),)
        else:
            messages = tuple(prompt_or_messages)
        values: dict[str, Any] = {key: self.settings.get(key) for key in GENERATION_KEYS}
        extras = {spec.name: self.settings[spec.name] for spec in self.handle.info.generation_extras
                  if spec.name in self.settings}
        for key, value in overrides.items():
            if value is None:
                continue
            if key in GENERATION_KEYS:
                values[key] = value
            else:
                extras[key] = value
        if system is not None:
            values["system"] = system
        stop = values.pop("stop") or ()
        return Request(messages=messages, stop=tuple(stop), extras=extras, **values)

    # ---- calls -----------------------------------------------------------------------------------

    def _require_key(self) -> None:
        if self.target.api_key is None and key_is_required(self.target):
            raise MissingKeyError(self.name, self.target.key_variable or "the API key variable")

    def _call(self, hook: str, *args: Any) -> Any:
        function = self.handle.hooks[hook]
        try:
            return function(*args)
        except LLMSwitchError:
            raise
        except Exception as exc:
            raise plugin_failure(self.handle, hook, exc) from exc

    def complete(self, request: Request) -> Response:
        self._require_key()
        started = time.perf_counter()
        if "complete" not in self.handle.hooks:
            stream = self.stream(request)
            for event in stream:
                if isinstance(event, StreamError):
                    raise event.error
            return stream.response()
        response: Response = self._call("complete", self.target, request)
        if response.latency_s is None:
            response = Response(response.text, response.finish_reason, response.usage,
                                response.model or self.target.model, time.perf_counter() - started)
        return response

    def stream(self, request: Request) -> StreamResult:
        """Start streaming. Iterate the result for events; it keeps the text, usage and timing."""
        self._require_key()
        if "stream" in self.handle.hooks:
            source: Iterable[StreamEvent] = self._call("stream", self.target, request)
        elif "complete" in self.handle.hooks:
            source = _complete_as_stream(self, request)
        else:
            raise PluginError(f"plugin {self.handle.plugin.name} implements neither stream nor complete",
                              plugin=self.handle.plugin.name)
        return StreamResult(source, self)

    def count_tokens(self, request: Request) -> TokenCount:
        if "count_tokens" not in self.handle.hooks:
            return estimate_tokens(request)
        return self._call("count_tokens", self.target, request)  # type: ignore[no-any-return]

    def health(self, timeout: float = 10.0, offline: bool = False) -> HealthReport:
        if "health" not in self.handle.hooks:
            return HealthReport.from_checks([
                Check("health", CheckStatus.WARN, f"plugin {self.handle.plugin.name} has no health check")
            ])
        return self._call("health", self.target, timeout, offline)  # type: ignore[no-any-return]


def plugin_failure(handle: BackendHandle, hook: str, exc: BaseException) -> PluginError:
    plugin = handle.plugin
    detail = redact(f"{type(exc).__name__}: {exc}")
    return PluginError(
        f"plugin {plugin.name} raised an unexpected error in {hook}: {detail}",
        plugin=plugin.name,
        remedy=f"this is a bug in {plugin.distribution or plugin.name}; run with LLMSWITCH_DEBUG=1 for the "
        "traceback and report it",
    )


def _complete_as_stream(resolved: ResolvedProfile, request: Request) -> Iterator[StreamEvent]:
    response = resolved.complete(request)
    yield TextDelta(response.text)
    yield UsageEvent(response.usage)
    yield StreamEnd(response.finish_reason, response.model)


def estimate_tokens(request: Request) -> TokenCount:
    """A backend-neutral estimate: about four characters a token, plus a few per message."""
    chars = sum(len(message.content) for message in request.messages) + len(request.system or "")
    return TokenCount(n=max(1, round(chars / 4)) + 4 * len(request.messages), exact=False, method="chars/4")


@dataclass
class StreamResult:
    """Iterate for events. Whatever happens, ``text`` holds what arrived, and a failure ends the stream
    with one ``StreamError`` event instead of an exception, so a renderer never loses text."""

    source: Iterable[StreamEvent]
    resolved: ResolvedProfile
    parts: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    model: str | None = None
    error: LLMSwitchError | None = None
    interrupted: bool = False
    started: float = field(default_factory=time.perf_counter)
    first_token_s: float | None = None
    latency_s: float | None = None

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def __iter__(self) -> Iterator[StreamEvent]:
        parts = self.parts
        try:
            for event in self.source:
                kind = type(event)
                if kind is TextDelta:
                    if self.first_token_s is None:
                        self.first_token_s = time.perf_counter() - self.started
                    parts.append(event.text)  # type: ignore[union-attr]
                elif kind is UsageEvent:
                    self.usage = event.usage  # type: ignore[union-attr]
                elif kind is StreamEnd:
                    self.finish_reason = event.finish_reason  # type: ignore[union-attr]
                    self.model = event.model  # type: ignore[union-attr]
                yield event
        except LLMSwitchError as exc:
            self.error = exc
            yield StreamError(exc, self.text)
        except (KeyboardInterrupt, GeneratorExit):
            self.interrupted = True
            raise
        except Exception as exc:
            self.error = plugin_failure(self.resolved.handle, "stream", exc)
            yield StreamError(self.error, self.text)
        finally:
            self.latency_s = time.perf_counter() - self.started
            self.close()

    def close(self) -> None:
        close = getattr(self.source, "close", None)
        if close is not None:
            try:
                close()
            except Exception:  # a plugin's cleanup failing must not hide the answer
                pass

    def response(self) -> Response:
        return Response(
            text=self.text,
            finish_reason=self.finish_reason or ("interrupted" if self.interrupted else None),
            usage=self.usage,
            model=self.model or self.resolved.target.model,
            latency_s=self.latency_s,
        )
