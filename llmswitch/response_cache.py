"""The response cache: an answer a profile already gave to the same request, replayed instead of asked again.

Opt-in per profile::

    [profiles.docs-bot]
    backend = "openai"
    cache = true                  # off unless set
    cache_ttl = "1h"              # how long an answer stays (s, m, h, d, w, or seconds; default 1d)
    cache_temperature = false     # true: also cache requests whose temperature is above 0

The key is a digest of what decides the answer: the backend, the model, the base URL, the profile's backend
options (a llamacpp ``model_path``, an Ollama ``num_ctx``, extra headers...) and the normalised request
(messages, system, every generation setting and extra). Two profile names for the same model with the same
options share their answers; credentials and the timeout are left out (:func:`identity_of`).

The temperature rule (:meth:`CachePolicy.covers`): a request whose temperature is above 0 asks for a different
answer each time, so it is neither served from nor stored in the cache unless the profile says
``cache_temperature = true``. A request that sets no temperature *is* cached: ``cache = true`` says the user wants
one answer per question, although the provider then samples at its own default (often 1.0), so the first answer
is the one kept. Set ``temperature = 0`` on the profile to make that answer the deterministic one too; ``profiles
show`` states the rule for each profile (:func:`describe`). Only answers that finished are stored (never a failure or an interrupted stream).

It lives in the core call path (:class:`llmswitch.client.ResolvedProfile`), so ``chat``, ``batch``, ``serve``
and the library behave the same: a hit is replayed as the same stream events (the pieces as they first
arrived), is marked ``cached`` on the result, and costs $0 in the ledger (outcome ``cached``). A route's cache
sits above its retries and fallbacks: a hit never counts as an attempt. ``chat --no-cache`` (the setting
``cache = false``) bypasses it for one call; ``llmswitch cache stats | clear`` manages the file.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llmswitch.lazy import logger
from llmswitch.record import record
from llmswitch.types import Request, StreamEnd, StreamEvent, Target, TextDelta, Usage, UsageEvent

if TYPE_CHECKING:
    from llmswitch.store.responses import ResponseStore, StoredAnswer


DEFAULT_TTL_S = 86400.0
HOLD_MARGIN_S = 5.0  # between the budget check that a held answer skips and its replay, with room to spare
_local = threading.local()


@record(slots=False)
class CachePolicy:
    """Whether and how long a profile caches, from its settings."""

    ttl_s: float
    temperature: bool  # cache requests whose temperature is above 0 too

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> CachePolicy | None:
        """The profile's policy, or None when it does not cache (the default, and ``cache = false``)."""
        if settings.get("cache") is not True:
            return None
        return cls(parse_ttl(settings.get("cache_ttl")), settings.get("cache_temperature") is True)

    def covers(self, request: Request) -> bool:
        """Whether this request is served from and stored in the cache: temperature 0 or unset (the provider's
        default, sampled or not: the profile opted in), or any temperature with ``cache_temperature = true``."""
        return self.temperature or request.temperature is None or request.temperature <= 0


def describe(settings: Mapping[str, Any], members_temperature: float | None = None) -> str | None:
    """What a profile's cache keeps, in one line for ``profiles show``; None when it does not cache.
    ``members_temperature``: a route's highest member temperature (it applies where the route sets none)."""
    policy = CachePolicy.of(settings)
    if policy is None:
        return None
    ttl = settings.get("cache_ttl") or "1d"
    kept = f"cache: on, answers kept {f'{ttl:g} s' if isinstance(ttl, (int, float)) else ttl}"
    if policy.temperature:
        return f"{kept}, for every request, sampled ones too (cache_temperature = true): the first answer is replayed"
    temperature = settings.get("temperature")
    if temperature is not None and temperature > 0:
        return (f"{kept}, but not at this profile's temperature {temperature:g}: only requests that set "
                "temperature = 0 are cached (cache_temperature = true caches sampled answers too)")
    if temperature is None and members_temperature is not None and members_temperature > 0:
        return (f"{kept}, but not while a member samples at temperature {members_temperature:g}: only requests "
                "that set temperature = 0 are cached (cache_temperature = true caches sampled answers too)")
    return (f"{kept}, for requests with temperature 0 or unset (unset means the provider's default, which may "
            "sample: the first answer is the one replayed); above 0 only with cache_temperature = true")


def parse_ttl(value: Any) -> float:
    """``cache_ttl`` in seconds (None: the default, a day); checked as the profile was read, so a bad value
    here is a caller that skipped the check."""
    from llmswitch.profiles import PROFILE_KEYS, check_type, duration_seconds

    if value is None:
        return DEFAULT_TTL_S
    check_type(PROFILE_KEYS["cache_ttl"], value, "the response cache")
    seconds = duration_seconds(value)
    assert seconds is not None  # check_type refuses what is not a duration
    return seconds


# Options that say how long to wait or where a credential comes from, not what is asked: they never split the
# cache. The base URL enters resolved (``Target.base_url``), wherever it was written.
_NOT_ANSWER_SHAPING = frozenset({"timeout", "base_url", "api_key", "api_key_env"})


def identity_of(target: Target) -> dict[str, Any]:
    """What decides a target's answer: backend, model, server and the options that shape the call.

    Credentials are left out (secret options, secret headers): they say who asks, not what, so a rotated key
    keeps its cache and no secret ever enters the key. Options left unset (None) are left out too, so a plugin
    that adds an option does not empty everyone's cache."""
    from llmswitch.secrets import is_secret_header

    secret = {spec.name for spec in target.info.options if spec.secret} if target.info is not None else set()
    options = {name: value for name, value in target.options.items()
               if value is not None and name not in _NOT_ANSWER_SHAPING and name not in secret}
    headers = options.get("headers")
    if isinstance(headers, Mapping):
        options["headers"] = {str(name).lower(): value for name, value in headers.items()
                              if not is_secret_header(str(name))}
    return {"backend": target.backend, "model": target.model, "base_url": (target.base_url or "").rstrip("/"),
            "options": options}


def key_for(identity: Mapping[str, Any], request: Request) -> str:
    """The digest two requests share exactly when the same model, asked the same way, would get the same ask.
    ``identity``: :func:`identity_of` the target (a route's: its members', see ``ResolvedProfile.cache_identity``)."""
    normalised = {
        "target": identity,
        "messages": [[message.role, message.content] for message in request.messages],
        "system": request.system or None,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "top_k": request.top_k,
        "max_tokens": request.max_tokens,
        "stop": list(request.stop),
        "seed": request.seed,
        "extras": dict(request.extras),
    }
    encoded = json.dumps(normalised, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(encoded.encode()).hexdigest()


def open_store() -> ResponseStore:
    """This thread's connection to the cache file (SQLite connections stay in their thread)."""
    from llmswitch.config import data_dir
    from llmswitch.store.responses import FILE_NAME, ResponseStore

    path = data_dir() / FILE_NAME
    store: ResponseStore | None = getattr(_local, "store", None)
    if store is None or store.path != path:  # the data dir can change (tests, embedding)
        store = ResponseStore(path)
        _local.store = store
    return store


def _observe(profile: str, hit: bool) -> None:
    from llmswitch import metrics

    active = metrics.active()
    if active is not None:
        active.observe_cache(profile, hit)


def lookup(key: str, profile: str) -> StoredAnswer | None:
    """The stored answer under ``key`` (:func:`key_for`), or None (a cache that cannot be read is a miss,
    logged); counted as ``profile``'s hit or miss."""
    try:
        found = open_store().get(key)
    except Exception as error:  # the cache must never cost an answer
        logger(__name__).warning("response cache not read: %s", error)
        return None
    _observe(profile, found is not None)
    return found


def holds(key: str) -> bool:
    """Whether the cache holds this request's answer for a while yet (:data:`HOLD_MARGIN_S`): what lets a call
    skip its budget check, so an answer that would expire before it is replayed does not count."""
    import time

    try:
        return open_store().holds(key, time.time() + HOLD_MARGIN_S)
    except Exception as error:  # a cache that cannot be read holds nothing
        logger(__name__).warning("response cache not read: %s", error)
        return False


def replay(answer: StoredAnswer, model: str) -> list[StreamEvent]:
    """A stored answer as the events it first streamed."""
    events: list[StreamEvent] = [TextDelta(piece) for piece in answer.pieces]
    events.append(UsageEvent(Usage(answer.input_tokens, answer.output_tokens)))
    events.append(StreamEnd(answer.finish_reason, answer.model or model))
    return events


class Recorder:
    """Watches a stream go by and stores it when (and only when) it finishes."""

    def __init__(self, target: Target, key: str, policy: CachePolicy) -> None:
        self.target, self.key, self.policy = target, key, policy
        self.pieces: list[str] = []
        self.usage = Usage()

    def see(self, event: StreamEvent) -> None:
        kind = type(event)
        if kind is TextDelta:
            self.pieces.append(event.text)  # type: ignore[union-attr]
        elif kind is UsageEvent:
            self.usage = event.usage  # type: ignore[union-attr]
        elif kind is StreamEnd and any(self.pieces):
            self.store(event)  # type: ignore[arg-type]

    def store(self, end: StreamEnd) -> None:
        try:
            open_store().put(self.key, profile=self.target.profile,
                             backend=self.target.backend, model=end.model or self.target.model, pieces=self.pieces,
                             finish_reason=end.finish_reason, input_tokens=self.usage.input_tokens,
                             output_tokens=self.usage.output_tokens, ttl_s=self.policy.ttl_s)
        except Exception as error:  # the answer matters more than keeping it
            logger(__name__).warning("response not cached: %s", error)


def recording(source: Iterable[StreamEvent], recorder: Recorder) -> Iterator[StreamEvent]:
    iterator = iter(source)
    try:
        for event in iterator:
            recorder.see(event)
            yield event
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


async def arecording(source: AsyncIterable[Sequence[StreamEvent]],
                     recorder: Recorder) -> AsyncIterator[Sequence[StreamEvent]]:
    """:func:`recording` for the async API's lists of events (see the ``astream_batches`` hook)."""
    iterator = source.__aiter__()
    try:
        async for batch in iterator:
            for event in batch:
                recorder.see(event)
            yield batch
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


async def areplay(events: list[StreamEvent]) -> AsyncIterator[Sequence[StreamEvent]]:
    """A stored answer for the async API: its events in one list (they are all here at once)."""
    yield events
