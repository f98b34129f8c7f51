"""The whole plugin contract. A backend plugin implements ``llmswitch_backends`` and any of the call hooks.

How llmswitch calls them: at start-up it asks every plugin ``llmswitch_backends()`` once and builds a table
from backend name to the plugin that declared it. A profile's call goes straight to that plugin's
implementation: hooks are never broadcast to every plugin, so the answer never depends on plugin order and
dispatch is a dictionary lookup. pluggy still validates every implementation against these specs when the
plugin is registered, so a misspelt argument name fails at load time and is reported by ``llmswitch plugins``.

Sync, async or both: ``complete``/``stream``/``health`` have async twins ``acomplete``/``astream``/``ahealth``.
Implement whichever form fits the backend; llmswitch offers both APIs over either. A plugin with only sync
hooks works under :class:`llmswitch.AsyncClient` (each call runs in a worker thread; a cancelled task stops
the stream at its next event and the generator's ``finally`` runs); a plugin with only async hooks works
under :class:`llmswitch.Client` (its coroutines run on one background event loop). An HTTP backend built on
:mod:`llmswitch.kit` implements both in one line each.

Rules every implementation follows:

- Import your SDK inside the hook that needs it, never at module level: ``llmswitch --help`` loads no SDK.
- Raise the errors in :mod:`llmswitch.errors` with a remedy: ``AuthError`` (401/403), ``RateLimitError``
  (429, with ``retry_after``), ``ModelNotFoundError``, ``UnreachableError``, ``BackendTimeoutError``,
  ``BadResponseError``. Anything else you raise is reported as a bug in your plugin.
- A setting you cannot honour raises ``UnsupportedOptionError``; never drop it silently.
- A stream with nothing your wire format understands raises ``nothing_understood(...)`` quoting what arrived;
  an answer that finishes without any text is turned into a ``BadResponseError`` by the core.
- Never put a key in a message: use ``target.api_key.masked``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import pluggy

from llmswitch.types import (
    BackendInfo,
    BatchAnswer,
    HealthReport,
    ProviderJob,
    Request,
    Response,
    StreamEvent,
    Target,
    TokenCount,
)

PROJECT = "llmswitch"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def llmswitch_backends() -> list[BackendInfo]:
    """Describe the backends this plugin provides (usually one).

    Called once per process, when plugins are loaded. Must be cheap and must not import an SDK or touch the
    network: it runs for ``llmswitch plugins`` and ``profiles show``.

    :return: one :class:`~llmswitch.types.BackendInfo` per backend: its name, one-line summary, the options a
        profile may set (name, type, default, description, secret or not), the default model, and which
        environment variable holds its key, if any.
    """


@hookspec
def complete(target: Target, request: Request) -> Response:
    """Generate a whole answer and return it.

    Called for ``llmswitch chat --no-stream`` and by library users who want one answer.

    :param target: the backend, model and validated options of the profile, with the key and base URL
        already resolved (``target.api_key`` is None when there is no key).
    :param request: the messages, the system prompt and the generation settings (``None`` = backend default).
    :return: a :class:`~llmswitch.types.Response` with the text, finish reason, usage (input and output
        tokens), the model that actually answered, and the latency in seconds.
    """


@hookspec
def stream(target: Target, request: Request) -> Iterator[StreamEvent]:
    """Generate an answer piece by piece.

    Called for every streaming chat (the CLI's default, and the TUI). Return a generator; llmswitch
    iterates it and may stop early (Ctrl-C, a cancel in the TUI) by calling ``close()``: release the
    connection or stop generation in a ``finally`` block.

    :param target: as for :func:`complete`.
    :param request: as for :func:`complete`.
    :return: an iterator of :class:`~llmswitch.types.TextDelta` as text arrives, then at most one
        :class:`~llmswitch.types.UsageEvent`, then :class:`~llmswitch.types.StreamEnd`. On failure raise a
        ``BackendError``: the core keeps the text that already arrived and ends the stream with a
        :class:`~llmswitch.types.StreamError`. Do not yield ``StreamError`` yourself.
    """


@hookspec
def count_tokens(target: Target, request: Request) -> TokenCount:
    """Count the input tokens a request would take, including any chat-template tokens the backend adds.

    Called by ``llmswitch cost`` and budget checks before anything is sent. Never touches the network unless
    the provider has a counting endpoint and the target allows it; must never download a tokenizer.

    :param target: as for :func:`complete`.
    :param request: the messages and system prompt to count (generation settings are ignored).
    :return: a :class:`~llmswitch.types.TokenCount`; ``exact=False`` whenever it is an estimate, with
        ``method`` saying how it was counted (``"tiktoken o200k_base"``, ``"chars/4"``, ...).
    """


@hookspec
def health(target: Target, timeout: float, offline: bool) -> HealthReport:
    """Check that this profile can answer: configured, key present, reachable, model available.

    Called by ``llmswitch doctor`` (concurrently for every profile, in worker threads) and by the TUI's
    doctor screen.

    :param target: as for :func:`complete`.
    :param timeout: seconds each network check may take; past it, report a failed check, do not hang.
    :param offline: when True, do not touch the network: report network checks as skipped.
    :return: a :class:`~llmswitch.types.HealthReport`: one :class:`~llmswitch.types.Check` per thing
        checked (name, pass/warn/fail/skip, detail, and a remedy for anything not passing), the latency,
        and numbers worth showing in ``metrics`` (``load_s``, ``tokens_per_s``, ...).
    """


@hookspec
async def acomplete(target: Target, request: Request) -> Response:
    """The async form of :func:`complete`: a coroutine that returns the whole answer.

    Called by ``await resolved.acomplete(request)`` (:class:`llmswitch.AsyncClient`), and by the sync API when
    the plugin has no ``complete``. Never block the event loop: use async I/O (``llmswitch.kit.arequest_json``).

    :param target: as for :func:`complete`.
    :param request: as for :func:`complete`.
    :return: a :class:`~llmswitch.types.Response`, as for :func:`complete`.
    """


@hookspec
def astream(target: Target, request: Request) -> AsyncIterator[StreamEvent]:
    """The async form of :func:`stream`: return an async iterator (an ``async def`` generator).

    Called by ``resolved.astream(request)`` and by the TUI, on the caller's event loop. llmswitch may stop
    early by cancelling the task that iterates it (the cancellation arrives at your ``await``) or by calling
    ``aclose()``: close the connection in a ``finally`` block, so the server sees the disconnect.

    :param target: as for :func:`complete`.
    :param request: as for :func:`complete`.
    :return: the same events as :func:`stream`, in the same order; raise a ``BackendError`` on failure.
    """


@hookspec
def astream_batches(target: Target, request: Request) -> AsyncIterator[Sequence[StreamEvent]]:
    """:func:`astream`'s events in lists, each holding the events that arrived together (one network read);
    optional, for a plugin that has ``astream``. llmswitch prefers it where it relays a stream (``serve``, the
    async API): it then pays per list instead of per token. Callers still see one event at a time.

    An HTTP backend on :mod:`llmswitch.kit` returns ``kit.astream_batches(...)`` with the arguments it gives
    ``kit.astream``. Otherwise: never hold an event back waiting for more (a list holds what is already
    there; the first text goes out at once), never yield an empty list, and on failure yield the events
    before it, then raise, as :func:`astream` does; close the connection in a ``finally`` block.

    :param target: as for :func:`complete`.
    :param request: as for :func:`complete`.
    :return: an async iterator of non-empty lists of the events :func:`astream` would yield, in order.
    """


@hookspec
async def ahealth(target: Target, timeout: float, offline: bool) -> HealthReport:
    """The async form of :func:`health`; optional (without it ``await resolved.ahealth()`` runs ``health``
    in a worker thread).

    :param target: as for :func:`complete`.
    :param timeout: as for :func:`health`.
    :param offline: as for :func:`health`.
    :return: a :class:`~llmswitch.types.HealthReport`, as for :func:`health`.
    """


# ---- a provider's batch service: optional, all five together ----------------------------------------------
# ``llmswitch batch --via provider`` sends a whole batch to the provider's own batch service (at its batch
# price) instead of calling it line by line. The core reads the input, splits it into jobs within
# ``BackendInfo.batch_limits``, keeps the job ids, polls, and writes the results; the plugin keeps only the
# wire format of these five calls. Implement all of them, and set ``batch_limits``, or none.


@hookspec
def batch_line(target: Target, custom_id: str, request: Request) -> dict[str, Any]:
    """One request as the provider's batch service takes it (a line of OpenAI's JSONL file, an entry of
    Anthropic's ``requests`` list). Called for each line before anything is sent.

    :param target: as for :func:`complete`.
    :param custom_id: the id to give the request; :func:`batch_results` reports it back (letters, digits,
        ``-`` and ``_``; at most 64 characters).
    :param request: as for :func:`complete`.
    :return: a JSON-serialisable dict; a setting the provider cannot honour raises ``UnsupportedOptionError``,
        as :func:`complete` would.
    """


@hookspec
def batch_submit(target: Target, lines: Sequence[dict[str, Any]]) -> ProviderJob:
    """Create one job from ``lines`` (each from :func:`batch_line`; the core keeps a job within
    ``BackendInfo.batch_limits``), uploading them first if the provider needs a file.

    :param target: as for :func:`complete`.
    :param lines: the encoded requests, in input order.
    :return: the new :class:`~llmswitch.types.ProviderJob` (its ``id`` is kept so another process can collect).
    """


@hookspec
def batch_retrieve(target: Target, job_id: str) -> ProviderJob:
    """The job as the provider sees it now (``llmswitch batch status``).

    :param target: as for :func:`complete`.
    :param job_id: a ``ProviderJob.id`` from :func:`batch_submit`.
    :return: a :class:`~llmswitch.types.ProviderJob`; ``ended`` once no more results will come.
    """


@hookspec
def batch_results(target: Target, job_id: str) -> Iterator[BatchAnswer]:
    """The outcome of every request the provider reports for an ended job, answers and errors alike.

    Called once the job has ``ended`` (completed, expired, cancelled or failed as a whole). A request the
    provider never ran (expired, cancelled) is an answer with an error of kind ``expired`` or ``cancelled``
    when the provider lists it; one it does not list is reported by the core as never answered.

    :param target: as for :func:`complete`.
    :param job_id: the job.
    :return: an iterator of :class:`~llmswitch.types.BatchAnswer`, one per ``custom_id``: a
        :class:`~llmswitch.types.Response` (text, finish reason, usage, model) or an llmswitch error.
    """


@hookspec
def batch_cancel(target: Target, job_id: str) -> ProviderJob:
    """Ask the provider to stop the job; results it already has stay collectable.

    :param target: as for :func:`complete`.
    :param job_id: the job.
    :return: the job as it is after the request (usually still running while it cancels).
    """


HOOK_NAMES = ("complete", "stream", "count_tokens", "health", "acomplete", "astream", "astream_batches", "ahealth")
BATCH_HOOK_NAMES = ("batch_line", "batch_submit", "batch_retrieve", "batch_results", "batch_cancel")
