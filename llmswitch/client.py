"""The library API: pick a profile by name and talk to its model. The CLI and the TUI are thin layers on this.

    from llmswitch import Client
    client = Client()
    local = client.resolve("local")
    print(local.complete(local.request("Say hello")).text)
    for event in local.stream(local.request("Tell me more")):
        ...

    from llmswitch import AsyncClient
    client = AsyncClient()
    local = client.resolve("local")
    answer = await local.acomplete(local.request("Say hello"))
    async for event in local.astream(local.request("Tell me more")):
        ...

Sync and async, one implementation of each behaviour. Everything a call guarantees lives in plain objects
that do no I/O, and each API is a thin loop over them:

- :class:`StreamState` is the bookkeeping of one answer (text so far, usage, finish reason, timing, the
  failure mapped to an error): :class:`StreamResult` drives it with ``for``, :class:`AsyncStreamResult` with
  ``async for``; neither holds any rule of its own.
- the key check, the hook choice and the error mapping (``_require_key``, ``plugin_failure``,
  ``_with_latency``) are shared by ``complete``/``acomplete``, ``stream``/``astream``, ``health``/``ahealth``.
- a plugin may implement sync hooks, async hooks or both; the missing form is bridged in
  :mod:`llmswitch.bridge` (a sync stream runs in a worker thread under the async API; async hooks run on one
  background loop under the sync API).

Every call, sync or async, streamed or whole, is checked against its budget before it is sent and charged to
the usage ledger when it ends, in one place for every face (:mod:`llmswitch.accounting`): ``stream``,
``answer_whole`` and ``complete`` run :meth:`ResolvedProfile.check_before_sending` at once, their async forms
in a worker thread when the iteration starts (a refusal is raised: nothing was sent); the result's
:meth:`StreamState.settle` (``asettle``) charges it once, from the ``finally`` of its iteration, whether it
answered, failed, or was cancelled with part of an answer. A face that needs context (an open ledger, a budget it
checked itself) passes :class:`llmswitch.accounting.Books` as ``books=``; it reads the cost from ``result.cost``.

The sync API starts no event loop and imports no asyncio, so the CLI pays nothing for the async one.
Everything a plugin raises passes through here: ``LLMSwitchError`` subclasses unchanged, anything else
wrapped in a ``PluginError`` that names the plugin. Streams keep the text that arrived before a failure.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from llmswitch.errors import BadResponseError, LLMSwitchError, MissingKeyError, PluginError, without_secrets
from llmswitch.key_policy import headers_withheld_note, key_withheld_reason, withhold_secret_headers
from llmswitch.plugins import BackendHandle, Registry, get_registry
from llmswitch.profiles import GENERATION_KEYS, Profile, ProfileStore, validate
from llmswitch.secrets import (
    Resolved,
    Secret,
    read_dotenv,
    redact,
    remember_profile_secrets,
    remember_secret,
    resolve_setting,
)
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
    estimate_tokens,
)

if TYPE_CHECKING:
    from llmswitch.accounting import Books, CallCost
    from llmswitch.batch import BatchItem, BatchResult
    from llmswitch.response_cache import CachePolicy
    from llmswitch.router.driver import AsyncOpener, Observer, Opener, RoutedCall
    from llmswitch.router.plan import Attempt
    from llmswitch.router.policy import RetryPolicy
    from llmswitch.router.state import RouterState
    from llmswitch.store.responses import StoredAnswer

    _Result = TypeVar("_Result", bound="StreamState")


class Client:
    """The profiles of one config file, and the installed plugins."""

    def __init__(self, config: str | os.PathLike[str] | None = None, *, api_key: str | None = None) -> None:
        self.store = ProfileStore.load(config)
        self.api_key = api_key
        # Told of every retry, fallback, cooldown and wait of every call (llmswitch.router.plan.RouterEvent):
        # the CLI prints them on stderr; the metrics count them when they are on (serve, LLMSWITCH_METRICS_FILE).
        from llmswitch.metrics import count_router_event

        self.observers: list[Observer] = [count_router_event]

    @property
    def router_state(self) -> RouterState:
        """Where cooldowns, in-flight counts, rate windows and spend live: ``[router] state`` in the config
        (this process by default, Redis when it names a Redis URL)."""
        from llmswitch.router.state import state_for

        section = self.store.document.get("router") or {}
        url = section.get("state") if isinstance(section, dict) else None
        return state_for(str(url) if url else None)

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
        """Validate a profile against its backend and resolve its key and URL, ready to call. A route
        (``route = "fallback"``...) resolves to a :class:`~llmswitch.router.resolved.ResolvedRoute` over its
        members: ``model`` and ``settings`` apply to every member (a member that cannot take one refuses it,
        named), except the route's own keys (retries, limits, generation defaults), which the route keeps."""
        profile = self.store.get(name)
        if "route" in profile.settings:
            return self._resolve_route(profile, model=model, settings=settings, api_key=api_key)
        if settings:
            profile = Profile(profile.name, {**profile.settings, **settings}, profile.source,
                              {**profile.origins, **dict.fromkeys(settings, "command line")})
        handle = self.registry.backend_of(profile)
        checked = validate(profile, handle.info)
        target = build_target(profile, handle, checked, model=model, api_key=api_key or self.api_key)
        return ResolvedProfile(profile=profile, handle=handle, settings=checked, target=target,
                               observers=self.observers, state=self.router_state)

    def _resolve_route(self, profile: Profile, *, model: str | None, settings: Mapping[str, Any] | None,
                       api_key: str | None) -> ResolvedProfile:
        from llmswitch.router.resolved import resolve_route
        from llmswitch.router.routes import check_routes, route_keys

        specs = check_routes(profile.name, self.store.lookup, self.store.names())
        own = route_keys()
        given = dict(settings or {})
        return resolve_route(self, profile, specs, model=model,
                             member_settings={k: v for k, v in given.items() if k not in own},
                             route_settings={k: v for k, v in given.items() if k in own}, api_key=api_key)


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
    remember_profile_secrets(settings, {spec.name for spec in info.options if spec.secret})

    dotenv = read_dotenv()
    resolved_url = resolve_setting(settings.get("base_url"), "profile", info.base_url_env, dotenv=dotenv)
    base_url = resolved_url.value if resolved_url else info.default_base_url
    # Where the URL came from decides which credentials may go to it (llmswitch.key_policy); the backend's
    # own URL, wherever it was written, is the provider's.
    url_source = resolved_url.source if resolved_url and not info.is_own_url(base_url) else None

    key: Secret | None = None
    withheld: str | None = None
    variable = settings.get("api_key_env") or info.key_env
    if info.key_env or "api_key" in options:
        explicit = api_key or settings.get("api_key")
        found = None
        if not explicit and variable and url_source is not None and url_source.startswith(".env:") \
                and dotenv.get(variable):
            found = Resolved(dotenv[variable], f".env:{variable}")  # the .env's own key goes with its own URL
        found = found or resolve_setting(explicit, "flag" if api_key else "profile", variable, dotenv=dotenv)
        if found:
            remember_secret(found.value)
            withheld = key_withheld_reason(found.source, base_url or "", url_source,
                                           names_variable="api_key_env" in settings, variable=variable)
            if withheld:
                notes.append(withheld)
            else:
                key = Secret(found.value, found.source)
    headers, withheld_headers = withhold_secret_headers(options.get("headers"), base_url, url_source)
    if withheld_headers:
        options["headers"] = headers
        notes.append(headers_withheld_note(withheld_headers, base_url or "", url_source))
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
        base_url_source=resolved_url.source if resolved_url else None,
        key_withheld=withheld,
    )



@dataclass
class ResolvedProfile:
    """A validated profile bound to its backend's implementation."""

    profile: Profile
    handle: BackendHandle
    settings: Mapping[str, Any]
    target: Target
    # The router's: who hears about retries and fallbacks (the CLI prints them; a gateway counts them), and
    # where cooldowns and limits live. Client.resolve fills both in.
    observers: list[Observer] = field(default_factory=list)
    state: RouterState | None = None

    @property
    def name(self) -> str:
        return self.profile.name

    @cached_property
    def policy(self) -> RetryPolicy:
        """How calls through this profile retry, wait and cool (see :mod:`llmswitch.router.policy`); read from
        the settings at the first call (they do not change once resolved)."""
        from llmswitch.router.policy import RetryPolicy

        return RetryPolicy.from_settings(self.settings)

    def leaves(self) -> list[ResolvedProfile]:
        """The profiles that answer: this one (a route lists its members, nested routes flattened)."""
        return [self]

    def routes_to(self, member: str) -> tuple[str, ...]:
        """The routes a call made on this profile goes through to reach ``member``, outermost first: none for a
        profile called directly (a route: itself, then each route nested in it on the way)."""
        return ()

    def routed_call(self, request: Request, hook: str) -> RoutedCall:
        """One call's plan: this profile alone, retried by its policy (a route plans over its members)."""
        from llmswitch.router.driver import RoutedCall
        from llmswitch.router.plan import JITTER, CallPlan
        from llmswitch.router.state import shared_local_state

        plan = CallPlan([self.name], self.policy, time.monotonic(), JITTER, cools=False)
        return RoutedCall(plan, {self.name: self}, lambda _member: request, self.state or shared_local_state(),
                          self.observers, hook, route=self.name)

    def check_budget(self, request: Request) -> None:
        """Refuse the call before anything is sent when it could pass the profile's budget (see
        :func:`llmswitch.accounting.check_budget`)."""
        from llmswitch.accounting import check_budget

        check_budget(self, request)

    def check_before_sending(self, request: Request) -> None:
        """The budget check every face runs before a call: the profile's (a route's: its own) budget, unless the
        response cache holds the answer. A hit costs $0, so a caller over budget is still served it."""
        from llmswitch.accounting import budgets_of

        if budgets_of(self.settings) and not self.answers_from_cache(request):
            self.check_budget(request)

    def answers_from_cache(self, request: Request) -> bool:
        """Whether the response cache holds this request's answer now (a look only: no hit is counted)."""
        if self._cache_policy(request) is None:
            return False
        from llmswitch.response_cache import holds

        return holds(self.cache_key(request))

    def worst_case_usd(self, request: Request) -> float | None:
        """The most this call could cost (its input counted, ``max_tokens`` or the model's most output), or
        None when the price is unknown: what a budget is checked against."""
        from llmswitch.accounting import estimate_cost

        return estimate_cost(self, request, for_budget=True).usd

    async def acheck_before_sending(self, request: Request) -> None:
        """:meth:`check_before_sending` in a worker thread (a count may ask the provider), when there is a
        budget to check."""
        from llmswitch.accounting import budgets_of

        if budgets_of(self.settings):
            import asyncio

            await asyncio.to_thread(self.check_before_sending, request)

    def _target_within(self, remaining_s: float | None) -> Target:
        """The target, its ``timeout`` cut to what is left of the call's deadline (when the backend has one)."""
        if remaining_s is None or "timeout" not in self.target.options:
            return self.target
        timeout = self.target.options.get("timeout")
        if timeout is not None and float(timeout) <= remaining_s:
            return self.target
        from dataclasses import replace

        return replace(self.target, options={**self.target.options, "timeout": max(remaining_s, 0.001)})

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
        extras = self._default_extras()
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

    def _default_extras(self) -> dict[str, Any]:
        """The backend's own generation settings the profile sets (``repeat_penalty``...), for each request."""
        return {spec.name: self.settings[spec.name] for spec in self.handle.info.generation_extras
                if spec.name in self.settings}

    # ---- calls: the rules both forms share ---------------------------------------------------------------

    def _require_key(self) -> None:
        if self.target.api_key is None and self.target.key_is_required:
            raise MissingKeyError(self.name, self.target.key_variable or "the API key variable")

    def _has(self, *hooks: str) -> bool:
        return any(hook in self.handle.hooks for hook in hooks)

    def _call(self, hook: str, *args: Any) -> Any:
        function = self.handle.hooks[hook]
        try:
            return function(*args)
        except LLMSwitchError as error:
            without_secrets(error)  # in place: a plugin may have quoted the key (its own, or a server's echo)
            raise
        except Exception as exc:
            raise plugin_failure(self.handle, hook, exc) from exc

    def _neither(self) -> PluginError:
        return PluginError(f"plugin {self.handle.plugin.name} implements neither stream nor complete",
                           plugin=self.handle.plugin.name)

    def _with_latency(self, response: Response, started: float) -> Response:
        """A whole answer, checked (no text is an error) and timed when the plugin did not time it."""
        if not response.text:
            raise empty_answer(self.target, response.finish_reason, response.usage)
        if response.latency_s is not None:
            return response
        return Response(response.text, response.finish_reason, response.usage,
                        response.model or self.target.model, time.perf_counter() - started)

    def _no_health(self) -> HealthReport:
        # Not a problem with the profile: nothing to degrade it for. Doctor shows it as "not checked".
        return HealthReport.from_checks([
            Check("health", CheckStatus.SKIP,
                  f"no health check: plugin {self.handle.plugin.name} does not implement the health hook")
        ])

    def _cache_policy(self, request: Request) -> CachePolicy | None:
        """The profile's cache policy when it caches this request (see :mod:`llmswitch.response_cache`)."""
        if self.settings.get("cache") is not True:  # the common case costs one lookup
            return None
        from llmswitch.response_cache import CachePolicy

        policy = CachePolicy.of(self.settings)
        return policy if policy is not None and policy.covers(request) else None

    def cache_identity(self) -> dict[str, Any]:
        """What decides this profile's answers besides the request (:func:`llmswitch.response_cache.identity_of`):
        two profiles with the same identity share cached answers."""
        from llmswitch.response_cache import identity_of

        return identity_of(self.target)

    def cache_key(self, request: Request) -> str:
        from llmswitch.response_cache import key_for

        return key_for(self.cache_identity(), request)

    def _cache_plan(self, request: Request) -> tuple[CachePolicy | None, str, StoredAnswer | None]:
        """The profile's cache policy for this request, its key and the answer it holds, if any. One rule for
        both forms and every hook: a hit never reaches the backend (nor needs its key); a miss is recorded as it
        streams by and stored if it finishes (:mod:`llmswitch.response_cache`)."""
        policy = self._cache_policy(request)
        key, found = "", None
        if policy is not None:
            from llmswitch.response_cache import lookup

            key = self.cache_key(request)
            found = lookup(key, self.target.profile)
        if found is None:
            self._require_key()
        return policy, key, found

    def _through_cache(self, request: Request, routed: Callable[[], StreamResult], books: Books | None) -> StreamResult:
        books = _books(books)
        if not books.checked:
            self.check_before_sending(request)
        policy, key, found = self._cache_plan(request)
        if found is not None:
            from llmswitch.response_cache import replay

            result = _replayed(StreamResult(iter(replay(found, self.target.model)), self, "cache"))
        else:
            result = routed()
            if policy is not None:
                from llmswitch.response_cache import Recorder, recording

                result.source = recording(result.source, Recorder(self.target, key, policy))
        result.books_for(self, request, books)
        return result

    def _athrough_cache(self, request: Request, routed: Callable[[], AsyncStreamResult],
                        books: Books | None) -> AsyncStreamResult:
        books = _books(books)
        policy, key, found = self._cache_plan(request)
        if found is not None:
            from llmswitch.response_cache import areplay, replay

            result = _replayed(AsyncStreamResult(areplay(replay(found, self.target.model)), self, "cache"))
        else:
            result = routed()
            if policy is not None:
                from llmswitch.response_cache import Recorder, arecording

                result.source = arecording(result.source, Recorder(self.target, key, policy))
        if not books.checked:
            from llmswitch.accounting import budgets_of

            if budgets_of(self.settings):  # run in a thread when the iteration starts (a count may ask the API)
                result.check = lambda: self.check_before_sending(request)
        result.books_for(self, request, books)
        return result

    # ---- sync -------------------------------------------------------------------------------------------

    def complete(self, request: Request, *, books: Books | None = None) -> Response:
        """The whole answer (the ``complete`` hook, else the stream collected), retried by the policy; a
        failure is raised. ``response.attempts`` lists every attempt. Checked and charged as :meth:`stream`."""
        return collect(self.answer_whole(request, books=books))

    def stream(self, request: Request, *, books: Books | None = None) -> StreamResult:
        """Start streaming. Iterate the result for events; it keeps the text, usage, timing and attempts.
        A cached answer is replayed without an attempt (see :meth:`_cache_plan`).

        The budget is checked now (:class:`~llmswitch.errors.BudgetExceededError`: nothing was sent); the call
        is charged to the usage ledger when its iteration ends, however it ends, its cost kept on
        ``result.cost``. ``books``: the context of a face (see :class:`llmswitch.accounting.Books`)."""
        return self._through_cache(request, lambda: self._routed(request, _stream_attempt, "stream"), books)

    def answer_whole(self, request: Request, *, books: Books | None = None) -> StreamResult:
        """Ask for the whole answer at once (the ``complete`` hook, as ``--no-stream`` does) and return it as a
        :class:`StreamResult`, so one code path keeps the text, usage, errors and accounting either way.

        A backend that implements only ``stream`` is streamed; its events are the same.
        """
        return self._through_cache(request, lambda: self._routed(request, _whole_attempt, "complete"), books)

    def _routed(self, request: Request, attempt: Opener, hook: str) -> StreamResult:
        from llmswitch.router.driver import open_first, run

        call = self.routed_call(request, hook)
        result = StreamResult((), self, hook=hook)
        result.source = run(call, result, attempt, open_first(call, attempt))
        return result

    def count_tokens(self, request: Request) -> TokenCount:
        if "count_tokens" not in self.handle.hooks:
            return estimate_tokens(request)
        return self._call("count_tokens", self.target, request)  # type: ignore[no-any-return]

    def batch_hook(self, hook: str, *args: Any) -> Any:
        """Call one of the plugin's batch hooks (``batch_line``, ``batch_submit``, ...: see
        :mod:`llmswitch.hookspecs`) with this profile's target; failures are mapped as every call's are."""
        self._require_key()
        return self._call(hook, self.target, *args)

    def first_use_notice(self) -> str | None:
        """The backend's notice for this profile (see ``BackendInfo.notice``) the first time in this data
        directory, else None. A notice that fails to build is dropped: it must never stop a chat."""
        notice = self.handle.info.notice
        if notice is None:
            return None
        try:
            text = notice(self.target)
        except Exception:
            return None
        if not text:
            return None
        from llmswitch.notices import first_time

        return text if first_time(f"{self.target.backend}:{text}") else None

    def health(self, timeout: float = 10.0, offline: bool = False) -> HealthReport:
        if self._has("health"):
            return self._call("health", self.target, timeout, offline)  # type: ignore[no-any-return]
        if self._has("ahealth"):
            from llmswitch.bridge import portal

            return portal.run(self._acall("ahealth", self.target, timeout, offline))
        return self._no_health()

    # ---- async: the same steps, awaited ------------------------------------------------------------------

    async def _acall(self, hook: str, *args: Any) -> Any:
        try:
            return await self._call(hook, *args)
        except LLMSwitchError as error:
            without_secrets(error)
            raise
        except Exception as exc:
            raise plugin_failure(self.handle, hook, exc) from exc

    async def acomplete(self, request: Request, *, books: Books | None = None) -> Response:
        """:meth:`complete`, awaited: the plugin's ``acomplete``, else its sync hook in a worker thread."""
        return await acollect(self.aanswer_whole(request, books=books))

    def astream(self, request: Request, *, books: Books | None = None) -> AsyncStreamResult:
        """:meth:`stream` for ``async for``. Cancelling the task that iterates it closes the connection.

        The budget is checked (in a worker thread) when the iteration starts, and a refusal is raised from the
        ``async for``, before anything is sent; the call is charged when the iteration ends (``finally``),
        cancelled or not, or at ``async with``'s exit (:meth:`StreamState.asettle`)."""
        return self._athrough_cache(request, lambda: self._arouted(request, _astream_attempt, "astream"), books)

    def aanswer_whole(self, request: Request, *, books: Books | None = None) -> AsyncStreamResult:
        """:meth:`answer_whole` for ``async for``: the whole answer through ``acomplete`` (or ``complete``)."""
        return self._athrough_cache(request, lambda: self._arouted(request, _awhole_attempt, "acomplete"), books)

    def _arouted(self, request: Request, attempt: AsyncOpener, hook: str) -> AsyncStreamResult:
        from llmswitch.router.driver import arun, open_first

        call = self.routed_call(request, hook)
        result = AsyncStreamResult(_no_events(), self, hook=hook)
        result.source = arun(call, result, attempt, open_first(call, attempt))
        return result

    async def acount_tokens(self, request: Request) -> TokenCount:
        """:meth:`count_tokens` in a worker thread (a count may ask the provider)."""
        import asyncio

        return await asyncio.to_thread(self.count_tokens, request)

    async def ahealth(self, timeout: float = 10.0, offline: bool = False) -> HealthReport:
        if self._has("ahealth"):
            return await self._acall("ahealth", self.target, timeout, offline)  # type: ignore[no-any-return]
        if self._has("health"):
            import asyncio

            return await asyncio.to_thread(self._call, "health", self.target, timeout, offline)  # type: ignore[no-any-return]
        return self._no_health()


class AsyncClient(Client):
    """:class:`Client` for async code: ``resolve`` is the same (it reads local files only); call the
    resolved profile's ``acomplete``, ``astream`` and ``ahealth``. ``async with AsyncClient() as client``
    closes this event loop's connection pools at the end and waits for the calls' ledger rows."""

    async def batch(
        self,
        profile: str | None,
        prompts: Iterable[str | BatchItem],
        *,
        concurrency: int = 8,
        model: str | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[BatchResult]:
        """Ask every prompt on ``profile``, ``concurrency`` at a time, and yield each result as it completes.

        A prompt is a string (its id is its position, from 1) or a :class:`~llmswitch.batch.BatchItem` (its own
        id, messages and settings). A line that fails is a result with ``error`` set, never an exception; each
        call is charged to the usage ledger. Nothing is checkpointed: ``llmswitch batch`` does that.
        """
        from llmswitch.batch import run

        resolved = self.resolve(profile, model=model, settings=settings)
        async for result in run(resolved, prompts, concurrency=concurrency):
            yield result

    async def aclose(self) -> None:
        """Close this event loop's connection pools, and wait until the ledger rows of the calls made so far
        are written (:class:`llmswitch.ledger.RowWriter`)."""
        import asyncio

        from llmswitch.kit import aclose_clients
        from llmswitch.ledger import flush_rows

        await aclose_clients()
        await asyncio.to_thread(flush_rows)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def plugin_failure(handle: BackendHandle, hook: str, exc: BaseException) -> PluginError:
    plugin = handle.plugin
    detail = redact(f"{type(exc).__name__}: {exc}")
    return PluginError(
        f"plugin {plugin.name} raised an unexpected error in {hook}: {detail}",
        plugin=plugin.name,
        remedy=f"this is a bug in {plugin.distribution or plugin.name}; run with LLMSWITCH_DEBUG=1 for the "
        "traceback and report it",
    )


def empty_answer(target: Target, finish_reason: str | None, usage: Usage) -> BadResponseError:
    """An answer that finished without any text: an error for every backend (a script must not take an empty
    stdout and exit 0 for an answer), saying what did arrive and what to try."""
    where = f"the {target.backend} backend" + (f" at {target.base_url}" if target.base_url else "")
    arrived = [f"finish reason '{finish_reason}'" if finish_reason else "no finish reason"]
    if usage.output_tokens is not None:
        arrived.append(f"{usage.output_tokens} output tokens reported")
    if finish_reason == "length":
        remedy = "the output limit was reached before any text (reasoning models think first): raise max_tokens"
    elif finish_reason in ("content_filter", "safety", "refusal"):
        remedy = "the provider withheld the answer: rephrase the prompt, or use another model"
    else:
        remedy = ("try again; a stop sequence that matches at the very start ends an answer at once; if it keeps "
                  "happening, check that the model and base_url are the ones this backend expects")
    return BadResponseError(
        f"model '{target.model}' on {where} finished its answer without any text ({', '.join(arrived)})",
        remedy=remedy, backend=target.backend,
    )


def _books(books: Books | None) -> Books:
    if books is not None:
        return books
    from llmswitch.accounting import DEFAULT_BOOKS

    return DEFAULT_BOOKS


_settling = threading.Lock()  # a turn may be settled by the thread that reads it and by one that interrupts it


def _replayed(result: _Result) -> _Result:
    result.cached = True
    return result


def _response_events(response: Response) -> tuple[StreamEvent, ...]:
    return (TextDelta(response.text), UsageEvent(response.usage), StreamEnd(response.finish_reason, response.model))


# ---- one attempt on one profile: what the router calls (it owns retries, so nothing here retries) ----------


def _stream_attempt(member: ResolvedProfile, request: Request, remaining_s: float | None) -> Iterable[StreamEvent]:
    member._require_key()
    target = member._target_within(remaining_s)
    if member._has("stream"):
        return member._call("stream", target, request)  # type: ignore[no-any-return]
    if member._has("astream"):
        from llmswitch.bridge import portal

        return portal.iterate(lambda: member._call("astream", target, request))
    if member._has("complete", "acomplete"):
        return _whole_attempt(member, request, remaining_s)
    raise member._neither()


def _whole_attempt(member: ResolvedProfile, request: Request, remaining_s: float | None) -> Iterator[StreamEvent]:
    member._require_key()
    target = member._target_within(remaining_s)
    started = time.perf_counter()
    if member._has("complete"):
        response = member._with_latency(member._call("complete", target, request), started)
    elif member._has("acomplete") and not member._has("stream"):
        from llmswitch.bridge import portal

        response = member._with_latency(portal.run(member._acall("acomplete", target, request)), started)
    else:
        yield from _stream_attempt(member, request, remaining_s)
        return
    yield from _response_events(response)


def _astream_attempt(member: ResolvedProfile, request: Request,
                     remaining_s: float | None) -> AsyncIterable[Sequence[StreamEvent]]:
    """One attempt for the async API, as lists of events (the ``astream_batches`` hook's form, which a plugin
    with only ``astream`` or ``stream`` gets one event at a time)."""
    member._require_key()
    target = member._target_within(remaining_s)
    if member._has("astream_batches"):
        return member._call("astream_batches", target, request)  # type: ignore[no-any-return]
    if member._has("astream"):
        return _each_alone(member._call("astream", target, request))
    if member._has("stream"):
        from llmswitch.bridge import iterate_in_thread

        return _each_alone(iterate_in_thread(lambda: member._call("stream", target, request)))
    if member._has("complete", "acomplete"):
        return _awhole_attempt(member, request, remaining_s)
    raise member._neither()


async def _each_alone(events: AsyncIterable[StreamEvent]) -> AsyncIterator[Sequence[StreamEvent]]:
    iterator = events.__aiter__()
    try:
        async for event in iterator:
            yield (event,)
    finally:
        aclose = getattr(iterator, "aclose", None)  # a plugin's generator: its connection closes now
        if aclose is not None:
            await aclose()


async def _awhole_attempt(member: ResolvedProfile, request: Request,
                          remaining_s: float | None) -> AsyncIterator[Sequence[StreamEvent]]:
    member._require_key()
    target = member._target_within(remaining_s)
    started = time.perf_counter()
    if member._has("acomplete"):
        response = member._with_latency(await member._acall("acomplete", target, request), started)
    elif member._has("complete") and not member._has("astream"):
        import asyncio

        response = member._with_latency(await asyncio.to_thread(member._call, "complete", target, request), started)
    else:
        async for batch in _astream_attempt(member, request, remaining_s):
            yield batch
        return
    yield _response_events(response)


async def _no_events() -> AsyncIterator[Sequence[StreamEvent]]:
    return
    yield  # an async generator with nothing in it


def collect(result: StreamResult) -> Response:
    """Drain a stream into a Response; a failure is raised (its text is on ``result``)."""
    with result:
        for event in result:
            if type(event) is StreamError:
                raise event.error
    return result.response()


async def acollect(result: AsyncStreamResult) -> Response:
    async with result:
        async for event in result:
            if type(event) is StreamError:
                raise event.error
    return result.response()


@dataclass
class StreamState:
    """The bookkeeping of one answer, whatever drives it: text so far, usage, finish, timing, failure.

    Whatever happens, ``text`` holds what arrived, and a failure ends the stream with one ``StreamError``
    event instead of an exception, so a renderer never loses text."""

    resolved: ResolvedProfile
    hook: str = "stream"  # the hook the events come from, named when it fails unexpectedly
    parts: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    model: str | None = None
    error: LLMSwitchError | None = None
    interrupted: bool = False
    cached: bool = False  # replayed from the response cache: the backend was not asked, and it costs nothing
    started: float = field(default_factory=time.perf_counter)
    first_token_s: float | None = None
    latency_s: float | None = None
    attempts: list[Attempt] = field(default_factory=list)  # every try of every member, the answering one last
    # The call's bookkeeping (llmswitch.accounting): the profile or route it was made on, its request, the face's
    # books; ``cost`` once it is charged (None also when the cost is unknown or nothing was charged).
    asked: ResolvedProfile | None = None
    request: Request | None = None
    books: Books | None = None
    cost: CallCost | None = None
    began: bool = False  # its iteration started: the request may have been sent, so it is charged
    charged: bool = False

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def observe(self, event: StreamEvent) -> None:
        """Take note of one event on its way to the caller."""
        kind = type(event)
        if kind is TextDelta:
            if self.first_token_s is None:
                self.first_token_s = time.perf_counter() - self.started
            self.parts.append(event.text)  # type: ignore[union-attr]
        elif kind is UsageEvent:
            self.usage = event.usage  # type: ignore[union-attr]
        elif kind is StreamEnd:
            self.finish_reason = event.finish_reason  # type: ignore[union-attr]
            self.model = event.model  # type: ignore[union-attr]
            if not any(self.parts):  # raised into the loop that drives the source: it ends as a StreamError
                raise empty_answer(self.resolved.target, self.finish_reason, self.usage)

    def fail(self, exc: Exception) -> StreamError:
        """The event that ends a failed stream: the error mapped (a non-llmswitch one is a plugin bug)."""
        self.error = (without_secrets(exc) if isinstance(exc, LLMSwitchError)
                      else plugin_failure(self.resolved.handle, self.hook, exc))
        return StreamError(self.error, self.text)

    def ended(self) -> None:
        self.latency_s = time.perf_counter() - self.started

    def cut_short(self) -> None:
        """Its caller stopped the answer before its end (``close()``, the end of a ``with`` block): it is
        interrupted, and timed now, so that it is charged with what arrived (a finished answer is left as is)."""
        if self.latency_s is None:
            self.interrupted = True
            self.ended()

    def books_for(self, asked: ResolvedProfile, request: Request, books: Books) -> None:
        """Bind the call's bookkeeping (see :meth:`settle`)."""
        self.asked, self.request, self.books = asked, request, books

    def settle(self) -> CallCost | None:
        """Charge the call, once: its failed attempts, then its own row, to the member that answered, as the
        books say (:func:`llmswitch.accounting.charge`). Returns ``cost``. Nothing is charged for a call whose
        iteration never started (nothing was sent) or that has no books. Bookkeeping never costs the answer:
        a ledger that cannot be written is logged, and the cost stays None."""
        with _settling:
            if self.charged or self.books is None or not self.began:
                return self.cost
            self.charged = True
        from llmswitch.accounting import charge

        try:
            self.cost = charge(self.asked or self.resolved, self.request, self, ledger=self.books.ledger,
                               gateway_key=self.books.gateway_key, price=self.books.price_for(self.resolved))
        except LLMSwitchError:
            self.cost = None
        return self.cost

    def response(self) -> Response:
        return Response(
            text=self.text,
            finish_reason=self.finish_reason or ("interrupted" if self.interrupted else None),
            usage=self.usage,
            model=self.model or self.resolved.target.model,
            latency_s=self.latency_s,
            attempts=tuple(self.attempts),
            cached=self.cached,
        )


class StreamResult(StreamState):
    """Iterate for events (see :class:`StreamState`). ``with`` (or :meth:`close`) ends the call even when the
    loop stops early: the source is closed and the call charged at once, as ``async with`` does for
    :class:`AsyncStreamResult`."""

    def __init__(self, source: Iterable[StreamEvent], resolved: ResolvedProfile, hook: str = "stream") -> None:
        super().__init__(resolved, hook)
        self.source = source
        # The iteration in progress, for close(); weakly, so that a loop that stops early (``break``) still
        # lets it go at once, and its ``finally`` charges the call then, as before.
        self._iteration: weakref.ref[Generator[StreamEvent, None, None]] | None = None

    def __iter__(self) -> Iterator[StreamEvent]:
        iteration = self._events()
        self._iteration = weakref.ref(iteration)
        return iteration

    def _events(self) -> Generator[StreamEvent, None, None]:
        observe, parts = self.observe, self.parts
        self.began = True
        try:
            for event in self.source:
                if type(event) is TextDelta and self.first_token_s is not None:
                    parts.append(event.text)  # the per-token case, without a call (observe does the rest)
                else:
                    observe(event)
                yield event
        except (KeyboardInterrupt, GeneratorExit):
            self.interrupted = True
            raise
        except Exception as exc:
            yield self.fail(exc)
        finally:
            self.ended()
            self._close_source()
            self.settle()

    def close(self) -> None:
        """End the call where it is: an iteration in progress is stopped (its upstream connection closed) and
        a call cut short is charged now, marked interrupted with what arrived. Safe to call more than once,
        and from another thread than the one iterating (that one stops at its next event)."""
        iteration = self._iteration() if self._iteration is not None else None
        self._iteration = None
        if iteration is not None:
            try:
                iteration.close()  # its ``finally`` closes the source and charges the call
            except ValueError:  # it is running in another thread: closing the source below stops it
                pass
        self.cut_short()
        self._close_source()
        self.settle()

    def _close_source(self) -> None:
        close = getattr(self.source, "close", None)
        if close is not None:
            try:
                close()
            except Exception:  # a plugin's cleanup failing must not hide the answer
                pass

    def __enter__(self) -> StreamResult:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncStreamResult(StreamState):
    """Iterate with ``async for`` (see :class:`StreamState`), or :meth:`batches` for the events in lists as
    they arrived together. ``async with`` (or :meth:`aclose`) closes the source even when the loop stops early
    and charges the call; cancelling the task closes it at once."""

    def __init__(self, source: AsyncIterable[Sequence[StreamEvent]], resolved: ResolvedProfile,
                 hook: str = "astream") -> None:
        super().__init__(resolved, hook)
        self.source = source  # lists of events (the ``astream_batches`` hook's form)
        self.check: Callable[[], None] | None = None  # the check before sending, run in a thread at the start
        self._charging: Any = None  # the future of the rows being written, when they are written off the loop

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        from llmswitch.types import events_of

        return events_of(self.batches())

    async def batches(self) -> AsyncGenerator[Sequence[StreamEvent], None]:
        """The events in non-empty lists, each what arrived together (one network read; the first text alone,
        at once), with the same bookkeeping as iterating event by event: for a relay such as ``serve``, which
        then pays per list instead of per token. A failure is a last list holding one ``StreamError``."""
        import asyncio

        if self.check is not None:  # a refusal is raised, not an event: nothing was sent, nothing is charged
            check, self.check = self.check, None
            await asyncio.to_thread(check)
        observe, parts = self.observe, self.parts
        self.began = True
        try:
            async for batch in self.source:
                if self.first_token_s is not None:  # the per-token case, a list of texts only: one pass
                    texts = [event.text for event in batch if type(event) is TextDelta]  # type: ignore[union-attr]
                    if len(texts) == len(batch):
                        parts.extend(texts)
                        yield batch
                        continue
                try:
                    for event in batch:
                        if type(event) is TextDelta and self.first_token_s is not None:
                            parts.append(event.text)  # type: ignore[union-attr]
                        else:
                            observe(event)
                except Exception:
                    failed_at = next(index for index, each in enumerate(batch) if each is event)
                    if failed_at:
                        yield batch[:failed_at]  # the events before the one that failed, as event by event
                    raise
                yield batch
        except (asyncio.CancelledError, GeneratorExit, KeyboardInterrupt):
            self.interrupted = True
            raise
        except Exception as exc:
            yield (self.fail(exc),)
        finally:
            self.ended()
            await self.aclose()

    async def asettle(self) -> CallCost | None:
        """:meth:`settle` for async code: on the loop when charging waits on nothing (the common case: the rows
        go to the ledger's writer thread, see :func:`llmswitch.accounting.charges_at_once`) or with
        ``books.inline``; else in the books' executor (a worker thread by default), which a cancelled caller
        does not stop."""
        books = self.books
        if books is None or not self.began:
            return self.cost
        from llmswitch.accounting import charges_at_once

        if books.inline or (self._charging is None and charges_at_once(self, books)):
            return self.settle()
        if self._charging is None:
            if self.charged:
                return self.cost
            import asyncio

            self._charging = asyncio.get_running_loop().run_in_executor(books.executor, self.settle)
        import asyncio

        await asyncio.shield(self._charging)
        return self.cost

    async def aclose(self) -> None:
        """:meth:`StreamResult.close` for async code: the source is closed (its upstream connection with it), and
        a call cut short is charged now, marked interrupted with what arrived. Safe to call more than once."""
        self.cut_short()
        close_source = getattr(self.source, "aclose", None)
        if close_source is not None:
            try:
                await close_source()
            except Exception:
                pass
        await self.asettle()

    async def __aenter__(self) -> AsyncStreamResult:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
