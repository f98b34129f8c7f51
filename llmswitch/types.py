"""The shared, backend-neutral types every plugin speaks.

Frozen dataclasses with ``slots`` (declared with :func:`llmswitch.record.record`): they cost little to build
(a stream creates one per chunk) and nothing here imports anything heavier than the standard library.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import field
from typing import TYPE_CHECKING, Any, Literal

from llmswitch.record import record

if TYPE_CHECKING:
    from llmswitch.errors import LLMSwitchError
    from llmswitch.secrets import Secret

Role = Literal["system", "user", "assistant"]


@record
class Message:
    """One turn of a conversation."""

    role: Role
    content: str


@record
class Request:
    """What to generate: the conversation plus generation settings.

    ``None`` means "the backend's own default". ``extras`` carries backend-specific generation settings
    (``repeat_penalty`` for llama.cpp, ``keep_alive`` for Ollama, extra body fields for vLLM, ...); a backend
    that cannot honour one must raise :class:`~llmswitch.errors.UnsupportedOptionError`, never drop it.
    """

    messages: tuple[Message, ...]
    system: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    extras: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_prompt(cls, prompt: str, **settings: Any) -> Request:
        """A one-message request, the common case for scripts and tests."""
        return cls(messages=(Message("user", prompt),), **settings)


@record
class Usage:
    """Tokens a call consumed, as the backend reported them (``None`` when it did not say)."""

    input_tokens: int | None = None
    output_tokens: int | None = None

    @property
    def total_tokens(self) -> int | None:
        if self.input_tokens is None or self.output_tokens is None:
            return None
        return self.input_tokens + self.output_tokens


@record
class Response:
    """A finished answer."""

    text: str
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    model: str | None = None
    latency_s: float | None = None
    # Every attempt the router made for it (llmswitch.router.plan.Attempt: member, outcome, latency_s),
    # the answering one last; empty for an answer that did not come through the router.
    attempts: tuple[Any, ...] = ()
    # Replayed from the response cache (a profile with ``cache = true``): the backend was not asked, and the
    # ledger charged $0 (outcome ``cached``). A plugin's own Response leaves it False.
    cached: bool = False


# ---- stream events -------------------------------------------------------------------------------------
# One neutral event type for every backend, so the CLI and the TUI each need one renderer.


@record
class TextDelta:
    """A piece of the answer, in order."""

    text: str


@record
class UsageEvent:
    """Token usage, usually near the end of a stream."""

    usage: Usage


@record
class StreamEnd:
    """The stream finished normally. Always the last event of a successful stream."""

    finish_reason: str | None = None
    model: str | None = None


@record
class StreamError:
    """The stream failed part-way. ``text`` holds everything that arrived before the failure.

    Plugins do not yield this themselves: they raise a :class:`~llmswitch.errors.BackendError` and the core
    turns it into this event, so that the text so far is always preserved in one place.
    """

    error: LLMSwitchError
    text: str


StreamEvent = TextDelta | UsageEvent | StreamEnd | StreamError


async def events_of(batches: AsyncIterable[Sequence[StreamEvent]]) -> AsyncIterator[StreamEvent]:
    """One event at a time from lists of them (the ``astream_batches`` hook's form); closing this iterator, or
    cancelling the task that iterates it, closes ``batches`` too."""
    iterator = batches.__aiter__()
    try:
        async for batch in iterator:
            for event in batch:
                yield event
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


@record
class TokenCount:
    """How many tokens some input takes. ``exact`` is False when it is an estimate; ``method`` says how."""

    n: int
    exact: bool
    method: str = ""

    def __str__(self) -> str:
        return str(self.n) if self.exact else f"~{self.n} (estimate)"


def estimate_tokens(request: Request) -> TokenCount:
    """A backend-neutral estimate: about four characters a token, plus a few per message."""
    chars = sum(len(message.content) for message in request.messages) + len(request.system or "")
    return TokenCount(n=max(1, round(chars / 4)) + 4 * len(request.messages), exact=False, method="chars/4")


# ---- health ----------------------------------------------------------------------------------------------


class Status(str, enum.Enum):
    """Overall health of a profile."""

    OK = "ok"
    DEGRADED = "degraded"
    DOWN = "down"
    # Nothing failed, but the backend itself was not checked (``doctor --offline``, a plugin without a health
    # hook): not "ok", which would claim a server answered that nobody asked. Only doctor reports this.
    NOT_CHECKED = "not_checked"


class CheckStatus(str, enum.Enum):
    """Outcome of one named health check."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@record
class Check:
    """One named check with what was found and, when it did not pass, what to do about it."""

    name: str
    status: CheckStatus
    detail: str = ""
    remedy: str | None = None


@record
class HealthReport:
    """What ``health`` found. ``metrics`` holds numbers worth showing (load time, tokens per second, ...)."""

    status: Status
    checks: tuple[Check, ...] = ()
    latency_s: float | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_checks(
        cls, checks: list[Check] | tuple[Check, ...], latency_s: float | None = None, **metrics: float
    ) -> HealthReport:
        """Derive the status: any failed check means down, any warning means degraded."""
        statuses = {check.status for check in checks}
        if CheckStatus.FAIL in statuses:
            status = Status.DOWN
        elif CheckStatus.WARN in statuses:
            status = Status.DEGRADED
        else:
            status = Status.OK
        return cls(status=status, checks=tuple(checks), latency_s=latency_s, metrics=dict(metrics))


def describe_problems(checks: Iterable[Check]) -> str:
    """The checks that failed or warned as one line, each by its name (``server: connection refused; ...``);
    empty when every check passed or was skipped."""
    return "; ".join(f"{check.name}: {check.detail}" for check in checks
                     if check.status in (CheckStatus.FAIL, CheckStatus.WARN))


# ---- a provider's batch service (optional hooks: see llmswitch.hookspecs) ----------------------------------


@record
class BatchLimits:
    """What one job at a provider's batch service may hold; a batch bigger than this is split into jobs."""

    max_requests: int
    max_bytes: int  # the requests as the plugin encodes them (``batch_line``), one JSON document each


@record
class ProviderJob:
    """A job at a provider's batch service, as it was last seen.

    ``status`` is the provider's own word (``in_progress``, ``completed``, ``expired``, ``ended``, ...);
    ``ended`` is True once no more results will come (finished, expired, cancelled or failed), so the results
    there are can be collected; ``detail`` says why a job failed as a whole.
    """

    id: str
    status: str
    ended: bool
    requests: int = 0
    succeeded: int = 0
    failed: int = 0
    detail: str | None = None


@record
class BatchAnswer:
    """One request's outcome in a job: its ``custom_id`` (from ``batch_line``) and an answer or an error."""

    custom_id: str
    response: Response | None = None
    error: LLMSwitchError | None = None


# ---- what a plugin declares --------------------------------------------------------------------------------

OptionType = Literal["str", "int", "float", "bool", "list", "table", "path", "duration"]


@record
class OptionSpec:
    """One backend option a profile may set.

    ``type`` is one of str, int, float, bool, list (of strings), table (a TOML table / JSON object), path or
    duration (``"90s"``, ``"30m"``, ``"1h"``, ``"7d"``, ``"2w"`` or a number of seconds, longer than 0; kept as
    written, read with :func:`llmswitch.profiles.duration_seconds`). ``secret`` options are masked wherever they
    are shown. ``minimum``: the smallest value a number may take (a limit of 0 requests a minute is a mistake,
    not a limit); ``more_than``: a bound the number must exceed (a deadline of 0 s). ``absent``: what leaving
    the option out means, for the remedy of a value out of range ("no limit").
    """

    name: str
    type: OptionType
    default: Any = None
    description: str = ""
    secret: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    more_than: float | None = None
    absent: str = "its default"


@record
class Requirement:
    """A Python module a backend imports and the distribution pip installs it from, for the "no module named"
    remedy (``pip install DISTRIBUTION``). ``note`` follows the command, e.g. how to install a GPU build."""

    module: str
    distribution: str
    note: str | None = None


class Crash(str, enum.Enum):
    """Failures that reach the core as text, not as a typed error: a plugin or its native library crashed. A
    backend may declare its own remedy for each (``BackendInfo.crash_remedies``)."""

    ILLEGAL_INSTRUCTION = "illegal_instruction"  # SIGILL: a native library built for a CPU this one is not
    OUT_OF_MEMORY = "out_of_memory"
    MODEL_FILE_MISSING = "model_file_missing"


@record
class BackendInfo:
    """What the discovery hook returns for each backend a plugin provides.

    - ``name``: what profiles put in ``backend = "..."``.
    - ``summary``: one line for ``llmswitch plugins``.
    - ``options``: the backend options a profile may set (besides the generation settings).
    - ``default_model``: used when a profile names none.
    - ``key_env``: the environment variable holding the API key, or None when the backend needs no key.
    - ``key_required``: False for servers that work without a key (Ollama, local OpenAI-compatible servers).
    - ``base_url_env`` / ``default_base_url``: where the endpoint comes from when the profile does not say.
    - ``generation_extras``: names accepted in ``Request.extras`` (``-o NAME VALUE`` on the command line).
    - ``prices``: a ``(package, resource)`` pair naming the plugin's price table data file, if it has one.
    - ``presets``: named bundles of option values (``preset = "groq"`` in a profile), as data.
    - ``price_catalog_providers``: the provider names under which a shared price catalogue (LiteLLM's
      ``litellm_provider``) lists this backend's models, for ``llmswitch prices update``.
    - ``notice``: given a profile's target, one line worth telling the user the first time they chat with it
      ("this is a tiny demo model: ..."), or None. Shown once per data directory, on stderr. It must be cheap:
      no SDK import, no file loaded.
    - ``model_option``: the option that, when a profile sets it, names the model actually run (llamacpp's
      ``model_path``); ``profiles list``, ``profiles show`` and ``doctor`` show it instead of ``model``.
    - ``profiles``: built-in profiles this backend brings (name to values; ``backend`` is implied), usable
      with no config file, e.g. ``{"ollama": {"model": "llama3.2", "description": "a local Ollama server"}}``.
    - ``key_help``: where a key for the provider comes from, ending the "key rejected" remedy
      (``"at https://console.example.com/keys"``); used only when the profile talks to the provider itself.
    - ``start_servers``: how to start the servers this backend talks to, as ``(usual port, hint)`` pairs;
      the "nothing listens" remedy names the one on the profile's port first.
    - ``model_help``: what to do about a model the server lacks (``{model}`` is replaced), e.g.
      ``"`ollama pull {model}`"``.
    - ``batch_limits``: the most requests and bytes one job at the provider's batch service may hold, when the
      plugin implements the batch hooks (``llmswitch batch --via provider``); None: no batch service.
    - ``served_model_help``: what to do about a model missing from a server the profile points ``base_url`` at
      (not the backend's own endpoint); ``{model}`` and ``{base_url}`` are replaced. Without it ``model_help``
      applies there too.
    - ``requirements``: the modules the backend imports whose distribution has another name
      (``Requirement("yaml", "pyyaml")``), so "No module named 'yaml'" says ``pip install pyyaml``. ``doctor``
      reads every installed backend's list: a crash names the module, not the backend.
    - ``crash_remedies``: the backend's own remedy for a :class:`Crash` that reaches the core only as text
      (``{model}`` and ``{model_file}``, the value of ``model_option``, are replaced; a text with
      ``{model_file}`` is used only when the profile sets it). A SIGILL remedy is also offered for a backend that
      declares none (the crash names no library); the others apply to the declaring backend only.
    """

    name: str
    summary: str
    options: tuple[OptionSpec, ...] = ()
    default_model: str | None = None
    key_env: str | None = None
    key_required: bool = True
    base_url_env: str | None = None
    default_base_url: str | None = None
    generation_extras: tuple[OptionSpec, ...] = ()
    prices: tuple[str, str] | None = None
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    price_catalog_providers: tuple[str, ...] = ()
    notice: Callable[[Target], str | None] | None = None
    model_option: str | None = None
    profiles: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    key_help: str | None = None
    start_servers: tuple[tuple[int | None, str], ...] = ()
    model_help: str | None = None
    batch_limits: BatchLimits | None = None
    served_model_help: str | None = None
    requirements: tuple[Requirement, ...] = ()
    crash_remedies: Mapping[Crash, str] = field(default_factory=dict)

    def option(self, name: str) -> OptionSpec | None:
        for spec in self.options:
            if spec.name == name:
                return spec
        return None

    def is_own_url(self, url: str | None) -> bool:
        """True for the backend's own endpoint (no URL, or ``default_base_url`` give or take a trailing
        slash): the service its key variable and its price table are about."""
        return not url or (self.default_base_url or "").rstrip("/") == url.rstrip("/")


@record
class Target:
    """Everything a hook needs to reach one model: which backend, which model, the validated options.

    ``options`` has every declared option, defaults filled in. ``api_key`` and ``base_url`` are resolved by
    the core (explicit > the profile's variable > the backend's variable > ``.env``) so every plugin follows
    the same order; ``api_key`` is None when no key was found or when the key may not go to ``base_url``
    (``key_withheld`` says why; the profile's secret headers are removed from ``options`` by the same rule,
    see :mod:`llmswitch.key_policy`). ``key_variable`` names the variable that was
    (or would have been) read; ``notes`` explains resolution choices worth showing in ``doctor``.
    """

    profile: str
    backend: str
    model: str
    options: Mapping[str, Any] = field(default_factory=dict)
    api_key: Secret | None = None
    base_url: str | None = None
    info: BackendInfo | None = None
    key_variable: str | None = None
    notes: tuple[str, ...] = ()
    base_url_source: str | None = None  # "profile", "env:NAME", ".env:NAME"; None: the backend's default
    key_withheld: str | None = None  # why a key that was found is not sent to base_url (llmswitch.key_policy)

    def option(self, name: str, default: Any = None) -> Any:
        value = self.options.get(name)
        return default if value is None else value

    @property
    def key_is_required(self) -> bool:
        """Hosted APIs need a key; a custom (local) server that ignores keys works without one. Only the core
        decides this (a plugin reports it, e.g. as a failed ``key`` check, but never re-derives it)."""
        info = self.info
        if info is None or not info.key_env or not info.key_required or self.key_withheld:
            return False
        return info.is_own_url(self.base_url) or bool(self.options.get("api_key_env"))
